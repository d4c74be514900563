// Samples from one CSV or TSV list, streamed record by record. CSV follows RFC 4180 as Python's csv module reads
// it (quoted fields may hold commas, doubled quotes and line breaks); TSV follows IANA text/tab-separated-values:
// fields split on every tab, no quoting, quotes are ordinary characters. A row with the wrong number of fields
// becomes a problem sample, since shifted columns would put a caption where the image path should be.

import Foundation

/// How a delimited list is split.
struct DelimitedFormat: Sendable {
    let separator: UInt8
    /// CSV quoting (RFC 4180); off for TSV.
    let quoting: Bool

    static let csv = DelimitedFormat(separator: UInt8(ascii: ","), quoting: true)
    static let tsv = DelimitedFormat(separator: UInt8(ascii: "\t"), quoting: false)
}

/// One record of a delimited list, or why it could not be read.
enum DelimitedRecord {
    /// Fields as bytes; `line` is the line the record starts on.
    case fields([[UInt8]], line: Int)
    /// The record could not be split; reading continues with the next line.
    case malformed(line: Int, reason: String)
}

/// Splits records off a ``LineReader``. Blank lines between records are skipped, as pandas does.
struct DelimitedParser {
    /// Longest record kept; beyond it the record is reported and reading resumes at the next line (the usual cause
    /// is an unclosed quote swallowing the rest of the file).
    static let maxRecordBytes = 8 << 20

    let format: DelimitedFormat

    private enum State {
        case fieldStart, unquoted, quoted, quoteInQuoted
    }

    /// The next record, or nil at the end of the file. Throws only when the file cannot be read.
    func nextRecord(_ reader: LineReader) throws(SystemFailure) -> DelimitedRecord? {
        var fields: [[UInt8]] = []
        var field: [UInt8] = []
        var state = State.fieldStart
        var startLine = 0
        var recordBytes = 0
        while true {
            switch try reader.nextLine(maxBytes: Self.maxRecordBytes) {
            case .end:
                if startLine == 0 { return nil }
                return .malformed(line: startLine, reason: "a quoted field opened on line \(startLine) is not "
                    + "closed before the end of the file")
            case .tooLong(let bytes):
                return .malformed(line: startLine == 0 ? reader.lineNumber : startLine,
                                  reason: "line \(reader.lineNumber) has \(bytes) bytes, over the "
                                      + "\(Self.maxRecordBytes)-byte limit; record skipped")
            case .line(let bytes, let terminator):
                if startLine == 0 {
                    if bytes.isEmpty { continue }
                    startLine = reader.lineNumber
                }
                recordBytes += bytes.count + terminator.count
                if recordBytes > Self.maxRecordBytes {
                    return .malformed(line: startLine, reason: "the record starting here runs past "
                        + "\(Self.maxRecordBytes) bytes (an unclosed quote?); skipped up to line \(reader.lineNumber)")
                }
                if !format.quoting {
                    let parts = bytes.split(separator: format.separator, omittingEmptySubsequences: false)
                    return .fields(parts.map(Array.init), line: startLine)
                }
                for byte in bytes {
                    switch state {
                    case .fieldStart:
                        if byte == UInt8(ascii: "\"") {
                            state = .quoted
                        } else if byte == format.separator {
                            fields.append(field)
                            field = []
                        } else {
                            field.append(byte)
                            state = .unquoted
                        }
                    case .unquoted:
                        if byte == format.separator {
                            fields.append(field)
                            field = []
                            state = .fieldStart
                        } else {
                            field.append(byte)  // a quote inside an unquoted field is literal, as in Python
                        }
                    case .quoted:
                        if byte == UInt8(ascii: "\"") { state = .quoteInQuoted } else { field.append(byte) }
                    case .quoteInQuoted:
                        if byte == UInt8(ascii: "\"") {
                            field.append(byte)
                            state = .quoted
                        } else if byte == format.separator {
                            fields.append(field)
                            field = []
                            state = .fieldStart
                        } else {
                            field.append(byte)  // `"ab"c` reads as `abc`, as Python's csv does by default
                            state = .unquoted
                        }
                    }
                }
                if state == .quoted {
                    field.append(contentsOf: terminator)  // a line break inside quotes, kept as written
                    if terminator.isEmpty {
                        return .malformed(line: startLine, reason: "a quoted field opened on line \(startLine) "
                            + "is not closed before the end of the file")
                    }
                    continue
                }
                fields.append(field)
                return .fields(fields, line: startLine)
            }
        }
    }

