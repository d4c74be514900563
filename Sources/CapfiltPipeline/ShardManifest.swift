// The per-shard manifests: one row per input sample a shard covers, in two files with the same columns.
// - `NNNNN.parquet`: typed and nullable, one fixed schema for every shard of every run with the same spec
//   (img2dataset writes a Parquet per shard too); what pyarrow, pandas, DuckDB and `datasets` read.
// - `NNNNN.jsonl`: the same columns, never null (absent text is "", absent sizes 0, an unscored web text has
//   `web_text_scored: false` and `web_text_itm: 0.0`), so loaders that infer a type per file
//   (`load_dataset("json")`) agree on every file.
// Columns follow img2dataset where the meaning is the same (key, url, caption, status, error_message, width,
// height, original_width, original_height, exif, sha256), then ours, then the spec's
// `output.additional_columns` copied from the input, as text.
import CapfiltImage
import CapfiltParquet

/// One manifest row: a merged sample and where it went.
struct ManifestRow {
    var record: SampleRecord
    var duplicateOf: String?
    var shard: String
}

/// One column of the manifests: its name, its Parquet type, and its value in a row.
struct ManifestColumn {
    enum Value {
        case text(String?)
        case integer(Int?)
        case number(Float?)
        case flag(Bool?)
        case texts([String])
        case numbers([Float?])
    }

    let name: String
    let type: ParquetWriterColumnType
    let value: (ManifestRow) -> Value

    /// The columns `KEY.json` has too: what the input says about the sample, and the additional columns.
    static func inputColumns(additional: [String]) -> [ManifestColumn] {
        all(additional: additional).filter { inputNames.contains($0.name) || additional.contains($0.name) }
    }

    /// The columns of a run with these additional input columns, in file order.
    static func all(additional: [String]) -> [ManifestColumn] {
        func text(_ name: String, _ f: @escaping (ManifestRow) -> String?) -> ManifestColumn {
            ManifestColumn(name: name, type: .string) { .text(f($0)) }
        }
        func integer(_ name: String, _ f: @escaping (ManifestRow) -> Int?) -> ManifestColumn {
            ManifestColumn(name: name, type: .int64) { .integer(f($0)) }
        }
        func field(_ row: ManifestRow, _ name: String) -> String? { row.record.inputFields[name] }
        func size(_ row: ManifestRow, _ name: String, _ decoded: Int?) -> Int? {
            // img2dataset's original size (before its resize) when the input says it, else the size we decoded:
            // capfilt does not resize.
            field(row, name).flatMap { Int($0) } ?? decoded
        }
        let fixed: [ManifestColumn] = [
            text("key") { $0.record.key },
            text("url") { field($0, "url") },
            text("caption") { $0.record.webText },
            text("status") { $0.record.status.rawValue },
            text("error_message") { $0.record.detail },
            integer("width") { $0.record.width },
            integer("height") { $0.record.height },
            integer("original_width") { size($0, "original_width", $0.record.width) },
            integer("original_height") { size($0, "original_height", $0.record.height) },
            text("exif") { field($0, "exif") },
            // img2dataset's sha256 is of the image as downloaded; keep the input's when it has one, else the bytes read.
            text("sha256") { field($0, "sha256") ?? $0.record.imageSHA256 },
            text("reason") { $0.record.reason },
            text("web_text_problem") { $0.record.webTextProblem },
            ManifestColumn(name: "web_text_scored", type: .bool) { .flag($0.record.webScore != nil) },
            ManifestColumn(name: "web_text_itm", type: .float) { .number($0.record.webScore?.itm) },
            ManifestColumn(name: "web_text_kept", type: .bool) { .flag($0.record.webScore?.kept) },
            ManifestColumn(name: "synthetic_captions", type: .stringList) { .texts($0.record.captions.map(\.text)) },
            ManifestColumn(name: "synthetic_itm", type: .floatList) { .numbers($0.record.captions.map(\.itm)) },
            text("main_caption") { $0.record.mainCaption },
            text("main_caption_source") { $0.record.mainCaptionSource },
            text("image_sha256") { $0.record.imageSHA256 },
            text("duplicate_of") { $0.duplicateOf },
            text("source") { $0.record.source },
            text("position") { $0.record.position },
            text("source_key") { $0.record.sourceKey },
            text("shard") { $0.shard },
        ]
        return fixed + additional.map { name in text(name) { field($0, name) } }
    }

