// Opens a Parquet file the way a streaming ingest needs: the footer is read and checked once (every offset against
// the file size), then one row group's requested column chunks are read at a time, so memory is bounded by one
// row group of the asked columns whatever the file's size.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bounds on what a file may make the reader allocate. The defaults fit web image datasets (row groups of up to
/// a few hundred MB); raise them for larger row groups, lower them for untrusted input on small machines.
public struct ParquetReadLimits: Sendable {
    /// The footer (FileMetaData) size.
    public var maxFooterBytes: Int = 64 << 20
    /// Values (fields and list elements) in the footer's Thrift: about 20 per column chunk in real files, and
    /// each costs tens of bytes decoded, so this bounds the footer's memory (2 Mi values: about 200 MB at worst).
    public var maxFooterValues: Int = 1 << 21
    /// One column chunk's compressed size, read into memory whole.
    public var maxColumnChunkBytes: Int = 2 << 30
    /// One page's uncompressed size.
    public var maxPageBytes: Int = 512 << 20
    /// Values (nulls and list elements included) in one column chunk, and rows in one row group. A run of nulls
    /// costs a few bytes in the file and about 10 bytes per value decoded, so this bounds what a tiny hostile file
    /// can make the reader allocate (16 Mi values: about 160 MB for one column).
    public var maxValuesPerColumnChunk: Int = 1 << 24

    public init() {}
}

/// One row group as the footer describes it.
public struct RowGroupInfo: Sendable, Equatable {
    /// Rows in the row group.
    public let rowCount: Int
    /// Uncompressed size of all its column data, as the writer recorded it.
    public let totalByteSize: Int64
    /// Bytes its column chunks take in the file.
    public let compressedByteSize: Int64
}

/// A Parquet file opened for reading. Immutable after `init` and read with `pread`, so one `ParquetFile` can serve
/// several threads reading different row groups (or columns) at once.
public final class ParquetFile: Sendable {
    public let path: String
    public let schema: ParquetSchema
    public let rowGroups: [RowGroupInfo]
    /// Total rows, as the footer says (the sum of the row groups' rows).
    public let rowCount: Int
    /// The writer's `created_by` string, e.g. "parquet-cpp-arrow version 26.0.1".
    public let createdBy: String?
    /// The footer's key-value metadata (pyarrow's "ARROW:schema", datasets' "huggingface").
    public let keyValueMetadata: [String: String]
    public let limits: ParquetReadLimits

    /// The open file descriptor, closed in deinit.
    private let fileDescriptor: Int32
    private let fileSize: Int64
    let metadata: FileMetaData
    /// Per row group, per leaf column: the byte range of the column chunk in the file.
    let chunkRanges: [[Range<Int64>]]

    static let magic: [UInt8] = Array("PAR1".utf8)

