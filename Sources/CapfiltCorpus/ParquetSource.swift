// Samples from one Parquet file, row group by row group: what Hugging Face image datasets, img2dataset's parquet
// output and LAION-style metadata tables are. Memory is one row group of the columns a sample needs; a row group
// that cannot be decoded becomes one problem sample per row (so every position the plan counted still exists), and
// the next row group follows.

import CapfiltParquet
import Foundation

/// How one Parquet file's columns make samples, decided from its schema before any row is read.
struct ParquetLayout: Sendable, Equatable {
    enum Image: Sendable, Equatable {
        /// A Hugging Face `datasets` Image feature: a struct whose `bytes` leaf holds the encoded image and whose
        /// `path` leaf names its file (read from disk when `bytes` is null) or just its original name.
        case imageStruct(bytes: String, path: String?)
        /// Encoded images in a plain binary column (img2dataset's `jpg`, a `datasets` `Value("binary")`).
        case binary(String)
        /// Paths of image files on disk (a metadata table), resolved and confined as a list's paths are.
        case path(String)
    }

    let image: Image
    /// The caption's leaf column.
    let caption: String
    /// The key's leaf column, when the spec names one.
    let key: String?
    /// The other top-level columns of text, numbers or booleans, kept as metadata text, in schema order.
    let extras: [String]

    /// Every leaf column a sample needs.
    var leaves: [String] {
        var names: [String]
        switch image {
        case .imageStruct(let bytes, let path): names = [bytes] + (path.map { [$0] } ?? [])
        case .binary(let name), .path(let name): names = [name]
        }
        return names + [caption] + (key.map { [$0] } ?? []) + extras
    }

    /// The image column's name as the spec gives it.
    var imageColumnName: String {
        switch image {
        case .imageStruct(let bytes, _): return String(bytes.dropLast(".bytes".count))
        case .binary(let name), .path(let name): return name
        }
    }

    /// Reads the layout off a schema, or says (naming the columns there are) why this file cannot be a corpus.
    static func make(schema: ParquetSchema, options: CorpusOptions) -> Result<ParquetLayout, Refusal> {
        let top = schema.columns.filter { $0.path.count == 1 && $0.maxRepetitionLevel == 0 }
        func describe(_ c: ParquetColumnDescriptor) -> String {
            let type: String
            switch c.physicalType {
            case .byteArray, .fixedLenByteArray: type = c.logicalType == .string ? "string" : "binary"
            default: type = c.physicalType.description.lowercased()
            }
            return "\(c.dottedPath) (\(type))"
        }
        let known = schema.columns.map(describe).joined(separator: ", ")
        // The image column.
        let name = options.imageColumn
        let image: Image
        if let bytes = schema.column(name + ".bytes"), bytes.physicalType == .byteArray, bytes.maxRepetitionLevel == 0 {
            let path = schema.column(name + ".path").flatMap { $0.physicalType == .byteArray ? $0.dottedPath : nil }
            image = .imageStruct(bytes: bytes.dottedPath, path: path)
        } else if let column = schema.column(name), column.maxRepetitionLevel == 0,
                  column.physicalType == .byteArray || column.physicalType == .fixedLenByteArray {
            image = column.logicalType == .string ? .path(name) : .binary(name)
        } else {
            var hint = ""
            let images = schema.columns.compactMap { c -> String? in
                if c.path.last == "bytes", c.path.count == 2, c.physicalType == .byteArray { return c.path[0] }
                if c.path.count == 1, c.physicalType == .byteArray, c.logicalType != .string { return c.path[0] }
                return nil
            }
            if let first = images.first {
                hint = "; the image column looks like \"\(first)\": set input.image_column: \(first)"
            } else if let url = top.first(where: { ["url", "URL", "image_url", "img_url"].contains($0.dottedPath) }) {
                hint = "; the file has a URL column \"\(url.dottedPath)\" but no images: " + Self.downloadAdvice(url.dottedPath)
            }
            let why = schema.column(name) != nil || !schema.columns(under: name).isEmpty
                ? "column \"\(name)\" holds neither image bytes, an image struct {bytes, path} nor file paths"
                : "no column \"\(name)\" for input.image_column"
            return .failure(Refusal(reason: "\(why); columns: \(known)\(hint)"))
        }
        // The caption and key columns: flat text.
        func textColumn(_ name: String, setting: String) -> Result<String, Refusal> {
            guard let column = schema.column(name), column.maxRepetitionLevel == 0 else {
                let texts = top.filter { $0.physicalType == .byteArray && $0.logicalType == .string }.map(\.dottedPath)
                let hint = texts.isEmpty ? "" : "; text columns: \(texts.joined(separator: ", "))"
                return .failure(Refusal(reason: "no column \"\(name)\" for \(setting)\(hint); columns: \(known)"))
            }
            guard column.physicalType == .byteArray else {
                return .failure(Refusal(reason: "column \"\(name)\" (\(setting)) holds \(column.physicalType) values, not text"))
            }
            return .success(name)
        }
        let caption: String
        switch textColumn(options.captionColumn, setting: "input.caption_column") {
        case .success(let c): caption = c
        case .failure(let why): return .failure(why)
        }
        var key: String?
        if let name = options.keyColumn {
            switch textColumn(name, setting: "input.key_column") {
            case .success(let c): key = c
            case .failure(let why): return .failure(why)
            }
        }
        let used = Set([options.imageColumn, caption] + (key.map { [$0] } ?? []))
        let extras = top.filter { c in
            !used.contains(c.dottedPath) && (c.physicalType != .byteArray || c.logicalType == .string)
                && c.physicalType != .fixedLenByteArray && c.physicalType != .int96
        }.map(\.dottedPath)
        return .success(ParquetLayout(image: image, caption: caption, key: key, extras: extras))
    }

