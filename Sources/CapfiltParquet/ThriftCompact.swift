// Parquet metadata (the footer and every page header) is Thrift in the compact protocol. Decoding goes through a
// small generic tree first, so every length is checked against the bytes present and unknown fields are skipped
// the same way everywhere; the typed structs in FileMetadata.swift then read fields by id.

/// A decoding problem below the level that knows the file's path; `ParquetFile` adds path and location.
struct FormatError: Error {
    let kind: ParquetError.Kind
    let detail: String
    init(_ kind: ParquetError.Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }
}

/// One decoded Thrift value. Structs keep their fields by id; unknown ids are kept and ignored by the readers.
indirect enum ThriftValue {
    case bool(Bool)
    case byte(Int8)
    case i16(Int16)
    case i32(Int32)
    case i64(Int64)
    case double(Double)
    case binary([UInt8])
    case list([ThriftValue])
    case map([(ThriftValue, ThriftValue)])
    case structure(ThriftStruct)
}

/// A decoded Thrift struct: its fields by id, with typed accessors that say which field of which struct is wrong.
struct ThriftStruct {
    let name: String
    var fields: [Int16: ThriftValue]

    func has(_ id: Int16) -> Bool { fields[id] != nil }

    private func missing(_ id: Int16, _ field: String) -> FormatError {
        FormatError(.badThrift, "\(name).\(field) (field \(id)) is missing")
    }
    private func wrongType(_ id: Int16, _ field: String, _ want: String) -> FormatError {
        FormatError(.badThrift, "\(name).\(field) (field \(id)) is not \(want)")
    }

    func i32(_ id: Int16, _ field: String) throws -> Int32 {
        guard let value = try optionalI32(id, field) else { throw missing(id, field) }
        return value
    }
    func optionalI32(_ id: Int16, _ field: String) throws -> Int32? {
        switch fields[id] {
        case nil: return nil
        case .i32(let v): return v
        case .i16(let v): return Int32(v)
        case .byte(let v): return Int32(v)
        default: throw wrongType(id, field, "an i32")
        }
    }
    func i64(_ id: Int16, _ field: String) throws -> Int64 {
        guard let value = try optionalI64(id, field) else { throw missing(id, field) }
        return value
    }
    func optionalI64(_ id: Int16, _ field: String) throws -> Int64? {
        switch fields[id] {
        case nil: return nil
        case .i64(let v): return v
        case .i32(let v): return Int64(v)
        case .i16(let v): return Int64(v)
        case .byte(let v): return Int64(v)
        default: throw wrongType(id, field, "an i64")
        }
    }
    func optionalBool(_ id: Int16, _ field: String) throws -> Bool? {
        switch fields[id] {
        case nil: return nil
        case .bool(let v): return v
        default: throw wrongType(id, field, "a bool")
        }
    }
    func string(_ id: Int16, _ field: String) throws -> String {
        guard let value = try optionalString(id, field) else { throw missing(id, field) }
        return value
    }
    func optionalString(_ id: Int16, _ field: String) throws -> String? {
        switch fields[id] {
        case nil: return nil
        case .binary(let bytes):
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw FormatError(.badThrift, "\(name).\(field) (field \(id)) is not valid UTF-8")
            }
            return text
        default: throw wrongType(id, field, "a string")
        }
    }
    func list(_ id: Int16, _ field: String) throws -> [ThriftValue] {
        guard let value = try optionalList(id, field) else { throw missing(id, field) }
        return value
    }
    func optionalList(_ id: Int16, _ field: String) throws -> [ThriftValue]? {
        switch fields[id] {
        case nil: return nil
        case .list(let v): return v
        default: throw wrongType(id, field, "a list")
        }
    }
    func structure(_ id: Int16, _ field: String, as structName: String) throws -> ThriftStruct? {
        switch fields[id] {
        case nil: return nil
        case .structure(var s):
            s = ThriftStruct(name: structName, fields: s.fields)
            return s
        default: throw wrongType(id, field, "a struct")
        }
    }
    /// The list's elements as structs named `structName`.
    func structList(_ id: Int16, _ field: String, of structName: String, required: Bool = true) throws -> [ThriftStruct] {
        guard let items = required ? try list(id, field) : try optionalList(id, field) else { return [] }
        return try items.map { item in
            guard case .structure(let s) = item else { throw wrongType(id, field, "a list of structs") }
            return ThriftStruct(name: structName, fields: s.fields)
        }
    }
    func i32List(_ id: Int16, _ field: String) throws -> [Int32] {
        try list(id, field).map { item in
            guard case .i32(let v) = item else { throw wrongType(id, field, "a list of i32") }
            return v
        }
    }
    func stringList(_ id: Int16, _ field: String) throws -> [String] {
        try list(id, field).map { item in
            guard case .binary(let bytes) = item, let text = String(validating: bytes, as: UTF8.self) else {
                throw wrongType(id, field, "a list of UTF-8 strings")
            }
            return text
        }
    }
}

