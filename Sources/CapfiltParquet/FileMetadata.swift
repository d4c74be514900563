// The parts of parquet-format's parquet.thrift that a reader of pyarrow/datasets files needs, with the field ids
// of that definition. Fields we never use are skipped; required fields that are missing are errors naming them.

/// A Parquet physical type (parquet.thrift `Type`).
public enum ParquetPhysicalType: Int32, Sendable, Equatable, CustomStringConvertible {
    case boolean = 0, int32 = 1, int64 = 2, int96 = 3, float = 4, double = 5, byteArray = 6, fixedLenByteArray = 7

    public var description: String {
        switch self {
        case .boolean: return "BOOLEAN"
        case .int32: return "INT32"
        case .int64: return "INT64"
        case .int96: return "INT96"
        case .float: return "FLOAT"
        case .double: return "DOUBLE"
        case .byteArray: return "BYTE_ARRAY"
        case .fixedLenByteArray: return "FIXED_LEN_BYTE_ARRAY"
        }
    }
}

/// A compression codec (parquet.thrift `CompressionCodec`).
public enum ParquetCompression: Int32, Sendable, Equatable, CustomStringConvertible {
    case uncompressed = 0, snappy = 1, gzip = 2, lzo = 3, brotli = 4, lz4 = 5, zstd = 6, lz4Raw = 7

    public var description: String {
        switch self {
        case .uncompressed: return "UNCOMPRESSED"
        case .snappy: return "SNAPPY"
        case .gzip: return "GZIP"
        case .lzo: return "LZO"
        case .brotli: return "BROTLI"
        case .lz4: return "LZ4"
        case .zstd: return "ZSTD"
        case .lz4Raw: return "LZ4_RAW"
        }
    }
}

/// A value or level encoding (parquet.thrift `Encoding`). Unknown numbers are kept so errors can name them.
public struct ParquetEncoding: RawRepresentable, Sendable, Equatable, Hashable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let plain = ParquetEncoding(rawValue: 0)
    public static let plainDictionary = ParquetEncoding(rawValue: 2)
    public static let rle = ParquetEncoding(rawValue: 3)
    public static let bitPacked = ParquetEncoding(rawValue: 4)
    public static let deltaBinaryPacked = ParquetEncoding(rawValue: 5)
    public static let deltaLengthByteArray = ParquetEncoding(rawValue: 6)
    public static let deltaByteArray = ParquetEncoding(rawValue: 7)
    public static let rleDictionary = ParquetEncoding(rawValue: 8)
    public static let byteStreamSplit = ParquetEncoding(rawValue: 9)

    public var description: String {
        switch rawValue {
        case 0: return "PLAIN"
        case 2: return "PLAIN_DICTIONARY"
        case 3: return "RLE"
        case 4: return "BIT_PACKED"
        case 5: return "DELTA_BINARY_PACKED"
        case 6: return "DELTA_LENGTH_BYTE_ARRAY"
        case 7: return "DELTA_BYTE_ARRAY"
        case 8: return "RLE_DICTIONARY"
        case 9: return "BYTE_STREAM_SPLIT"
        default: return "encoding #\(rawValue)"
        }
    }
}

/// parquet.thrift `FieldRepetitionType`.
enum Repetition: Int32 {
    case required = 0, optional = 1, repeated = 2
}

/// parquet.thrift `SchemaElement`: one node of the flattened (depth-first) schema tree.
struct SchemaElement {
    var type: ParquetPhysicalType?
    var typeLength: Int32?
    var repetition: Repetition?
    var name: String
    var numChildren: Int32?
    var convertedType: Int32?
    var scale: Int32?
    var precision: Int32?
    var logicalType: ParquetLogicalType?

    init(_ s: ThriftStruct) throws {
        name = try s.string(4, "name")
        if let raw = try s.optionalI32(1, "type") {
            guard let t = ParquetPhysicalType(rawValue: raw) else {
                throw FormatError(.badThrift, "schema element '\(name)' has unknown physical type \(raw)")
            }
            type = t
        }
        typeLength = try s.optionalI32(2, "type_length")
        if let raw = try s.optionalI32(3, "repetition_type") {
            guard let r = Repetition(rawValue: raw) else {
                throw FormatError(.badThrift, "schema element '\(name)' has unknown repetition \(raw)")
            }
            repetition = r
        }
        numChildren = try s.optionalI32(5, "num_children")
        convertedType = try s.optionalI32(6, "converted_type")
        scale = try s.optionalI32(7, "scale")
        precision = try s.optionalI32(8, "precision")
        if let logical = try s.structure(10, "logicalType", as: "LogicalType") {
            logicalType = ParquetLogicalType(union: logical)
        }
    }
}

/// parquet.thrift `ColumnMetaData` (the fields a reader needs).
struct ColumnMetaData {
    var type: ParquetPhysicalType
    var encodings: [ParquetEncoding]
    var pathInSchema: [String]
    var codec: Int32
    var numValues: Int64
    var totalUncompressedSize: Int64
    var totalCompressedSize: Int64
    var dataPageOffset: Int64
    var dictionaryPageOffset: Int64?

    init(_ s: ThriftStruct) throws {
        let raw = try s.i32(1, "type")
        guard let t = ParquetPhysicalType(rawValue: raw) else {
            throw FormatError(.badThrift, "column metadata has unknown physical type \(raw)")
        }
        type = t
        encodings = try s.i32List(2, "encodings").map(ParquetEncoding.init(rawValue:))
        pathInSchema = try s.stringList(3, "path_in_schema")
        codec = try s.i32(4, "codec")
        numValues = try s.i64(5, "num_values")
        totalUncompressedSize = try s.i64(6, "total_uncompressed_size")
        totalCompressedSize = try s.i64(7, "total_compressed_size")
        dataPageOffset = try s.i64(9, "data_page_offset")
        dictionaryPageOffset = try s.optionalI64(11, "dictionary_page_offset")
    }
}

