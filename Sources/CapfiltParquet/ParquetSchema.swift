// The schema as callers use it: leaf columns by dotted path ("image.bytes", "text") with their types and level
// ranges. The flattened Thrift schema is rebuilt into a tree here, and a malformed tree is refused up front so the
// page decoders can trust the levels.

/// A logical type annotation (parquet.thrift `LogicalType`, or the legacy `ConvertedType` mapped onto it).
public enum ParquetLogicalType: Sendable, Equatable {
    case string, map, list, enumeration, json, bson, uuid, float16, unknown
    case decimal(scale: Int32, precision: Int32)
    case date
    /// TIME and TIMESTAMP: unit is "MILLIS", "MICROS" or "NANOS".
    case time(unit: String, adjustedToUTC: Bool)
    case timestamp(unit: String, adjustedToUTC: Bool)
    case integer(bitWidth: Int8, signed: Bool)
    /// A logical type this reader does not know (its union field id).
    case other(Int16)

    init?(union s: ThriftStruct) {
        guard let (id, value) = s.fields.min(by: { $0.key < $1.key }) else { return nil }
        let inner: ThriftStruct? = { if case .structure(let t) = value { return t } else { return nil } }()
        func unit(_ t: ThriftStruct?) -> String {
            guard case .structure(let u)? = t?.fields[2], let which = u.fields.keys.min() else { return "?" }
            return which == 1 ? "MILLIS" : which == 2 ? "MICROS" : which == 3 ? "NANOS" : "?"
        }
        func utc(_ t: ThriftStruct?) -> Bool { if case .bool(let b)? = t?.fields[1] { return b } else { return false } }
        switch id {
        case 1: self = .string
        case 2: self = .map
        case 3: self = .list
        case 4: self = .enumeration
        case 5:
            var scale: Int32 = 0, precision: Int32 = 0
            if case .i32(let v)? = inner?.fields[1] { scale = v }
            if case .i32(let v)? = inner?.fields[2] { precision = v }
            self = .decimal(scale: scale, precision: precision)
        case 6: self = .date
        case 7: self = .time(unit: unit(inner), adjustedToUTC: utc(inner))
        case 8: self = .timestamp(unit: unit(inner), adjustedToUTC: utc(inner))
        case 10:
            var width: Int8 = 0, signed = true
            if case .byte(let v)? = inner?.fields[1] { width = v }
            if case .bool(let v)? = inner?.fields[2] { signed = v }
            self = .integer(bitWidth: width, signed: signed)
        case 11: self = .unknown
        case 12: self = .json
        case 13: self = .bson
        case 14: self = .uuid
        case 15: self = .float16
        default: self = .other(id)
        }
    }

    /// The legacy `ConvertedType` annotation as a logical type, for files written before LogicalType existed.
    init?(converted: Int32, scale: Int32?, precision: Int32?) {
        switch converted {
        case 0: self = .string
        case 1, 2: self = .map
        case 3: self = .list
        case 4: self = .enumeration
        case 5: self = .decimal(scale: scale ?? 0, precision: precision ?? 0)
        case 6: self = .date
        case 7: self = .time(unit: "MILLIS", adjustedToUTC: true)
        case 8: self = .time(unit: "MICROS", adjustedToUTC: true)
        case 9: self = .timestamp(unit: "MILLIS", adjustedToUTC: true)
        case 10: self = .timestamp(unit: "MICROS", adjustedToUTC: true)
        case 11: self = .integer(bitWidth: 8, signed: false)
        case 12: self = .integer(bitWidth: 16, signed: false)
        case 13: self = .integer(bitWidth: 32, signed: false)
        case 14: self = .integer(bitWidth: 64, signed: false)
        case 15: self = .integer(bitWidth: 8, signed: true)
        case 16: self = .integer(bitWidth: 16, signed: true)
        case 17: self = .integer(bitWidth: 32, signed: true)
        case 18: self = .integer(bitWidth: 64, signed: true)
        case 19: self = .json
        case 20: self = .bson
        default: return nil
        }
    }

    /// Whether BYTE_ARRAY values with this annotation are text.
    var isText: Bool {
        switch self {
        case .string, .json, .enumeration: return true
        default: return false
        }
    }
}

/// One leaf column: where it sits in the tree and how its values and levels are typed.
public struct ParquetColumnDescriptor: Sendable, Equatable {
    /// Names from the root's child down to the leaf, e.g. `["image", "bytes"]` or `["tags", "list", "element"]`.
    public let path: [String]
    /// `path` joined with dots: the name `readRowGroup(_:columns:)` takes.
    public var dottedPath: String { path.joined(separator: ".") }
    public let physicalType: ParquetPhysicalType
    /// Byte width of FIXED_LEN_BYTE_ARRAY values; nil otherwise.
    public let typeLength: Int?
    public let logicalType: ParquetLogicalType?
    /// The highest definition level: the number of optional or repeated nodes on the path.
    public let maxDefinitionLevel: Int
    /// The highest repetition level: the number of repeated nodes on the path (0 or 1 are readable).
    public let maxRepetitionLevel: Int
    /// Whether a value can be missing (some node on the path is optional or repeated).
    public var isNullable: Bool { maxDefinitionLevel > 0 }
    /// For a column inside a list: the definition level of the repeated node (an element exists at or above it),
    /// and that of its parent (below it the list itself is null). Nil when `maxRepetitionLevel` is 0.
    public let listLevels: (element: Int, list: Int)?