/// Reads the compact protocol from a byte buffer, never past `end`.
struct ThriftCompactReader {
    /// Nesting deeper than this is refused: real Parquet metadata nests 5 levels, hostile input could nest millions.
    static let maxDepth = 32

    let bytes: [UInt8]
    private(set) var position: Int
    let end: Int
    /// Values left to decode. Each decoded value costs tens of bytes of memory but as little as one byte of input,
    /// so input size alone does not bound memory.
    private var budget: Int

    init(bytes: [UInt8], start: Int = 0, end: Int? = nil, maxValues: Int = 1 << 16) {
        self.bytes = bytes
        self.position = start
        self.end = end ?? bytes.count
        self.budget = maxValues
    }

    private mutating func spend() throws {
        budget -= 1
        guard budget >= 0 else {
            throw FormatError(.badLength, "the Thrift metadata holds more values than the limit "
                + "(ParquetReadLimits.maxFooterValues for the footer)")
        }
    }

    var remaining: Int { end - position }

    mutating func readStruct(named name: String) throws -> ThriftStruct {
        try readStruct(named: name, depth: 0)
    }

    private mutating func byte() throws -> UInt8 {
        guard position < end else { throw FormatError(.badThrift, "Thrift data ends inside a value") }
        let b = bytes[position]
        position += 1
        return b
    }

    private mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            guard shift < 64 else { throw FormatError(.badThrift, "a Thrift varint is longer than 10 bytes") }
            result |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }

    private mutating func zigzag() throws -> Int64 {
        let v = try varint()
        return Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1)))
    }

    private mutating func length(_ what: String) throws -> Int {
        let v = try varint()
        guard v <= UInt64(remaining) else {
            throw FormatError(.badThrift, "a Thrift \(what) claims \(v) bytes or elements but only \(remaining) bytes remain")
        }
        return Int(v)
    }

    private mutating func readStruct(named name: String, depth: Int) throws -> ThriftStruct {
        guard depth < Self.maxDepth else {
            throw FormatError(.badThrift, "Thrift structs nest deeper than \(Self.maxDepth) levels")
        }
        var fields: [Int16: ThriftValue] = [:]
        var lastID: Int16 = 0
        while true {
            let header = try byte()
            if header == 0 { return ThriftStruct(name: name, fields: fields) }
            let type = header & 0x0f
            let delta = header >> 4
            let id: Int16
            if delta == 0 {
                let raw = try zigzag()
                guard let narrow = Int16(exactly: raw) else {
                    throw FormatError(.badThrift, "\(name) has a field id \(raw) outside i16")
                }
                id = narrow
            } else {
                let (sum, overflow) = lastID.addingReportingOverflow(Int16(delta))
                guard !overflow else { throw FormatError(.badThrift, "\(name) has a field id past i16") }
                id = sum
            }
            lastID = id
            try spend()
            let value: ThriftValue
            switch type {
            case 1: value = .bool(true)
            case 2: value = .bool(false)
            default: value = try readValue(type: type, depth: depth + 1, in: name)
            }
            fields[id] = value
        }
    }

    private mutating func readValue(type: UInt8, depth: Int, in name: String) throws -> ThriftValue {
        switch type {
        case 1, 2:
            // Only inside lists and maps: one byte, 1 = true (2 or 0 = false).
            return .bool(try byte() == 1)
        case 3: return .byte(Int8(bitPattern: try byte()))
        case 4:
            let raw = try zigzag()
            guard let v = Int16(exactly: raw) else { throw FormatError(.badThrift, "an i16 in \(name) is out of range") }
            return .i16(v)
        case 5:
            let raw = try zigzag()
            guard let v = Int32(exactly: raw) else { throw FormatError(.badThrift, "an i32 in \(name) is out of range") }
            return .i32(v)
        case 6: return .i64(try zigzag())
        case 7:
            guard remaining >= 8 else { throw FormatError(.badThrift, "Thrift data ends inside a double") }
            var bits: UInt64 = 0
            for i in 0..<8 { bits |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
            position += 8
            return .double(Double(bitPattern: bits))
        case 8:
            let n = try length("binary")
            let value = Array(bytes[position..<position + n])
            position += n
            return .binary(value)
        case 9, 10:
            let header = try byte()
            let elementType = header & 0x0f
            var count = Int(header >> 4)
            if count == 15 { count = try length("list") }
            // Every element takes at least one byte, so a count above the remaining bytes is a lie.
            guard count <= remaining else {
                throw FormatError(.badThrift, "a Thrift list in \(name) claims \(count) elements but only \(remaining) bytes remain")
            }
            var items: [ThriftValue] = []
            items.reserveCapacity(min(count, 1024))  // grows with what is actually decoded
            for _ in 0..<count {
                try spend()
                if elementType == 12 {
                    guard depth < Self.maxDepth else {
                        throw FormatError(.badThrift, "Thrift structs nest deeper than \(Self.maxDepth) levels")
                    }
                    items.append(.structure(try readStruct(named: name, depth: depth + 1)))
                } else {
                    items.append(try readValue(type: elementType, depth: depth + 1, in: name))
                }
            }
            return .list(items)
        case 11:
            let count = try length("map")
            var pairs: [(ThriftValue, ThriftValue)] = []
            if count > 0 {
                let kinds = try byte()
                for _ in 0..<count {
                    try spend()
                    let key = try readElement(type: kinds >> 4, depth: depth + 1, in: name)
                    let value = try readElement(type: kinds & 0x0f, depth: depth + 1, in: name)
                    pairs.append((key, value))
                }
            }
            return .map(pairs)
        case 12:
            return .structure(try readStruct(named: name, depth: depth))
        default:
            throw FormatError(.badThrift, "unknown Thrift compact type \(type) in \(name)")
        }
    }

    private mutating func readElement(type: UInt8, depth: Int, in name: String) throws -> ThriftValue {
        if type == 12 { return .structure(try readStruct(named: name, depth: depth)) }
        return try readValue(type: type, depth: depth, in: name)
    }
}

