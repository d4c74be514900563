// Writes the per-shard Parquet manifests: a fixed schema of flat optional columns, list<string>/list<float>
// columns and Hugging Face image structs, PLAIN values (dictionary for text if asked), RLE levels, data pages v1,
// SNAPPY/ZSTD or none. No clocks, no hash-map order: the same rows give the same bytes. The file is written under a
// temporary name and renamed on close, so a killed run never leaves a file that looks complete.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The type of a column the writer can write. Every column is optional (nullable).
public enum ParquetWriterColumnType: Sendable, Equatable {
    case string, int64, int32, double, float, bool, binary
    /// list<string> with optional elements (pyarrow's and datasets' layout: `name.list.element`).
    case stringList
    /// list<float> with optional elements.
    case floatList
    /// A Hugging Face `datasets` Image: an optional struct `{bytes: binary, path: string}` (leaves `name.bytes`,
    /// `name.path`).
    case image
}

/// One value of an `.image` column.
public struct ParquetImage: Sendable, Equatable {
    public var bytes: [UInt8]
    public var path: String?
    public init(bytes: [UInt8], path: String? = nil) {
        self.bytes = bytes
        self.path = path
    }
}

/// One column of the writer's schema.
public struct ParquetWriterColumn: Sendable, Equatable {
    public let name: String
    public let type: ParquetWriterColumnType
    public init(_ name: String, _ type: ParquetWriterColumnType) {
        self.name = name
        self.type = type
    }
}

/// One column's values for one row group; nil is null.
public enum ParquetColumnData: Sendable {
    case string([String?])
    case int64([Int64?])
    case int32([Int32?])
    case double([Double?])
    case float([Float?])
    case bool([Bool?])
    case binary([[UInt8]?])
    case stringList([[String]?])
    case floatList([[Float]?])
    case image([ParquetImage?])

    var count: Int {
        switch self {
        case .string(let v): return v.count
        case .int64(let v): return v.count
        case .int32(let v): return v.count
        case .double(let v): return v.count
        case .float(let v): return v.count
        case .bool(let v): return v.count
        case .binary(let v): return v.count
        case .stringList(let v): return v.count
        case .floatList(let v): return v.count
        case .image(let v): return v.count
        }
    }

    var type: ParquetWriterColumnType {
        switch self {
        case .string: return .string
        case .int64: return .int64
        case .int32: return .int32
        case .double: return .double
        case .float: return .float
        case .bool: return .bool
        case .binary: return .binary
        case .stringList: return .stringList
        case .floatList: return .floatList
        case .image: return .image
        }
    }
}

/// How the writer writes.
public struct ParquetWriterOptions: Sendable {
    /// `.uncompressed`, `.snappy` (the default, as pyarrow) or `.zstd`.
    public var compression: ParquetCompression = .snappy
    /// The footer's `created_by`; fixed so files are byte-identical across runs and machines.
    public var createdBy: String = "capfilt-parquet version 1"
    /// Footer key-value metadata, written in key order.
    public var keyValueMetadata: [String: String] = [:]
    /// A page is closed once its values reach this many bytes (at a row boundary).
    public var pageBytes: Int = 1 << 20
    /// Dictionary-encode text columns (strings, list<string> elements, image paths): worth it for repeated
    /// values such as statuses and error messages. Off by default.
    public var dictionary = false
    /// A chunk whose distinct values take more than this many bytes is written PLAIN instead.
    public var dictionaryPageBytes: Int = 1 << 20

    public init() {}
}

/// Writes one Parquet file, one row group per `writeRowGroup` call, the footer on `close()`.
public final class ParquetWriter {
    public let path: String
    public let columns: [ParquetWriterColumn]
    public let options: ParquetWriterOptions

    private let temporaryPath: String
    private let handle: FileHandle
    private var offset: Int64 = 0
    private var rowGroups: [WrittenRowGroup] = []
    private var closed = false

    private struct WrittenChunk {
        var path: [String]
        var physicalType: ParquetPhysicalType
        var valueCount: Int
        var encodings: [ParquetEncoding]
        var uncompressedBytes: Int64
        var compressedBytes: Int64
        var dataPageOffset: Int64
        var dictionaryPageOffset: Int64?
        var statistics: LeafStatistics?
    }
    private struct WrittenRowGroup {
        var chunks: [WrittenChunk]
        var rows: Int
    }