    public static func == (a: Self, b: Self) -> Bool {
        a.path == b.path && a.physicalType == b.physicalType && a.typeLength == b.typeLength
            && a.logicalType == b.logicalType && a.maxDefinitionLevel == b.maxDefinitionLevel
            && a.maxRepetitionLevel == b.maxRepetitionLevel && a.listLevels?.element == b.listLevels?.element
            && a.listLevels?.list == b.listLevels?.list
    }
}

/// The schema of a file: its leaf columns in file order.
public struct ParquetSchema: Sendable {
    /// Leaf columns in the order their chunks appear in each row group.
    public let columns: [ParquetColumnDescriptor]

    /// The leaf column whose dotted path is `name`.
    public func column(_ name: String) -> ParquetColumnDescriptor? { columns.first { $0.dottedPath == name } }

    /// The leaves at or under the node with dotted path `name`: `columns(under: "image")` gives `image.bytes` and
    /// `image.path`; a list column's name gives its element leaf.
    public func columns(under name: String) -> [ParquetColumnDescriptor] {
        let prefix = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        return columns.filter { $0.path.count >= prefix.count && Array($0.path.prefix(prefix.count)) == prefix }
    }

    /// The deepest nesting accepted; it also keeps every level below 256, the range levels are stored in.
    static let maxDepth = 64

    /// Rebuilds the tree from the depth-first element list (element 0 is the root).
    init(elements: [SchemaElement]) throws {
        guard let root = elements.first else { throw FormatError(.corrupt, "the schema is empty") }
        guard let rootChildren = root.numChildren, rootChildren >= 0 else {
            throw FormatError(.corrupt, "the schema root '\(root.name)' has no num_children")
        }
        var leaves: [ParquetColumnDescriptor] = []
        var next = 1
        // An explicit stack instead of recursion: a hostile file's nesting depth is bounded by its element count,
        // but recursion depth should not depend on input.
        struct Frame {
            var remainingChildren: Int
            var path: [String]
            var definition: Int
            var repetition: Int
            var listLevels: (element: Int, list: Int)?
        }
        var stack = [Frame(remainingChildren: Int(rootChildren), path: [], definition: 0, repetition: 0, listLevels: nil)]
        while let top = stack.last {
            // Real schemas nest a handful of levels; a deep chain would make every leaf's path (and the level
            // arithmetic) cost its depth.
            guard stack.count <= Self.maxDepth else {
                throw FormatError(.unsupported, "the schema nests deeper than \(Self.maxDepth) levels")
            }
            if top.remainingChildren == 0 {
                stack.removeLast()
                continue
            }
            stack[stack.count - 1].remainingChildren -= 1
            guard next < elements.count else {
                throw FormatError(.corrupt, "the schema declares more children than it has elements (\(elements.count))")
            }
            let element = elements[next]
            next += 1
            let repetition = element.repetition ?? .required
            var definition = top.definition
            var repetitionLevel = top.repetition
            var listLevels = top.listLevels
            switch repetition {
            case .required: break
            case .optional: definition += 1
            case .repeated:
                listLevels = (element: top.definition + 1, list: top.definition)
                definition += 1
                repetitionLevel += 1
            }
            let path = top.path + [element.name]
            if let children = element.numChildren, element.type == nil || children > 0 {
                guard children >= 0, children <= elements.count else {
                    throw FormatError(.corrupt, "schema group '\(path.joined(separator: "."))' claims \(children) children")
                }
                stack.append(Frame(remainingChildren: Int(children), path: path, definition: definition,
                                   repetition: repetitionLevel, listLevels: listLevels))
                continue
            }
            guard let type = element.type else {
                throw FormatError(.corrupt, "schema leaf '\(path.joined(separator: "."))' has no physical type")
            }
            var typeLength: Int?
            if type == .fixedLenByteArray {
                guard let length = element.typeLength, length >= 0 else {
                    throw FormatError(.corrupt, "FIXED_LEN_BYTE_ARRAY column '\(path.joined(separator: "."))' has no type_length")
                }
                typeLength = Int(length)
            }
            let logical = element.logicalType
                ?? element.convertedType.flatMap { ParquetLogicalType(converted: $0, scale: element.scale, precision: element.precision) }
            leaves.append(ParquetColumnDescriptor(
                path: path, physicalType: type, typeLength: typeLength, logicalType: logical,
                maxDefinitionLevel: definition, maxRepetitionLevel: repetitionLevel,
                listLevels: repetitionLevel > 0 ? listLevels : nil))
        }
        guard next == elements.count else {
            throw FormatError(.corrupt, "the schema has \(elements.count - next) elements outside the tree")
        }
        columns = leaves
    }
}