/// Writes the compact protocol: the writer's footer and page headers. Fields must be written in increasing id.
struct ThriftCompactWriter {
    private(set) var bytes: [UInt8] = []
    private var lastIDs: [Int16] = [0]

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }
    private mutating func zigzag(_ value: Int64) {
        varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    private mutating func fieldHeader(_ id: Int16, type: UInt8) {
        let last = lastIDs[lastIDs.count - 1]
        let delta = id - last
        if delta > 0 && delta <= 15 {
            bytes.append(UInt8(delta) << 4 | type)
        } else {
            bytes.append(type)
            zigzag(Int64(id))
        }
        lastIDs[lastIDs.count - 1] = id
    }

    mutating func beginStruct() { lastIDs.append(0) }
    mutating func endStruct() {
        bytes.append(0)
        lastIDs.removeLast()
    }

    mutating func field(_ id: Int16, i32 value: Int32) {
        fieldHeader(id, type: 5)
        zigzag(Int64(value))
    }
    mutating func field(_ id: Int16, i64 value: Int64) {
        fieldHeader(id, type: 6)
        zigzag(value)
    }
    mutating func field(_ id: Int16, bool value: Bool) {
        fieldHeader(id, type: value ? 1 : 2)
    }
    mutating func field(_ id: Int16, string value: String) {
        field(id, binary: Array(value.utf8))
    }
    mutating func field(_ id: Int16, binary value: [UInt8]) {
        fieldHeader(id, type: 8)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }
    /// A struct field: `body` writes its fields.
    mutating func field(_ id: Int16, structure body: (inout ThriftCompactWriter) -> Void) {
        fieldHeader(id, type: 12)
        beginStruct()
        body(&self)
        endStruct()
    }
    /// A list-of-structs field: `body` is called once per element and writes that element's fields.
    mutating func field<T>(_ id: Int16, structs items: [T], body: (inout ThriftCompactWriter, T) -> Void) {
        fieldHeader(id, type: 9)
        listHeader(count: items.count, elementType: 12)
        for item in items {
            beginStruct()
            body(&self, item)
            endStruct()
        }
    }
    mutating func field(_ id: Int16, i32List items: [Int32]) {
        fieldHeader(id, type: 9)
        listHeader(count: items.count, elementType: 5)
        for item in items { zigzag(Int64(item)) }
    }
    mutating func field(_ id: Int16, stringList items: [String]) {
        fieldHeader(id, type: 9)
        listHeader(count: items.count, elementType: 8)
        for item in items {
            let utf8 = Array(item.utf8)
            varint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }
    private mutating func listHeader(count: Int, elementType: UInt8) {
        if count < 15 {
            bytes.append(UInt8(count) << 4 | elementType)
        } else {
            bytes.append(0xf0 | elementType)
            varint(UInt64(count))
        }
    }
}