    /// Why a file cannot be read as a corpus with the spec's columns.
    struct Refusal: Error, Sendable { let reason: String }

    static func downloadAdvice(_ column: String) -> String {
        "capfilt reads images, not URLs; download them first, e.g. `img2dataset --url_list FILE.parquet "
            + "--input_format parquet --url_col \(column) --caption_col caption --output_format webdataset`, then "
            + "point capfilt at the shards"
    }
}

/// What a Parquet file is before its rows are read: the open file and its layout, or why it yields no rows.
enum ParquetOpening {
    case ready(ParquetFile, ParquetLayout)
    /// The file is a Parquet file but unusable as a whole (damaged footer, no image column): one problem sample.
    case refused(String)

    static func open(path: String, options: CorpusOptions) -> ParquetOpening {
        let file: ParquetFile
        do {
            file = try ParquetFile(path: path)
        } catch {
            return .refused("cannot be read as Parquet (\(error))")
        }
        switch ParquetLayout.make(schema: file.schema, options: options) {
        case .success(let layout): return .ready(file, layout)
        case .failure(let why): return .refused(why.reason)
        }
    }
}

/// Reads one Parquet file; memory is one row group of the layout's columns.
final class ParquetSource: SampleSource {
    private let display: String
    private let path: String
    private let options: CorpusOptions
    private var opening: ParquetOpening?
    private var builder: ListSampleBuilder
    /// The row group in memory: its index, its columns (or why it could not be decoded), the next row in it.
    private struct Group {
        let index: Int
        let rows: Int
        var columns: [String: ParquetColumn]?
        var failure: String?
        var next = 0
    }
    private var group: Group?
    private var nextGroup = 0
    /// The file's row index of the next sample.
    private var row = 0
    private var done = false

    init(display: String, path: String, options: CorpusOptions) {
        self.display = display
        self.path = path
        self.options = options
        builder = ListSampleBuilder(display: display, folder: URL(fileURLWithPath: path).deletingLastPathComponent(),
                                    options: options, emptyCaptionIsMissing: false)
    }

    private func location(_ row: Int) -> SampleLocation { SampleLocation(source: display, position: "row \(row)") }

    private func opened() -> ParquetOpening {
        if let opening { return opening }
        let made = ParquetOpening.open(path: path, options: options)
        opening = made
        return made
    }

    func next(ordinal: Int) -> InputSample? {
        if done { return nil }
        let file: ParquetFile, layout: ParquetLayout
        switch opened() {
        case .refused(let why):
            done = true
            return .problem(ordinal: ordinal, key: "(refused source)", location: location(0), reason: why,
                            problem: "\(display): \(why)", cause: .sourceRefused)
        case .ready(let f, let l): (file, layout) = (f, l)
        }
        // Move to the row group that holds the next row.
        while group.map({ $0.next >= $0.rows }) ?? true {
            guard nextGroup < file.rowGroups.count else {
                done = true
                group = nil
                return nil
            }
            var loaded = Group(index: nextGroup, rows: file.rowGroups[nextGroup].rowCount)
            nextGroup += 1
            if loaded.rows > 0 {
                do {
                    loaded.columns = try file.readRowGroup(loaded.index, columns: layout.leaves)
                } catch {
                    loaded.failure = "row group \(loaded.index) cannot be decoded (\(error))"
                }
            }
            group = loaded
        }
        let current = group!
        defer { row += 1; group?.next += 1 }
        guard let columns = current.columns else {
            let why = current.failure ?? "row group \(current.index) cannot be decoded"
            return .problem(ordinal: ordinal, key: InputSample.derivedKey(ordinal: ordinal), location: location(row),
                            reason: "\(why); the rows of this row group are lost", problem: "\(display): \(why)",
                            cause: .shardDamaged)
        }
        return sample(columns, layout: layout, r: current.next, ordinal: ordinal)
    }

