// SQLite's five storage classes as a Swift value, and the conversions between them and Swift types.
// Conversions are strict (TEXT never reads as an Int) so a schema mistake surfaces as an error, not as a zero.

import Foundation

/// One SQLite value: the five storage classes.
///
/// Literals work where a `SQLValue` is expected: `[42, "cat.jpg", 0.87, true, nil]`.
///
/// **NaN.** SQLite has no NaN: it stores `Double.nan` as NULL. To keep Swift and the database in agreement,
/// `Double.nan.sqlValue` and `Float.nan.sqlValue` are `.null`, and binding `.real(.nan)` also stores NULL;
/// reading the column back gives `.null` (`nil` as a `Double?`). Infinities are stored and read back as is.
public enum SQLValue: Sendable, Equatable, Hashable {
    /// SQL NULL.
    case null
    /// A 64-bit signed integer.
    case integer(Int64)
    /// An IEEE double; NaN is stored as NULL (see above).
    case real(Double)
    /// UTF-8 text; embedded NUL characters are kept.
    case text(String)
    /// Bytes; an empty blob stays an empty blob (not NULL).
    case blob([UInt8])

    /// Wraps any convertible Swift value: `SQLValue(score)`.
    public init<T: SQLValueConvertible>(_ value: T) { self = value.sqlValue }

    /// True for `.null`.
    public var isNull: Bool { if case .null = self { true } else { false } }

    /// The SQLite storage class name: NULL, INTEGER, REAL, TEXT or BLOB.
    public var storageClass: String {
        switch self {
        case .null: "NULL"
        case .integer: "INTEGER"
        case .real: "REAL"
        case .text: "TEXT"
        case .blob: "BLOB"
        }
    }
}

extension SQLValue: CustomStringConvertible {
    /// SQL-literal-like rendering for logs; long text and blobs are abbreviated.
    public var description: String {
        switch self {
        case .null: return "NULL"
        case .integer(let v): return String(v)
        case .real(let v): return String(v)
        case .text(let s): return s.count > 60 ? "'\(s.prefix(60))…' (\(s.utf8.count) bytes)" : "'\(s)'"
        case .blob(let b): return "<blob \(b.count) bytes>"
        }
    }
}

extension SQLValue: ExpressibleByNilLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByStringLiteral, ExpressibleByBooleanLiteral
{
    /// `nil` is NULL.
    public init(nilLiteral: ()) { self = .null }
    /// An integer literal is INTEGER.
    public init(integerLiteral value: Int64) { self = .integer(value) }
    /// A float literal is REAL.
    public init(floatLiteral value: Double) { self = value.sqlValue }
    /// A string literal is TEXT.
    public init(stringLiteral value: String) { self = .text(value) }
    /// `true` is 1 and `false` is 0, SQLite's convention for booleans.
    public init(booleanLiteral value: Bool) { self = .integer(value ? 1 : 0) }
}

/// A Swift type that is stored as one SQLite value.
///
/// `init?(sqlValue:)` returns nil when the value has another storage class or is out of range; `Optional`
/// maps NULL to `nil`, so read a nullable column as `T?`.
public protocol SQLValueConvertible {
    /// The Swift value for `sqlValue`, or nil if it does not convert (wrong storage class, NULL, out of range).
    init?(sqlValue: SQLValue)
    /// The value to bind.
    var sqlValue: SQLValue { get }
}

extension SQLValue: SQLValueConvertible {
    public init?(sqlValue: SQLValue) { self = sqlValue }
    public var sqlValue: SQLValue { self }
}

extension Int64: SQLValueConvertible {
    /// From INTEGER only.
    public init?(sqlValue: SQLValue) {
        guard case .integer(let v) = sqlValue else { return nil }
        self = v
    }
    public var sqlValue: SQLValue { .integer(self) }
}

extension Int: SQLValueConvertible {
    /// From INTEGER only, when it fits.
    public init?(sqlValue: SQLValue) {
        guard case .integer(let v) = sqlValue, let i = Int(exactly: v) else { return nil }
        self = i
    }
    public var sqlValue: SQLValue { .integer(Int64(self)) }
}

extension Int32: SQLValueConvertible {
    /// From INTEGER only, when it fits.
    public init?(sqlValue: SQLValue) {
        guard case .integer(let v) = sqlValue, let i = Int32(exactly: v) else { return nil }
        self = i
    }
    public var sqlValue: SQLValue { .integer(Int64(self)) }
}

extension Double: SQLValueConvertible {
    /// From REAL, or from INTEGER (aggregates such as `sum` of integers return INTEGER).
    public init?(sqlValue: SQLValue) {
        switch sqlValue {
        case .real(let v): self = v
        case .integer(let v): self = Double(v)
        default: return nil
        }
    }
    /// `.real`, except NaN, which is `.null` because that is what SQLite stores.
    public var sqlValue: SQLValue { isNaN ? .null : .real(self) }
}

extension Float: SQLValueConvertible {
    /// From REAL or INTEGER, rounded to the nearest Float.
    public init?(sqlValue: SQLValue) {
        guard let d = Double(sqlValue: sqlValue) else { return nil }
        self = Float(d)
    }
    /// `.real`, except NaN, which is `.null` because that is what SQLite stores.
    public var sqlValue: SQLValue { isNaN ? .null : .real(Double(self)) }
}

extension Bool: SQLValueConvertible {
    /// From INTEGER: 0 is false, anything else true (SQLite's convention).
    public init?(sqlValue: SQLValue) {
        guard case .integer(let v) = sqlValue else { return nil }
        self = v != 0
    }
    public var sqlValue: SQLValue { .integer(self ? 1 : 0) }
}

extension String: SQLValueConvertible {
    /// From TEXT only.
    public init?(sqlValue: SQLValue) {
        guard case .text(let s) = sqlValue else { return nil }
        self = s
    }
    public var sqlValue: SQLValue { .text(self) }
}

extension Array: SQLValueConvertible where Element == UInt8 {
    /// From BLOB only.
    public init?(sqlValue: SQLValue) {
        guard case .blob(let b) = sqlValue else { return nil }
        self = b
    }
    public var sqlValue: SQLValue { .blob(self) }
}

extension Data: SQLValueConvertible {
    /// From BLOB only.
    public init?(sqlValue: SQLValue) {
        guard case .blob(let b) = sqlValue else { return nil }
        self = Data(b)
    }
    public var sqlValue: SQLValue { .blob([UInt8](self)) }
}

extension Optional: SQLValueConvertible where Wrapped: SQLValueConvertible {
    /// NULL is `nil`; any other value must convert to `Wrapped`.
    public init?(sqlValue: SQLValue) {
        if case .null = sqlValue {
            self = .none
        } else if let wrapped = Wrapped(sqlValue: sqlValue) {
            self = .some(wrapped)
        } else {
            return nil
        }
    }
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}