    public init(path: String, columns: [ParquetWriterColumn], options: ParquetWriterOptions = ParquetWriterOptions()) throws {
        func invalid(_ detail: String) -> ParquetError { ParquetError(.invalidArgument, path: path, detail: detail) }
        guard [.uncompressed, .snappy, .zstd].contains(options.compression) else {
            throw invalid("the writer compresses with UNCOMPRESSED, SNAPPY or ZSTD, not \(options.compression)")
        }
        guard !columns.isEmpty else { throw invalid("the schema has no columns") }
        var seen = Set<String>()
        for column in columns {
            guard !column.name.isEmpty, !column.name.contains(".") else {
                throw invalid("column name '\(column.name)' is empty or contains '.', which makes dotted paths ambiguous")
            }
            guard seen.insert(column.name).inserted else { throw invalid("column '\(column.name)' appears twice") }
        }
        guard options.pageBytes > 0, options.pageBytes <= 1 << 30 else {
            throw invalid("pageBytes \(options.pageBytes) is outside 1...\(1 << 30)")
        }
        guard options.dictionaryPageBytes > 0, options.dictionaryPageBytes <= 1 << 30 else {
            throw invalid("dictionaryPageBytes \(options.dictionaryPageBytes) is outside 1...\(1 << 30)")
        }
        self.path = path
        self.columns = columns
        self.options = options
        temporaryPath = path + ".partial"
        // open(2), not FileManager.createFile, which writes a temporary `.dat.nosync*` file and renames it.
        unlink(temporaryPath)
        let fd = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ParquetError(.io, path: temporaryPath, detail: "cannot create the file (\(String(cString: strerror(errno))))")
        }
        self.handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        try append(ParquetFile.magic)
    }

    deinit {
        if !closed {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: temporaryPath)
        }
    }

    /// Writes one row group: one `ParquetColumnData` per schema column, in schema order, all of the same length.
    public func writeRowGroup(_ data: [ParquetColumnData]) throws {
        guard !closed else { throw ParquetError(.invalidArgument, path: path, detail: "the writer is closed") }
        guard data.count == columns.count else {
            throw ParquetError(.invalidArgument, path: path, detail: "got \(data.count) columns for a schema of \(columns.count)")
        }
        let rows = data.first?.count ?? 0
        for (column, values) in zip(columns, data) {
            guard values.type == column.type else {
                throw ParquetError(.invalidArgument, path: path, detail: "column '\(column.name)' is \(column.type) but got \(values.type) values")
            }
            guard values.count == rows else {
                throw ParquetError(.invalidArgument, path: path, detail: "column '\(column.name)' has \(values.count) rows, "
                    + "the first column \(rows)")
            }
        }
        var chunks: [WrittenChunk] = []
        for (column, values) in zip(columns, data) {
            chunks += try writeChunks(column, values, rows: rows)
        }
        rowGroups.append(WrittenRowGroup(chunks: chunks, rows: rows))
    }

    /// Writes the footer and moves the file to `path`.
    public func close() throws {
        guard !closed else { return }
        let footer = footerBytes()
        try append(footer)
        var tail: [UInt8] = []
        withUnsafeBytes(of: UInt32(footer.count).littleEndian) { tail.append(contentsOf: $0) }
        try append(tail + ParquetFile.magic)
        do {
            try handle.synchronize()
            try handle.close()
        } catch {
            throw ParquetError(.io, path: temporaryPath, detail: "finishing the file failed (\(error))")
        }
        closed = true
        // rename(2) replaces an older file atomically: readers see the old file or the new one, never neither.
        guard rename(temporaryPath, path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temporaryPath)
            throw ParquetError(.io, path: path, detail: "moving the finished file into place failed (\(reason))")
        }
    }

    private func append(_ bytes: [UInt8]) throws {
        do {
            try handle.write(contentsOf: bytes)
        } catch {
            throw ParquetError(.io, path: temporaryPath, detail: "writing \(bytes.count) bytes failed (\(error))")
        }
        offset += Int64(bytes.count)
    }

    // MARK: Column chunks

    /// A column chunk's dictionary: distinct byte arrays numbered in order of first appearance (deterministic).
    private final class DictionaryBuilder {
        private var ids: [[UInt8]: UInt32] = [:]
        /// The entries PLAIN-encoded, as the dictionary page holds them.
        private(set) var plain: [UInt8] = []
        var count: Int { ids.count }

        func id(_ bytes: [UInt8]) -> UInt32 {
            if let id = ids[bytes] { return id }
            let id = UInt32(ids.count)
            ids[bytes] = id
            appendByteArray(bytes, to: &plain)
            return id
        }
    }

    /// One page's worth of levels and values (PLAIN bytes, booleans as bits, or dictionary ids).
    private struct PageBuilder {
        var definition: [UInt8] = []
        var repetition: [UInt8] = []
        var values: [UInt8] = []
        var bits = BitWriter()
        var ids: [UInt32] = []
        let dictionary: DictionaryBuilder?

        init(dictionary: DictionaryBuilder?) { self.dictionary = dictionary }

        /// Adds a present BYTE_ARRAY value.
        mutating func add(bytes: [UInt8]) {
            if let dictionary { ids.append(dictionary.id(bytes)) } else { appendByteArray(bytes, to: &values) }
        }

        var valueBytes: Int { values.count + bits.byteCount + 4 * ids.count }
    }

    /// One leaf of a column: its path, type, levels and how a row becomes levels and values.
    private struct Leaf {
        var path: [String]
        var physicalType: ParquetPhysicalType
        var maxDefinition: Int
        var isList: Bool
        /// Whether `options.dictionary` applies (text leaves: repeated captions, statuses, paths).
        var dictionaryCandidate = false
        var emit: (Int, inout PageBuilder) -> Void
    }

    /// The leaves of a column: one, or two for an image struct (`bytes`, `path`).
    private func leaves(_ column: ParquetWriterColumn, _ data: ParquetColumnData) -> [Leaf] {
        let name = column.name
        func flat(_ type: ParquetPhysicalType, _ isPresent: @escaping (Int) -> Bool,
                  _ encode: @escaping (Int, inout PageBuilder) -> Void) -> Leaf {
            Leaf(path: [name], physicalType: type, maxDefinition: 1, isList: false) { row, page in
                let present = isPresent(row)
                page.definition.append(present ? 1 : 0)
                if present { encode(row, &page) }
            }
        }
        func list(_ type: ParquetPhysicalType, _ count: @escaping (Int) -> Int?,
                  _ encode: @escaping (Int, Int, inout PageBuilder) -> Void) -> Leaf {
            // A list row's levels: null list (def 0), empty list (def 1), or elements (def 3; rep 0 for the first).
            Leaf(path: [name, "list", "element"], physicalType: type, maxDefinition: 3, isList: true) { row, page in
                guard let n = count(row), n > 0 else {
                    page.repetition.append(0)
                    page.definition.append(count(row) == nil ? 0 : 1)
                    return
                }
                for i in 0..<n {
                    page.repetition.append(i == 0 ? 0 : 1)
                    page.definition.append(3)
                    encode(row, i, &page)
                }
            }
        }
        func text(_ leaf: Leaf) -> Leaf {
            var marked = leaf
            marked.dictionaryCandidate = true
            return marked
        }
        switch data {
        case .string(let v): return [text(flat(.byteArray, { v[$0] != nil }) { $1.add(bytes: Array(v[$0]?.utf8 ?? "".utf8)) })]
        case .binary(let v): return [flat(.byteArray, { v[$0] != nil }) { appendByteArray(v[$0] ?? [], to: &$1.values) }]
        case .int64(let v): return [flat(.int64, { v[$0] != nil }) { appendLE(UInt64(bitPattern: v[$0] ?? 0), bytes: 8, to: &$1.values) }]
        case .int32(let v):
            return [flat(.int32, { v[$0] != nil }) { appendLE(UInt64(UInt32(bitPattern: v[$0] ?? 0)), bytes: 4, to: &$1.values) }]
        case .double(let v): return [flat(.double, { v[$0] != nil }) { appendLE((v[$0] ?? 0).bitPattern, bytes: 8, to: &$1.values) }]
        case .float(let v): return [flat(.float, { v[$0] != nil }) { appendLE(UInt64((v[$0] ?? 0).bitPattern), bytes: 4, to: &$1.values) }]
        case .bool(let v): return [flat(.boolean, { v[$0] != nil }) { $1.bits.append(v[$0] ?? false) }]
        case .stringList(let v):
            return [text(list(.byteArray, { v[$0]?.count }) { row, i, page in
                page.add(bytes: Array(v[row]?[i].utf8 ?? "".utf8))
            })]
        case .floatList(let v):
            return [list(.float, { v[$0]?.count }) { row, i, page in
                appendLE(UInt64((v[row]?[i] ?? 0).bitPattern), bytes: 4, to: &page.values)
            }]
        case .image(let v):
            // An optional struct of optional fields: def 0 = no image, 1 = image without this field, 2 = the field.
            let bytes = Leaf(path: [name, "bytes"], physicalType: .byteArray, maxDefinition: 2, isList: false) { row, page in
                guard let image = v[row] else { return page.definition.append(0) }
                page.definition.append(2)
                appendByteArray(image.bytes, to: &page.values)
            }
            let path = text(Leaf(path: [name, "path"], physicalType: .byteArray, maxDefinition: 2, isList: false) { row, page in
                guard let image = v[row] else { return page.definition.append(0) }
                guard let path = image.path else { return page.definition.append(1) }
                page.definition.append(2)
                page.add(bytes: Array(path.utf8))
            })
            return [bytes, path]
        }
    }

    private func writeChunks(_ column: ParquetWriterColumn, _ data: ParquetColumnData, rows: Int) throws -> [WrittenChunk] {
        var chunks: [WrittenChunk] = []
        for (leaf, statistics) in zip(leaves(column, data), Self.statistics(data)) {
            var encoded = try encodeChunk(leaf, column: column.name, rows: rows, dictionary: options.dictionary && leaf.dictionaryCandidate)
            if let dictionary = encoded.dictionary, dictionary.plain.count > options.dictionaryPageBytes {
                // Too many distinct values for a dictionary to pay: PLAIN, as pyarrow falls back.
                encoded = try encodeChunk(leaf, column: column.name, rows: rows, dictionary: false)
            }
            let chunkStart = offset
            var dictionaryOffset: Int64?
            var uncompressed = Int64(encoded.uncompressedBytes)
            if let dictionary = encoded.dictionary {
                dictionaryOffset = chunkStart
                let page = try pageBytes(type: .dictionaryPage, body: dictionary.plain, column: column.name) { h in
                    h.field(7) { d in
                        d.field(1, i32: Int32(dictionary.count))
                        d.field(2, i32: ParquetEncoding.plain.rawValue)
                    }
                }
                try append(page.bytes)
                uncompressed += Int64(page.uncompressed)
            }
            let dataPageOffset = offset
            try append(encoded.pages)
            var encodings = [ParquetEncoding.plain, .rle]
            if encoded.dictionary != nil { encodings.append(.rleDictionary) }
            chunks.append(WrittenChunk(path: leaf.path, physicalType: leaf.physicalType, valueCount: encoded.valueCount,
                                       encodings: encodings, uncompressedBytes: uncompressed,
                                       compressedBytes: offset - chunkStart, dataPageOffset: dataPageOffset,
                                       dictionaryPageOffset: dictionaryOffset, statistics: statistics))
        }
        return chunks
    }

    /// A chunk's data pages, encoded in memory (the dictionary page, when there is one, must precede them).
    private struct EncodedChunk {
        var pages: [UInt8] = []
        var uncompressedBytes = 0
        var valueCount = 0
        var dictionary: DictionaryBuilder?
    }

    private func encodeChunk(_ leaf: Leaf, column: String, rows: Int, dictionary useDictionary: Bool) throws -> EncodedChunk {
        var chunk = EncodedChunk(dictionary: useDictionary ? DictionaryBuilder() : nil)
        var page = PageBuilder(dictionary: chunk.dictionary)

        func flush() throws {
            guard !page.definition.isEmpty else { return }
            var body: [UInt8] = []
            if leaf.isList { appendLevels(page.repetition, bitWidth: 1, to: &body) }
            appendLevels(page.definition, bitWidth: bitWidth(forMax: leaf.maxDefinition), to: &body)
            let encoding: ParquetEncoding
            if let dictionary = chunk.dictionary {
                // Ids as the RLE / bit-packed hybrid after a bit-width byte; at least 1 bit, as other writers do.
                let width = max(1, bitWidth(forMax: dictionary.count - 1))
                body.append(UInt8(width))
                body += encodeRLEHybrid(page.ids, bitWidth: width)
                encoding = .rleDictionary
            } else {
                body += leaf.physicalType == .boolean ? page.bits.finish() : page.values
                encoding = .plain
            }
            let levels = page.definition.count
            let written = try pageBytes(type: .dataPage, body: body, column: column) { h in
                h.field(5) { d in
                    d.field(1, i32: Int32(levels))
                    d.field(2, i32: encoding.rawValue)
                    d.field(3, i32: ParquetEncoding.rle.rawValue)
                    d.field(4, i32: ParquetEncoding.rle.rawValue)
                }
            }
            chunk.pages += written.bytes
            chunk.uncompressedBytes += written.uncompressed
            chunk.valueCount += levels
            page = PageBuilder(dictionary: chunk.dictionary)
        }

        for row in 0..<rows {
            leaf.emit(row, &page)
            if page.valueBytes >= options.pageBytes { try flush() }
        }
        try flush()
        return chunk
    }

    /// A page header and its (compressed) body; `kind` writes the page-kind header (field 5 or 7).
    private func pageBytes(type: PageType, body: [UInt8], column: String,
                           kind: (inout ThriftCompactWriter) -> Void) throws -> (bytes: [UInt8], uncompressed: Int) {
        let stored = compress(body)
        guard body.count <= Int(Int32.max), stored.count <= Int(Int32.max) else {
            throw ParquetError(.invalidArgument, path: path, detail: "a page of column '\(column)' exceeds 2 GiB; "
                + "write smaller row groups")
        }
        var header = ThriftCompactWriter()
        header.beginStruct()
        header.field(1, i32: type.rawValue)
        header.field(2, i32: Int32(body.count))
        header.field(3, i32: Int32(stored.count))
        kind(&header)
        header.endStruct()
        return (header.bytes + stored, header.bytes.count + body.count)
    }

    // MARK: Statistics

    /// A chunk's null count and, where it is cheap and exact, its min and max in the column order's encoding.
    struct LeafStatistics: Equatable {
        var nullCount: Int64
        var range: (min: [UInt8], max: [UInt8])?

        static func == (a: Self, b: Self) -> Bool {
            a.nullCount == b.nullCount && a.range?.min == b.range?.min && a.range?.max == b.range?.max
        }
    }

    /// Strings longer than this get no min/max (they would have to be stored whole to stay exact).
    static let statisticsStringLimit = 256

    /// Per leaf of the column (as `leaves` orders them): its statistics, or nil for lists, where null counts are
    /// defined differently by different readers.
    static func statistics(_ data: ParquetColumnData) -> [LeafStatistics?] {
        func nulls<T>(_ values: [T?]) -> Int64 { Int64(values.reduce(0) { $0 + ($1 == nil ? 1 : 0) }) }
        func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
        func ordered<T: Comparable>(_ values: [T], _ encode: (T) -> [UInt8]) -> (min: [UInt8], max: [UInt8])? {
            guard let low = values.min(), let high = values.max() else { return nil }
            return (encode(low), encode(high))
        }
        /// Floating point: NaN takes no part, and a zero bound is written -0.0 as min and +0.0 as max (the spec's rule,
        /// since -0.0 == +0.0 leaves the sign otherwise arbitrary).
        func floating<T: BinaryFloatingPoint>(_ values: [T?], _ encode: (T) -> [UInt8]) -> LeafStatistics {
            let numbers = values.compactMap { $0 }.filter { !$0.isNaN }
            guard var low = numbers.min(), var high = numbers.max() else { return LeafStatistics(nullCount: nulls(values)) }
            if low == 0 { low = -0.0 }
            if high == 0 { high = 0.0 }
            return LeafStatistics(nullCount: nulls(values), range: (encode(low), encode(high)))
        }
        switch data {
        case .string(let v):
            let present = v.compactMap { $0.map { Array($0.utf8) } }
            let short = present.allSatisfy { $0.count <= statisticsStringLimit }
            let range: (min: [UInt8], max: [UInt8])? = short
                ? present.min(by: { $0.lexicographicallyPrecedes($1) }).flatMap { low in
                    present.max(by: { $0.lexicographicallyPrecedes($1) }).map { (low, $0) } }
                : nil
            return [LeafStatistics(nullCount: nulls(v), range: range)]
        case .binary(let v): return [LeafStatistics(nullCount: nulls(v))]
        case .int64(let v): return [LeafStatistics(nullCount: nulls(v), range: ordered(v.compactMap { $0 }, le))]
        case .int32(let v): return [LeafStatistics(nullCount: nulls(v), range: ordered(v.compactMap { $0 }, le))]
        case .double(let v): return [floating(v) { le($0.bitPattern) }]
        case .float(let v): return [floating(v) { le($0.bitPattern) }]
        case .bool(let v):
            let present = v.compactMap { $0 }
            let range: (min: [UInt8], max: [UInt8])? = present.isEmpty
                ? nil : ([present.contains(false) ? 0 : 1], [present.contains(true) ? 1 : 0])
            return [LeafStatistics(nullCount: nulls(v), range: range)]
        case .stringList, .floatList: return [nil]
        case .image(let v):
            return [LeafStatistics(nullCount: nulls(v)),
                    LeafStatistics(nullCount: Int64(v.reduce(0) { $0 + ($1?.path == nil ? 1 : 0) }))]
        }
    }

    private func compress(_ body: [UInt8]) -> [UInt8] {
        switch options.compression {
        case .snappy: return Snappy.compress(body)
        case .zstd: return Zstd.compress(body)
        default: return body
        }
    }

    private func physicalType(_ type: ParquetWriterColumnType) -> ParquetPhysicalType {
        switch type {
        case .string, .binary, .stringList, .image: return .byteArray
        case .int64: return .int64
        case .int32: return .int32
        case .double: return .double
        case .float, .floatList: return .float
        case .bool: return .boolean
        }
    }

    // MARK: Footer

    private func footerBytes() -> [UInt8] {
        var w = ThriftCompactWriter()
        w.beginStruct()
        w.field(1, i32: 1)
        // The schema, depth first: the root, then each column (a list is three nodes: LIST group, repeated group
        // "list", optional "element"; an image is a group of optional "bytes" and "path").
        struct Node {
            var name: String
            var type: ParquetPhysicalType?
            var repetition: Repetition?
            var children: Int?
            /// ConvertedType and LogicalType union field: UTF8 / STRING (0, 1) or LIST (3, 3).
            var annotation: (converted: Int32, logical: Int16)?
        }
        let text: (converted: Int32, logical: Int16) = (0, 1)
        let list: (converted: Int32, logical: Int16) = (3, 3)
        var nodes = [Node(name: "schema", type: nil, repetition: nil, children: columns.count, annotation: nil)]
        for column in columns {
            let type = physicalType(column.type)
            switch column.type {
            case .stringList, .floatList:
                nodes.append(Node(name: column.name, type: nil, repetition: .optional, children: 1, annotation: list))
                nodes.append(Node(name: "list", type: nil, repetition: .repeated, children: 1, annotation: nil))
                nodes.append(Node(name: "element", type: type, repetition: .optional, children: nil,
                                  annotation: column.type == .stringList ? text : nil))
            case .image:
                nodes.append(Node(name: column.name, type: nil, repetition: .optional, children: 2, annotation: nil))
                nodes.append(Node(name: "bytes", type: .byteArray, repetition: .optional, children: nil, annotation: nil))
                nodes.append(Node(name: "path", type: .byteArray, repetition: .optional, children: nil, annotation: text))
            default:
                nodes.append(Node(name: column.name, type: type, repetition: .optional, children: nil,
                                  annotation: column.type == .string ? text : nil))
            }
        }
        w.field(2, structs: nodes) { e, node in
            if let type = node.type { e.field(1, i32: type.rawValue) }
            if let repetition = node.repetition { e.field(3, i32: repetition.rawValue) }
            e.field(4, string: node.name)
            if let children = node.children { e.field(5, i32: Int32(children)) }
            if let annotation = node.annotation {
                e.field(6, i32: annotation.converted)
                e.field(10) { $0.field(annotation.logical) { _ in } }
            }
        }
        w.field(3, i64: Int64(rowGroups.reduce(0) { $0 + $1.rows }))
        w.field(4, structs: rowGroups) { writer, group in
            writer.field(1, structs: group.chunks) { c, chunk in
                c.field(2, i64: chunk.dictionaryPageOffset ?? chunk.dataPageOffset)
                c.field(3) { m in
                    m.field(1, i32: chunk.physicalType.rawValue)
                    m.field(2, i32List: chunk.encodings.map(\.rawValue))
                    m.field(3, stringList: chunk.path)
                    m.field(4, i32: options.compression.rawValue)
                    m.field(5, i64: Int64(chunk.valueCount))
                    m.field(6, i64: chunk.uncompressedBytes)
                    m.field(7, i64: chunk.compressedBytes)
                    m.field(9, i64: chunk.dataPageOffset)
                    if let dictionary = chunk.dictionaryPageOffset { m.field(11, i64: dictionary) }
                    if let statistics = chunk.statistics {
                        m.field(12) { st in
                            st.field(3, i64: statistics.nullCount)
                            if let range = statistics.range {
                                st.field(5, binary: range.max)
                                st.field(6, binary: range.min)
                            }
                        }
                    }
                }
            }
            writer.field(2, i64: group.chunks.reduce(0) { $0 + $1.uncompressedBytes })
            writer.field(3, i64: Int64(group.rows))
            if let first = group.chunks.first { writer.field(5, i64: first.dictionaryPageOffset ?? first.dataPageOffset) }
            writer.field(6, i64: group.chunks.reduce(0) { $0 + $1.compressedBytes })
        }
        let metadata = options.keyValueMetadata.sorted { $0.key < $1.key }
        if !metadata.isEmpty {
            w.field(5, structs: metadata) { kv, pair in
                kv.field(1, string: pair.key)
                kv.field(2, string: pair.value)
            }
        }
        w.field(6, string: options.createdBy)
        // Every leaf compares by its type's defined order (signed integers, unsigned bytes), which is what makes
        // readers trust min_value/max_value.
        let leafCount = rowGroups.first?.chunks.count ?? columns.reduce(0) { $0 + ($1.type == .image ? 2 : 1) }
        w.field(7, structs: Array(0..<leafCount)) { order, _ in order.field(1) { _ in } }
        w.endStruct()
        return w.bytes
    }
}

/// Levels as a v1 page stores them: a 4-byte little-endian length, then the RLE / bit-packed hybrid.
private func appendLevels(_ levels: [UInt8], bitWidth: Int, to body: inout [UInt8]) {
    let encoded = encodeRLEHybrid(levels, bitWidth: bitWidth)
    appendLE(UInt64(encoded.count), bytes: 4, to: &body)
    body += encoded
}

private func appendByteArray(_ bytes: [UInt8], to out: inout [UInt8]) {
    appendLE(UInt64(bytes.count), bytes: 4, to: &out)
    out += bytes
}

private func appendLE(_ value: UInt64, bytes: Int, to out: inout [UInt8]) {
    for i in 0..<bytes { out.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
}

/// PLAIN booleans: one bit per value, least significant bit first.
private struct BitWriter {
    private(set) var bytes: [UInt8] = []
    private var count = 0
    var byteCount: Int { bytes.count }

    mutating func append(_ bit: Bool) {
        if count % 8 == 0 { bytes.append(0) }
        if bit { bytes[bytes.count - 1] |= 1 << UInt8(count % 8) }
        count += 1
    }

    func finish() -> [UInt8] { bytes }
}