/// parquet.thrift `RowGroup`.
struct RowGroupMetaData {
    var columns: [ColumnMetaData]
    var totalByteSize: Int64
    var numRows: Int64

    init(_ s: ThriftStruct) throws {
        let chunks = try s.structList(1, "columns", of: "ColumnChunk")
        columns = try chunks.map { chunk in
            if try chunk.optionalString(1, "file_path") != nil {
                throw FormatError(.unsupported, "a column chunk lives in another file (ColumnChunk.file_path)")
            }
            if chunk.has(8) || chunk.has(9) {
                throw FormatError(.unsupported, "the file uses Parquet modular encryption")
            }
            guard let meta = try chunk.structure(3, "meta_data", as: "ColumnMetaData") else {
                throw FormatError(.badThrift, "ColumnChunk.meta_data (field 3) is missing")
            }
            return try ColumnMetaData(meta)
        }
        totalByteSize = try s.i64(2, "total_byte_size")
        numRows = try s.i64(3, "num_rows")
    }
}

/// parquet.thrift `FileMetaData`.
struct FileMetaData {
    var version: Int32
    var schema: [SchemaElement]
    var numRows: Int64
    var rowGroups: [RowGroupMetaData]
    var keyValues: [(String, String?)]
    var createdBy: String?

    init(_ s: ThriftStruct) throws {
        if s.has(8) {
            throw FormatError(.unsupported, "the file uses Parquet modular encryption (plaintext footer)")
        }
        version = try s.i32(1, "version")
        schema = try s.structList(2, "schema", of: "SchemaElement").map(SchemaElement.init)
        numRows = try s.i64(3, "num_rows")
        rowGroups = try s.structList(4, "row_groups", of: "RowGroup").map(RowGroupMetaData.init)
        keyValues = try s.structList(5, "key_value_metadata", of: "KeyValue", required: false).map { kv in
            (try kv.string(1, "key"), try kv.optionalString(2, "value"))
        }
        createdBy = try s.optionalString(6, "created_by")
    }
}

/// parquet.thrift `PageType`.
enum PageType: Int32 {
    case dataPage = 0, indexPage = 1, dictionaryPage = 2, dataPageV2 = 3
}

/// parquet.thrift `PageHeader` with whichever of its page-kind headers is present.
struct PageHeader {
    var type: PageType
    var uncompressedSize: Int
    var compressedSize: Int
    /// DATA_PAGE (v1): value count (nulls included), value encoding, level encodings.
    var v1: (numValues: Int, encoding: ParquetEncoding, definitionEncoding: ParquetEncoding,
             repetitionEncoding: ParquetEncoding)?
    /// DICTIONARY_PAGE: entry count and encoding.
    var dictionary: (numValues: Int, encoding: ParquetEncoding)?
    /// DATA_PAGE_V2: counts, value encoding, the (uncompressed) level byte lengths and whether values are compressed.
    var v2: (numValues: Int, numNulls: Int, numRows: Int, encoding: ParquetEncoding, definitionBytes: Int,
             repetitionBytes: Int, isCompressed: Bool)?

    init(_ s: ThriftStruct) throws {
        let rawType = try s.i32(1, "type")
        guard let t = PageType(rawValue: rawType) else {
            throw FormatError(.badThrift, "page header has unknown page type \(rawType)")
        }
        type = t
        uncompressedSize = try Self.count(s.i32(2, "uncompressed_page_size"), "uncompressed_page_size")
        compressedSize = try Self.count(s.i32(3, "compressed_page_size"), "compressed_page_size")
        if let h = try s.structure(5, "data_page_header", as: "DataPageHeader") {
            v1 = (try Self.count(h.i32(1, "num_values"), "num_values"),
                  ParquetEncoding(rawValue: try h.i32(2, "encoding")),
                  ParquetEncoding(rawValue: try h.i32(3, "definition_level_encoding")),
                  ParquetEncoding(rawValue: try h.i32(4, "repetition_level_encoding")))
        }
        if let h = try s.structure(7, "dictionary_page_header", as: "DictionaryPageHeader") {
            dictionary = (try Self.count(h.i32(1, "num_values"), "num_values"),
                          ParquetEncoding(rawValue: try h.i32(2, "encoding")))
        }
        if let h = try s.structure(8, "data_page_header_v2", as: "DataPageHeaderV2") {
            v2 = (try Self.count(h.i32(1, "num_values"), "num_values"),
                  try Self.count(h.i32(2, "num_nulls"), "num_nulls"),
                  try Self.count(h.i32(3, "num_rows"), "num_rows"),
                  ParquetEncoding(rawValue: try h.i32(4, "encoding")),
                  try Self.count(h.i32(5, "definition_levels_byte_length"), "definition_levels_byte_length"),
                  try Self.count(h.i32(6, "repetition_levels_byte_length"), "repetition_levels_byte_length"),
                  try h.optionalBool(7, "is_compressed") ?? true)
        }
    }

    private static func count(_ value: Int32, _ field: String) throws -> Int {
        guard value >= 0 else { throw FormatError(.badLength, "page header \(field) is negative (\(value))") }
        return Int(value)
    }
}
