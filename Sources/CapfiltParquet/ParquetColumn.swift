// Decoded column data kept typed and contiguous: an image column of a row group is one byte buffer plus offsets,
// not a million boxed values. `ParquetValue` is the per-cell view for callers that want one.

/// Variable-length values (BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY) packed into one buffer.
///
/// Value `i` is `bytes[offsets[i]..<offsets[i + 1]]`; `offsets.count == count + 1`.
public struct ParquetByteArrays: Sendable, Equatable {
    public private(set) var bytes: [UInt8] = []
    public private(set) var offsets: [Int] = [0]

    public init() {}

    public var count: Int { offsets.count - 1 }

    public subscript(i: Int) -> ArraySlice<UInt8> { bytes[offsets[i]..<offsets[i + 1]] }

    /// Value `i` as UTF-8 text, or nil if it is not valid UTF-8.
    public func string(at i: Int) -> String? { String(validating: self[i], as: UTF8.self) }

    mutating func append<C: Collection>(_ value: C) where C.Element == UInt8 {
        bytes.append(contentsOf: value)
        offsets.append(bytes.count)
    }

    mutating func appendEmpty() { offsets.append(bytes.count) }

    /// Makes room for more values, growing geometrically: reserving the exact size page after page would
    /// reallocate (and copy) the whole buffer for every page.
    mutating func reserve(values: Int, bytes byteCount: Int) {
        reserveGrowing(&offsets, offsets.count + values)
        reserveGrowing(&bytes, bytes.count + byteCount)
    }
}

/// The values of one column chunk, one slot per leaf position; slots of null values hold 0, false or empty bytes.
public enum ParquetValues: Sendable, Equatable {
    case boolean([Bool])
    case int32([Int32])
    case int64([Int64])
    case float([Float])
    case double([Double])
    case byteArray(ParquetByteArrays)
    case fixedLenByteArray(ParquetByteArrays)

    public var count: Int {
        switch self {
        case .boolean(let v): return v.count
        case .int32(let v): return v.count
        case .int64(let v): return v.count
        case .float(let v): return v.count
        case .double(let v): return v.count
        case .byteArray(let v), .fixedLenByteArray(let v): return v.count
        }
    }
}

/// One cell, for callers that want a uniform view. BYTE_ARRAY columns annotated as text give `.string`.
public enum ParquetValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int32(Int32)
    case int64(Int64)
    case float(Float)
    case double(Double)
    case bytes([UInt8])
    case string(String)
    case list([ParquetValue])
}

/// One leaf column of one row group.
///
/// Non-list columns have one slot per row: slot `r` is row `r`. List columns (`descriptor.maxRepetitionLevel == 1`)
/// have one slot per element, and row `r`'s elements are slots `listOffsets[r]..<listOffsets[r + 1]`.
public struct ParquetColumn: Sendable {
    public let descriptor: ParquetColumnDescriptor
    /// Number of rows in the row group.
    public let rowCount: Int
    /// One slot per value position (see the type's documentation).
    public let values: ParquetValues
    /// Per slot: true when the value is present, false when it is null. Empty when the column is required.
    public let validity: [Bool]
    /// The raw definition levels, one per row for non-list columns (one per level position, empty lists and
    /// null lists included, for list columns); they tell a null struct from a null field. Empty when
    /// `descriptor.maxDefinitionLevel` is 0.
    public let definitionLevels: [UInt8]
    /// List columns only: `rowCount + 1` offsets into the slots.
    public let listOffsets: [Int]
    /// List columns only: per row, false when the list itself is null (an empty list is present with no elements).
    public let listValidity: [Bool]

    /// Whether slot `i` holds a value.
    public func isPresent(_ i: Int) -> Bool { validity.isEmpty || validity[i] }

    /// Slot `i`'s bytes (BYTE_ARRAY and FIXED_LEN_BYTE_ARRAY columns), without copying; nil when null or another type.
    public func bytes(at i: Int) -> ArraySlice<UInt8>? {
        guard isPresent(i) else { return nil }
        switch values {
        case .byteArray(let v), .fixedLenByteArray(let v): return v[i]
        default: return nil
        }
    }

    /// Slot `i` as text (a BYTE_ARRAY holding valid UTF-8, whatever its annotation); nil otherwise.
    public func string(at i: Int) -> String? {
        bytes(at: i).flatMap { String(validating: $0, as: UTF8.self) }
    }

    /// Slot `i` of an INT32 or INT64 column; nil when null or another type.
    public func integer(at i: Int) -> Int64? {
        guard isPresent(i) else { return nil }
        switch values {
        case .int32(let v): return Int64(v[i])
        case .int64(let v): return v[i]
        default: return nil
        }
    }

    /// Slot `i` as a cell.
    public func value(at i: Int) -> ParquetValue {
        guard isPresent(i) else { return .null }
        switch values {
        case .boolean(let v): return .bool(v[i])
        case .int32(let v): return .int32(v[i])
        case .int64(let v): return .int64(v[i])
        case .float(let v): return .float(v[i])
        case .double(let v): return .double(v[i])
        case .byteArray(let v), .fixedLenByteArray(let v):
            if descriptor.logicalType?.isText == true, let text = v.string(at: i) { return .string(text) }
            return .bytes(Array(v[i]))
        }
    }

    /// Row `r` as a cell: the slot for flat columns, a `.list` (or `.null`) for list columns.
    public func row(_ r: Int) -> ParquetValue {
        guard descriptor.maxRepetitionLevel > 0 else { return value(at: r) }
        guard listValidity[r] else { return .null }
        return .list((listOffsets[r]..<listOffsets[r + 1]).map(value(at:)))
    }
}

/// `array.reserveCapacity(needed)`, but at least doubling when it must grow, so repeated calls stay linear.
func reserveGrowing<T>(_ array: inout [T], _ needed: Int) {
    guard array.capacity < needed else { return }
    array.reserveCapacity(max(needed, array.capacity * 2))
}
