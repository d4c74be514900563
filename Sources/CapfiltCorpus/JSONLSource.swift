// Samples from one JSONL list, line by line: a malformed line becomes a sample carrying the parser's reason and
// reading goes on, since one bad line in a million must not cost the other 999,999.

import Foundation

/// Reads one JSONL file with a ``LineReader``; memory is one line.
final class JSONLSource: SampleSource {
    /// Longest line read; a longer one is skipped without being buffered and reported.
    static let maxLineBytes = 8 << 20

    private let path: String
    private let builder: ListSampleBuilder
    private var reader: LineReader?
    private var done = false

    init(display: String, path: String, options: CorpusOptions) {
        self.path = path
        builder = ListSampleBuilder(display: display, folder: URL(fileURLWithPath: path).deletingLastPathComponent(),
                                    options: options, emptyCaptionIsMissing: false)
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
            }
            while true {
                switch try reader.nextLine(maxBytes: Self.maxLineBytes) {
                case .end:
                    done = true
                    self.reader = nil
                    return nil
                case .tooLong(let bytes):
                    return builder.malformed(line: reader.lineNumber, ordinal: ordinal,
                                             reason: "line of \(bytes) bytes is longer than the "
                                                 + "\(Self.maxLineBytes)-byte limit; skipped")
                case .line(let bytes, _):
                    if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0d }) { continue }
                    let line = reader.lineNumber
                    do throws(JSONLineError) {
                        let columns = try JSONLineParser.parseObject(bytes)
                        return builder.sample(ListRecord(columns: columns, options: builder.options), line: line,
                                              ordinal: ordinal)
                    } catch {
                        return builder.malformed(line: line, ordinal: ordinal,
                                                 reason: "not valid JSON (\(error.description))")
                    }
                }
            }
        } catch {
            return unreadable(error, ordinal: ordinal)
        }
    }

    /// The file could not be opened, or a read failed: one problem sample, and the source ends.
    private func unreadable(_ failure: SystemFailure, ordinal: Int) -> InputSample {
        done = true
        let line = reader?.lineNumber ?? 0
        reader = nil
        let what = line == 0 ? "cannot be read" : "cannot be read after line \(line)"
        return .problem(ordinal: ordinal, key: "(unreadable list)", location: builder.location(line: line + 1),
                        reason: "the list \(what)",
                        problem: "\(builder.display): \(what) (\(failure)); check the file and its permissions",
                        cause: .sourceRefused)
    }
}