    public init(path: String, limits: ParquetReadLimits = ParquetReadLimits()) throws {
        self.path = path
        self.limits = limits
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw ParquetError(.io, path: path, detail: "cannot open the file for reading (\(String(cString: strerror(errno))))")
        }
        self.fileDescriptor = descriptor
        // deinit runs only for a fully initialized object: close here when init throws.
        var opened = false
        defer { if !opened { close(descriptor) } }
        func fail(_ kind: ParquetError.Kind, _ location: String?, _ detail: String) -> ParquetError {
            ParquetError(kind, path: path, location: location, detail: detail)
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            throw fail(.io, nil, "not a regular file (a directory, device or pipe)")
        }
        let size = Int64(status.st_size)
        fileSize = size
        let head = try Self.read(descriptor, path: path, at: 0, count: Int(min(size, 4)))
        guard head == Self.magic else {
            throw fail(.notParquet, nil, size == 0 ? "the file is empty"
                : "the file does not start with the Parquet magic 'PAR1' (it starts with \(Self.describe(head)))")
        }
        guard size >= 12 else { throw fail(.truncated, nil, "the file has only \(size) bytes; a Parquet file has at least 12") }
        let tail = try Self.read(descriptor, path: path, at: size - 8, count: 8)
        if Array(tail[4..<8]) == Array("PARE".utf8) {
            throw fail(.unsupported, "footer", "the footer is encrypted (Parquet modular encryption)")
        }
        guard Array(tail[4..<8]) == Self.magic else {
            throw fail(.truncated, "footer", "the file does not end with 'PAR1'; it was probably cut short")
        }
        let footerLength = Int64(UInt32(tail[0]) | UInt32(tail[1]) << 8 | UInt32(tail[2]) << 16 | UInt32(tail[3]) << 24)
        guard footerLength <= size - 12 else {
            throw fail(.badLength, "footer", "the footer claims \(footerLength) bytes but the file has only \(size - 12) "
                + "between its magics")
        }
        guard footerLength <= Int64(limits.maxFooterBytes) else {
            throw fail(.badLength, "footer", "the footer claims \(footerLength) bytes, over the limit of "
                + "\(limits.maxFooterBytes) (ParquetReadLimits.maxFooterBytes)")
        }
        let footerStart = size - 8 - footerLength
        let footer = try Self.read(descriptor, path: path, at: footerStart, count: Int(footerLength))
        let meta: FileMetaData
        let parsedSchema: ParquetSchema
        do {
            var reader = ThriftCompactReader(bytes: footer, maxValues: limits.maxFooterValues)
            meta = try FileMetaData(reader.readStruct(named: "FileMetaData"))
            parsedSchema = try ParquetSchema(elements: meta.schema)
        } catch let error as FormatError {
            throw fail(error.kind, "footer", error.detail)
        }
        metadata = meta
        schema = parsedSchema
        createdBy = meta.createdBy
        var keyValues: [String: String] = [:]
        for (key, value) in meta.keyValues { keyValues[key] = value ?? "" }
        keyValueMetadata = keyValues