    /// A header row's column names, or why there is none.
    enum Header {
        case columns([String])
        case unusable(String)
    }

    /// Reads the header row: column names, duplicates renamed as pandas does (`a`, `a.1`, `a.2`).
    func header(_ reader: LineReader) throws(SystemFailure) -> Header {
        switch try nextRecord(reader) {
        case nil:
            return .unusable("the file has no header row (it is empty or blank)")
        case .malformed(let line, let reason)?:
            return .unusable("the header row (line \(line)) cannot be read: \(reason)")
        case .fields(let fields, _)?:
            var seen: [String: Int] = [:]
            return .columns(fields.map { bytes in
                let name = String(decoding: bytes, as: UTF8.self)
                let count = seen[name, default: 0]
                seen[name] = count + 1
                return count == 0 ? name : "\(name).\(count)"
            })
        }
    }

    /// Checks that the header names every column the spec needs; the message lists the columns found.
    static func missingColumns(in header: [String], options: CorpusOptions) -> String? {
        let needed = [("input.image_column", options.imageColumn), ("input.caption_column", options.captionColumn)]
            + (options.keyColumn.map { [("input.key_column", $0)] } ?? [])
        let missing = needed.filter { !header.contains($0.1) }
        guard !missing.isEmpty else { return nil }
        let names = missing.map { "\($0.0) \"\($0.1)\"" }.joined(separator: " and ")
        let found = header.map { $0.debugDescription }.joined(separator: ", ")
        return "the header has no column for \(names); columns found: \(found)"
    }
}

/// Reads one CSV or TSV list; memory is one record.
final class DelimitedSource: SampleSource {
    private let path: String
    private let parser: DelimitedParser
    private let builder: ListSampleBuilder
    private var reader: LineReader?
    private var header: [String] = []
    private var done = false

    init(display: String, path: String, format: DelimitedFormat, options: CorpusOptions) {
        self.path = path
        parser = DelimitedParser(format: format)
        builder = ListSampleBuilder(display: display, folder: URL(fileURLWithPath: path).deletingLastPathComponent(),
                                    options: options, emptyCaptionIsMissing: true)
    }

    func next(ordinal: Int) -> InputSample? {
        if done { return nil }
        do throws(SystemFailure) {
            let reader: LineReader
            if let open = self.reader {
                reader = open
            } else {
                reader = try LineReader(path: path)
                self.reader = reader
                // The header was checked when the reader was created; the file may have changed since.
                switch try parser.header(reader) {
                case .unusable(let reason):
                    return refuse(line: 1, problem: reason, ordinal: ordinal)
                case .columns(let names):
                    if let reason = DelimitedParser.missingColumns(in: names, options: builder.options) {
                        return refuse(line: 1, problem: reason, ordinal: ordinal)
                    }
                    header = names
                }
            }
            switch try parser.nextRecord(reader) {
            case nil:
                done = true
                self.reader = nil
                return nil
            case .malformed(let line, let reason)?:
                return builder.malformed(line: line, ordinal: ordinal, reason: reason)
            case .fields(let fields, let line)?:
                guard fields.count == header.count else {
                    return builder.malformed(line: line, ordinal: ordinal, reason: "\(fields.count) field(s) where "
                        + "the header has \(header.count); row skipped (quote fields that contain the separator)")
                }
                let columns = zip(header, fields).map { (key: $0, value: ListValue.string($1, replacedSurrogates: 0)) }
                return builder.sample(ListRecord(columns: columns, options: builder.options), line: line,
                                      ordinal: ordinal)
            }
        } catch {
            let line = reader?.lineNumber ?? 0
            let what = line == 0 ? "cannot be read" : "cannot be read after line \(line)"
            return refuse(line: line + 1, problem: "\(what) (\(error)); check the file and its permissions",
                          ordinal: ordinal)
        }
    }

    /// One problem sample for the whole file, and the source ends.
    private func refuse(line: Int, problem: String, ordinal: Int) -> InputSample {
        done = true
        reader = nil
        return .problem(ordinal: ordinal, key: "(unreadable list)", location: builder.location(line: line),
                        reason: "the list cannot be read (see problems)", problem: "\(builder.display): \(problem)",
                        cause: .sourceRefused)
    }
}