    /// Skips whole row groups without reading them; rows of a row group partly skipped are read and dropped.
    func skip(_ count: Int) -> Int {
        guard count > 0, !done else { return 0 }
        guard group == nil, case .ready(let file, _) = opened() else { return skipBySamples(count) }
        var skipped = 0
        while nextGroup < file.rowGroups.count, skipped + file.rowGroups[nextGroup].rowCount <= count {
            skipped += file.rowGroups[nextGroup].rowCount
            row += file.rowGroups[nextGroup].rowCount
            nextGroup += 1
        }
        return skipped + skipBySamples(count - skipped)
    }

    private func sample(_ columns: [String: ParquetColumn], layout: ParquetLayout, r: Int, ordinal: Int) -> InputSample {
        var problems: [String] = []
        let at = "row \(row)"
        let image = imagePayload(columns, layout: layout, r: r, at: at)
        var text = TextField.missing
        if let caption = columns[layout.caption], let bytes = caption.bytes(at: r) {
            text = TextField.decoding(Array(bytes))
        }
        var key = InputSample.derivedKey(ordinal: ordinal)
        if let name = layout.key {
            if let value = columns[name]?.string(at: r), !value.isEmpty {
                key = value
            } else {
                problems.append("\(at): key column \"\(name)\" is null, empty or not text; the key is derived from "
                    + "the sample's position")
            }
        }
        var metadata: [String: String] = [:]
        for name in layout.extras {
            guard let column = columns[name] else { continue }
            switch column.value(at: r) {
            case .null, .list: continue
            case .bool(let v): metadata[name] = v ? "true" : "false"
            case .int32(let v): metadata[name] = String(v)
            case .int64(let v): metadata[name] = String(v)
            case .float(let v): metadata[name] = "\(v)"
            case .double(let v): metadata[name] = "\(v)"
            case .string(let v): metadata[name] = v
            case .bytes(let v): metadata[name] = String(decoding: v, as: UTF8.self)
            }
        }
        return InputSample(ordinal: ordinal, sourceKey: key, location: location(row), image: image, text: text,
                           metadata: metadata, problems: problems)
    }

    private func imagePayload(_ columns: [String: ParquetColumn], layout: ParquetLayout, r: Int, at: String) -> ImagePayload {
        let name = layout.imageColumnName
        switch layout.image {
        case .binary(let leaf):
            guard let bytes = columns[leaf]?.bytes(at: r) else { return .missing(reason: "\(at): column \"\(name)\" is null") }
            return .bytes(Array(bytes), fileExtension: Self.fileExtension(of: bytes, column: leaf))
        case .imageStruct(let bytesLeaf, let pathLeaf):
            let path = pathLeaf.flatMap { columns[$0]?.string(at: r) }
            if let bytes = columns[bytesLeaf]?.bytes(at: r) {
                let named = path.flatMap { p in p.split(separator: ".").last.map { String($0).lowercased() } }
                return .bytes(Array(bytes), fileExtension: named ?? Self.fileExtension(of: bytes, column: name))
            }
            guard let path, !path.isEmpty else { return .missing(reason: "\(at): column \"\(name)\" is null") }
            return resolve(path, context: "\(at): \(name).path")
        case .path(let leaf):
            guard let path = columns[leaf]?.string(at: r) else {
                return .missing(reason: "\(at): column \"\(name)\" is null or not text")
            }
            return resolve(path, context: "\(at): column \"\(name)\"")
        }
    }

    /// A path from the file, against the Parquet file's folder, confined to it (or `input.root`) as list paths are.
    private func resolve(_ path: String, context: String) -> ImagePayload {
        let payload = ListSampleBuilder.resolve(path, against: builder.folder, describing: context)
        if case .refused(_, .imageIsURL) = payload {
            return .refused(reason: "\(context) is a URL; " + ParquetLayout.downloadAdvice(layout: opening), cause: .imageIsURL)
        }
        guard case .file(let url) = payload, !options.allowAnyPath else { return payload }
        return builder.confine(url, written: path, context: context)
    }

    /// The image format by its first bytes (so a decoder's message names the right one), else the column's name.
    static func fileExtension(of bytes: ArraySlice<UInt8>, column: String) -> String {
        let b = Array(bytes.prefix(12))
        if b.starts(with: [0xFF, 0xD8, 0xFF]) { return "jpg" }
        if b.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return "png" }
        if b.count == 12, b.starts(with: Array("RIFF".utf8)), Array(b[8..<12]) == Array("WEBP".utf8) { return "webp" }
        if b.starts(with: Array("GIF8".utf8)) { return "gif" }
        return column.lowercased()
    }
}

extension ParquetLayout {
    /// The download advice naming the file's image column, when the layout is known.
    static func downloadAdvice(layout opening: ParquetOpening?) -> String {
        if case .ready(_, let layout)? = opening { return downloadAdvice(layout.imageColumnName) }
        return downloadAdvice("url")
    }
}