        // Check every row group's chunks against the schema and the file's data region now, so readRowGroup
        // can trust them.
        var infos: [RowGroupInfo] = []
        var ranges: [[Range<Int64>]] = []
        var totalRows = 0
        for (g, group) in meta.rowGroups.enumerated() {
            let location = "row group \(g)"
            guard group.numRows >= 0, group.numRows <= Int64(limits.maxValuesPerColumnChunk) else {
                throw fail(.badLength, location, "num_rows is \(group.numRows), outside 0...\(limits.maxValuesPerColumnChunk) "
                    + "(ParquetReadLimits.maxValuesPerColumnChunk)")
            }
            guard group.columns.count == parsedSchema.columns.count else {
                throw fail(.corrupt, location, "it has \(group.columns.count) column chunks for \(parsedSchema.columns.count) "
                    + "schema columns")
            }
            var groupRanges: [Range<Int64>] = []
            var compressed: Int64 = 0
            for (c, column) in group.columns.enumerated() {
                let descriptor = parsedSchema.columns[c]
                let at = "\(location), column \(descriptor.dottedPath)"
                guard column.pathInSchema == descriptor.path else {
                    throw fail(.corrupt, at, "the chunk's path_in_schema is \(column.pathInSchema.joined(separator: "."))")
                }
                guard column.type == descriptor.physicalType else {
                    throw fail(.corrupt, at, "the chunk's type \(column.type) differs from the schema's \(descriptor.physicalType)")
                }
                guard column.numValues >= 0, column.numValues <= Int64(limits.maxValuesPerColumnChunk) else {
                    throw fail(.badLength, at, "num_values is \(column.numValues), outside 0...\(limits.maxValuesPerColumnChunk) "
                        + "(ParquetReadLimits.maxValuesPerColumnChunk)")
                }
                var start = column.dataPageOffset
                if let dictionary = column.dictionaryPageOffset, dictionary > 0, dictionary < start { start = dictionary }
                let length = column.totalCompressedSize
                guard start >= 4, length >= 0, length <= footerStart - start else {
                    throw fail(.badLength, at, "the chunk at byte \(start) of \(length) bytes lies outside the data region "
                        + "4..<\(footerStart)")
                }
                guard length <= Int64(limits.maxColumnChunkBytes) else {
                    throw fail(.badLength, at, "the chunk has \(length) bytes, over the limit of \(limits.maxColumnChunkBytes) "
                        + "(ParquetReadLimits.maxColumnChunkBytes)")
                }
                groupRanges.append(start..<start + length)
                compressed += length
            }
            ranges.append(groupRanges)
            infos.append(RowGroupInfo(rowCount: Int(group.numRows), totalByteSize: group.totalByteSize,
                                      compressedByteSize: compressed))
            totalRows += Int(group.numRows)
        }
        guard meta.numRows == Int64(totalRows) else {
            throw fail(.corrupt, "footer", "num_rows is \(meta.numRows) but the row groups hold \(totalRows)")
        }
        rowGroups = infos
        rowCount = totalRows
        chunkRanges = ranges
        opened = true
    }

    deinit { close(fileDescriptor) }

    /// Reads the named leaf columns (dotted paths, see `schema.columns`) of row group `index`.
    public func readRowGroup(_ index: Int, columns names: [String]) throws -> [String: ParquetColumn] {
        guard rowGroups.indices.contains(index) else {
            throw ParquetError(.invalidArgument, path: path, detail: "row group \(index) does not exist; the file has "
                + "\(rowGroups.count)")
        }
        var result: [String: ParquetColumn] = [:]
        for name in names where result[name] == nil {
            guard let c = schema.columns.firstIndex(where: { $0.dottedPath == name }) else {
                let known = schema.columns.map(\.dottedPath).joined(separator: ", ")
                throw ParquetError(.invalidArgument, path: path, detail: "no column '\(name)'; the columns are \(known)")
            }
            result[name] = try readColumn(group: index, column: c)
        }
        return result
    }

    private func readColumn(group g: Int, column c: Int) throws -> ParquetColumn {
        let descriptor = schema.columns[c]
        let meta = metadata.rowGroups[g].columns[c]
        let location = "row group \(g), column \(descriptor.dottedPath)"
        guard descriptor.maxRepetitionLevel <= 1 else {
            throw ParquetError(.unsupported, path: path, location: location,
                               detail: "nested lists (repetition level \(descriptor.maxRepetitionLevel)) are not supported")
        }
        guard descriptor.physicalType != .int96 else {
            throw ParquetError(.unsupported, path: path, location: location,
                               detail: "INT96 values (legacy timestamps) are not supported; write timestamps as INT64")
        }
        guard let codec = ParquetCompression(rawValue: meta.codec),
              [.uncompressed, .snappy, .gzip, .zstd].contains(codec) else {
            let name = ParquetCompression(rawValue: meta.codec).map(\.description) ?? "codec #\(meta.codec)"
            throw ParquetError(.unsupported, path: path, location: location,
                               detail: "compression \(name) is not supported (UNCOMPRESSED, SNAPPY, GZIP and ZSTD are)")
        }
        let range = chunkRanges[g][c]
        let bytes = try Self.read(fileDescriptor, path: path, at: range.lowerBound, count: Int(range.count))
        let decoder = ColumnChunkDecoder(descriptor: descriptor, codec: codec, declaredValues: Int(meta.numValues),
                                         rowCount: rowGroups[g].rowCount, limits: limits)
        do {
            return try decoder.decode(chunk: bytes, chunkOffset: range.lowerBound)
        } catch let error as FormatError {
            throw ParquetError(error.kind, path: path, location: location, detail: error.detail)
        }
    }

    /// Reads exactly `count` bytes at `offset` (callers have checked the range against the file size).
    private static func read(_ descriptor: Int32, path: String, at offset: Int64, count: Int) throws -> [UInt8] {
        var failure: Int32 = 0
        var got = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            while got < count {
                let n = pread(descriptor, buffer.baseAddress.map { $0 + got }, count - got, off_t(offset) + off_t(got))
                if n > 0 {
                    got += n
                } else if n == 0 {
                    break
                } else if errno != EINTR {
                    failure = errno
                    break
                }
            }
            // Bytes past `got` are never read: the array is discarded below when the read fell short.
            initialized = got
        }
        if failure != 0 {
            throw ParquetError(.io, path: path, detail: "reading \(count) bytes at byte \(offset) failed "
                + "(\(String(cString: strerror(failure))))")
        }
        guard got == count else {
            throw ParquetError(.truncated, path: path, detail: "wanted \(count) bytes at byte \(offset), got \(got)")
        }
        return bytes
    }

    private static func describe(_ bytes: [UInt8]) -> String {
        let printable = bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7f }
        if printable { return "'\(String(decoding: bytes, as: UTF8.self))'" }
        let digits = Array("0123456789abcdef")
        return bytes.map { String([digits[Int($0 >> 4)], digits[Int($0 & 15)]]) }.joined(separator: " ")
    }
}
