// One result row: column names and values, read leniently by subscript or strictly by `value(_:as:)`.
// Rows are plain values (Sendable), detached from the statement that produced them.

/// A row of a query result.
///
/// ```swift
/// let row = try db.queryOne("SELECT id, caption, score FROM samples WHERE id = ?", [7])
/// let caption: String? = row?["caption"]            // nil if NULL, missing or not TEXT
/// let score = try row?.value("score", as: Double.self) // throws if NULL, missing or not a number
/// ```
/// Column names match exactly first, then ignoring ASCII case (as SQLite does).
public struct Row: Sendable, Equatable, CustomStringConvertible {
    /// Column names, in result order. Shared by all rows of one query (copy-on-write).
    public let columnNames: [String]
    /// Values, in result order.
    public let values: [SQLValue]

    /// A row from names and values of equal count.
    public init(columnNames: [String], values: [SQLValue]) {
        precondition(columnNames.count == values.count, "Row needs one name per value")
        self.columnNames = columnNames
        self.values = values
    }

    /// Number of columns.
    public var count: Int { values.count }

    /// The value at `index` (0-based). The index must be below `count`.
    public subscript(_ index: Int) -> SQLValue { values[index] }

    /// Lenient read: the value converted to `T`, or nil when the column is NULL, missing or does not convert.
    /// Use `value(_:as:)` to get an error that says which of these happened.
    public subscript<T: SQLValueConvertible>(_ column: String) -> T? {
        guard let index = index(ofColumn: column) else { return nil }
        return T(sqlValue: values[index])
    }

    /// The index of `column`: an exact match first, then one that differs only in ASCII case.
    public func index(ofColumn column: String) -> Int? {
        if let exact = columnNames.firstIndex(of: column) { return exact }
        let lowered = column.lowercased()
        return columnNames.firstIndex { $0.lowercased() == lowered }
    }

    /// Strict read of `column` as `T`: throws when the column is missing, or its value does not convert.
    /// NULL converts only to an Optional: read a nullable column as `T?`.
    public func value<T: SQLValueConvertible>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard let index = index(ofColumn: column) else {
            throw SQLiteError.noSuchColumn(
                "no column named \"\(column)\" in this row (columns: \(columnNames.joined(separator: ", ")))",
                hint: "Check the column name, or alias it in the SELECT (… AS \(column)).")
        }
        return try convert(values[index], label: "column \"\(column)\"", to: type)
    }

    /// Strict read of the value at `index` as `T`; see `value(_:as:)`.
    public func value<T: SQLValueConvertible>(at index: Int, as type: T.Type = T.self) throws -> T {
        guard values.indices.contains(index) else {
            throw SQLiteError.noSuchColumn("no column at index \(index): the row has \(count) columns",
                                           hint: "Use an index below the number of selected columns.")
        }
        return try convert(values[index], label: "column \(index) (\"\(columnNames[index])\")", to: type)
    }

    public var description: String {
        "[" + zip(columnNames, values).map { "\($0): \($1)" }.joined(separator: ", ") + "]"
    }
}

/// `value` as `T`, or a mismatch error naming `label`, what it holds and what was asked for.
func convert<T: SQLValueConvertible>(_ value: SQLValue, label: String, to type: T.Type) throws -> T {
    if let converted = T(sqlValue: value) { return converted }
    if value.isNull {
        throw SQLiteError.typeMismatch("\(label) is NULL, which is not a \(T.self)",
                                       hint: "Read it as \(T.self)? if it may be NULL.")
    }
    throw SQLiteError.typeMismatch(
        "\(label) holds \(value.storageClass) \(value), which does not convert to \(T.self)",
        hint: "Read it as the type it holds, or fix the value that was stored.")
}
