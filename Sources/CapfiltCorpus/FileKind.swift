// What a file looks like from its first bytes, so that a Parquet file given as
// `kind: webdataset`, a COCO captions JSON given as `kind: jsonl` or a tar given as `kind: csv` is refused up front
// with the kind it looks like, instead of "succeeding" with one fake sample or a binary header in a message.

import Foundation

/// The kinds of file users give by mistake, as recognised by their signatures.
enum SniffedFileKind: Equatable {
    case parquet, tar, gzip, zstd, zip, bzip2, xz, sqlite, pdf
    case jpeg, png, webp, gif
    /// One JSON document starting with `[`: an array, not one object per line.
    case jsonArray
    /// One JSON object spread over several lines (pretty-printed), not one object per line.
    case prettyJSON
    /// A COCO-style captions file: one object with `images` and `annotations` arrays.
    case cocoJSON
    /// Text whose first line is a JSON object: JSON Lines.
    case jsonl
    /// Other text (CSV, TSV, a plain list).
    case text
    /// Bytes with NULs or other control bytes that none of the above explains.
    case binary
    case empty

    var description: String {
        switch self {
        case .parquet: return "a Parquet file (use input.kind: parquet)"
        case .tar: return "a tar archive (webdataset shards: use input.kind: webdataset)"
        case .gzip: return "a gzip-compressed file (decompress it first)"
        case .zstd: return "a zstd-compressed file (decompress it first)"
        case .zip: return "a zip archive (unpack it, then use input.kind: folder)"
        case .bzip2: return "a bzip2-compressed file (decompress it first)"
        case .xz: return "an xz-compressed file (decompress it first)"
        case .sqlite: return "an SQLite database"
        case .pdf: return "a PDF document"
        case .jpeg, .png, .webp, .gif: return "an image (put images in a folder and use input.kind: folder)"
        case .jsonArray: return "a JSON array, not JSON Lines (write one object per line)"
        case .prettyJSON: return "one JSON document spread over several lines, not JSON Lines (write one object per line)"
        case .cocoJSON:
            return "a COCO-style captions file (one JSON object with \"images\" and \"annotations\"), not JSON Lines: "
                + "write one {\"image\": PATH, \"caption\": TEXT} object per line"
        case .jsonl: return "JSON Lines (use input.kind: jsonl)"
        case .text: return "a text file"
        case .binary: return "a binary file of no kind capfilt reads"
        case .empty: return "an empty file"
        }
    }

    /// Sniffs the file at `path`; nil when it cannot be read (the reader reports that itself).
    static func of(path: String) -> SniffedFileKind? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: 1 << 16) else { return .empty }
        let bytes = [UInt8](head)
        return sniff(bytes)
    }

    /// Sniffs a file's first bytes (up to 64 KiB).
    static func sniff(_ b: [UInt8]) -> SniffedFileKind {
        func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            b.count >= offset + magic.count && Array(b[offset..<offset + magic.count]) == magic
        }
        if b.isEmpty { return .empty }
        // A Parquet file starts with PAR1 (and ends with it unless cut short: the reader reports that).
        if starts(Array("PAR1".utf8)) { return .parquet }
        if starts(Array("ustar".utf8), at: 257) { return .tar }
        if starts([0x1F, 0x8B]) { return .gzip }
        if starts([0x28, 0xB5, 0x2F, 0xFD]) { return .zstd }
        if starts([0x50, 0x4B, 0x03, 0x04]) || starts([0x50, 0x4B, 0x05, 0x06]) { return .zip }
        if starts(Array("BZh".utf8)) { return .bzip2 }
        if starts([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) { return .xz }
        if starts(Array("SQLite format 3".utf8) + [0]) { return .sqlite }
        if starts(Array("%PDF-".utf8)) { return .pdf }
        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { return .webp }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { return .gif }
        // Text: no NUL and few control bytes (tab, line breaks and form feed aside) in what was read.
        let controls = b.lazy.filter { $0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D && $0 != 0x0C }.count
        if b.contains(0) || controls * 100 > b.count { return .binary }
        var text = b[...]
        if text.starts(with: [0xEF, 0xBB, 0xBF]) { text = text.dropFirst(3) }
        let body = text.drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        guard let first = body.first else { return .text }
        if first == UInt8(ascii: "[") { return .jsonArray }
        guard first == UInt8(ascii: "{") else { return .text }
        let line = body.prefix { $0 != 0x0A }
        if line.count == body.count && b.count >= 1 << 16 {
            // The first line is longer than what was read: a COCO file on one line shows its "images" early.
            let head = String(decoding: line.prefix(1 << 16), as: UTF8.self)
            return head.range(of: #""images"\s*:\s*\["#, options: .regularExpression) != nil ? .cocoJSON : .jsonl
        }
        if let object = try? JSONLineParser.parseObject(Array(line)) {
            let names = Set(object.map(\.key))
            return names.contains("images") && names.contains("annotations") ? .cocoJSON : .jsonl
        }
        return .prettyJSON
    }

    /// Whether a file of this kind can be read by `kind` (damaged ones included: a truncated tar is the tar
    /// reader's to report, sample by sample).
    func fits(_ kind: CorpusSpec.Kind) -> Bool {
        switch kind {
        case .webdataset: return [.tar, .binary, .empty].contains(self)
        case .parquet: return self == .parquet
        // A list whose first line is damaged still reads (that line becomes a problem sample).
        case .jsonl: return [.jsonl, .text, .empty].contains(self)
        case .csv, .tsv: return [.text, .empty].contains(self)
        case .folder: return true
        }
    }
}

/// What an image folder holds when it holds no images: the commonest extensions, and the input kind they suggest.
public enum FolderContents {
    /// "; it holds 3 .parquet files: it looks like a Parquet dataset, use input.kind: parquet" (empty if nothing
    /// to say). Looks at up to 10,000 entries of the tree.
    public static func hint(_ path: String) -> String {
        guard let walk = FileManager.default.enumerator(atPath: path) else { return "" }
        var counts: [String: Int] = [:]
        var seen = 0
        while let name = walk.nextObject() as? String, seen < 10_000 {
            seen += 1
            let ext = (name as NSString).pathExtension.lowercased()
            if !ext.isEmpty { counts[ext, default: 0] += 1 }
        }
        guard !counts.isEmpty else { return seen == 0 ? "; it is empty" : "" }
        let top = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(3)
        let listed = top.map { "\($0.value) .\($0.key)" }.joined(separator: ", ")
        let kinds = ["parquet": "parquet", "tar": "webdataset", "jsonl": "jsonl", "csv": "csv", "tsv": "tsv"]
        guard let (ext, _) = top.first, let kind = kinds[ext] else { return "; it holds \(listed) files" }
        return "; it holds \(listed) files: it looks like \(kind == "webdataset" ? "webdataset shards" : "." + ext + " input"), "
            + "use input.kind: \(kind)"
    }
}