    /// The columns that come from what the input says about a sample (also in each `KEY.json`).
    static let inputNames: Set<String> = ["url", "original_width", "original_height", "exif", "sha256"]

    /// The manifests' and `KEY.json`'s own names: an additional column may not take one.
    static let fixedNames: Set<String> = Set(all(additional: []).map(\.name))
        .union(["schema_version", "image_format", "web_text"])
}

/// The manifest of one shard: JSONL lines as rows come, Parquet row groups of `rowGroupRows` rows.
struct ShardManifestWriter {
    static let rowGroupRows = 10_000

    let columns: [ManifestColumn]
    private let parquet: ParquetWriter
    private var pending: [ManifestRow] = []

    init(parquetPath: String, columns: [ManifestColumn]) throws {
        self.columns = columns
        var options = ParquetWriterOptions()
        options.dictionary = true  // statuses, reasons, sources and shard names repeat row after row
        options.keyValueMetadata = ["capfilt.schema_version": "\(outputSchemaVersion)"]
        parquet = try ParquetWriter(path: parquetPath, columns: columns.map { ParquetWriterColumn($0.name, $0.type) },
                                    options: options)
    }

    /// The row as a JSONL line (no trailing newline): every column, never null.
    func jsonLine(_ row: ManifestRow) -> String {
        JSON.object(Dictionary(uniqueKeysWithValues: columns.map { ($0.name, $0.value(row).nonNullJSON) })).text
    }

    mutating func add(_ row: ManifestRow) throws {
        pending.append(row)
        if pending.count >= Self.rowGroupRows { try flush() }
    }

    /// Writes the last row group and the footer, and moves the file into place.
    mutating func close() throws {
        try flush()
        try parquet.close()
    }

    private mutating func flush() throws {
        guard !pending.isEmpty else { return }
        let values = columns.map { column in pending.map { column.value($0) } }
        try parquet.writeRowGroup(zip(columns, values).map { column, values in Self.data(column.type, values) })
        pending.removeAll(keepingCapacity: true)
    }

    /// One column's values as the Parquet writer takes them.
    private static func data(_ type: ParquetWriterColumnType, _ values: [ManifestColumn.Value]) -> ParquetColumnData {
        switch type {
        case .string:
            return .string(values.map { if case .text(let s) = $0 { return s }; return nil })
        case .int64:
            return .int64(values.map { if case .integer(let i?) = $0 { return Int64(i) }; return nil })
        case .float:
            return .float(values.map { if case .number(let f) = $0 { return f }; return nil })
        case .bool:
            return .bool(values.map { if case .flag(let b) = $0 { return b }; return nil })
        case .stringList:
            return .stringList(values.map { if case .texts(let t) = $0 { return t }; return nil })
        case .floatList:
            // A list with an unscored element is null as a whole: the writer's lists have no null elements.
            return .floatList(values.map { value -> [Float]? in
                guard case .numbers(let n) = value else { return nil }
                let present = n.compactMap { $0 }
                return present.count == n.count ? present : nil
            })
        case .int32, .double, .binary, .image:
            preconditionFailure("no manifest column is \(type)")
        }
    }
}

extension ManifestColumn.Value {
    /// The value in the JSON files, which never hold null: "", 0, false stand for a missing value.
    var nonNullJSON: JSON {
        switch self {
        case .text(let s): return .string(s ?? "")
        case .integer(let i): return .int(i ?? 0)
        case .number(let f): return .float(f ?? 0)
        case .flag(let b): return .bool(b ?? false)
        case .texts(let t): return .array(t.map { .string($0) })
        case .numbers(let n): return .array(n.map { .float($0 ?? 0) })
        }
    }
}

extension PipelineSpec {
    /// The manifests' own columns, which `output.additional_columns` may not name.
    static var manifestColumnNames: Set<String> { ManifestColumn.fixedNames }
}

extension PipelineSpec.Limits {
    /// The decoder's limits as the spec sets them (ingest and the merge's re-encoding decode alike).
    var imageLimits: ImageLimits {
        var limits = ImageLimits.default
        limits.maxPixels = maxImagePixels
        limits.maxWidth = maxImageSide
        limits.maxHeight = maxImageSide
        return limits
    }
}
