// A prepared statement for hot loops: prepare once, then bind and run per row, without re-parsing the SQL.

/// A compiled SQL statement, from `Database.prepare(_:)`.
///
/// ```swift
/// let insert = try db.prepare("INSERT INTO samples(key, caption) VALUES (?, ?)")
/// try db.write { _ in
///     for sample in batch { try insert.run([.text(sample.key), .text(sample.caption)]) }
/// }
/// ```
/// A statement belongs to the database that prepared it and follows the same threading rule: one thread at a
/// time. It is finalized when released; while it is alive its database connection stays open.
public final class Statement {
    let prepared: PreparedStatement
    /// Column names of the current execution, read at its first row (a schema change may alter `SELECT *`).
    private var columnNames: [String]?
    /// Set by `bind`; stepping a statement with parameters that were never bound is an error.
    private var isBound = false

    init(_ prepared: PreparedStatement) {
        self.prepared = prepared
    }

    /// The statement's SQL.
    public var sql: String { prepared.sql }

    /// Number of `?` parameters `bind` expects.
    public var parameterCount: Int { prepared.parameterCount }

    /// Rewinds the statement and binds `values` to its parameters, in order. Throws (`SQLITE_RANGE`) unless
    /// there is exactly one value per parameter. Previous bindings are cleared.
    public func bind(_ values: [SQLValue]) throws {
        columnNames = nil
        isBound = false
        try prepared.bind(values)
        isBound = true
    }

    /// Runs the statement up to its next row: the row, or nil when there are no more.
    /// After nil (or an error), the statement is rewound and `step()` runs it again with the same bindings.
    public func step() throws -> Row? {
        guard isBound || parameterCount == 0 else {
            throw SQLiteError.misuse(
                "step() before bind(_:): the statement has \(parameterCount) parameters", sql: sql,
                hint: "Call bind(_:) (or run(_:) / rows(_:)) with one value per ? placeholder first.")
        }
        let hasRow: Bool
        do {
            hasRow = try prepared.step()
        } catch {
            columnNames = nil   // the statement was rewound; the next step starts a new execution
            throw error
        }
        guard hasRow else {
            prepared.reset()   // rewind now, so a finished statement holds no read lock
            columnNames = nil
            return nil
        }
        let names: [String]
        if let columnNames {
            names = columnNames
        } else {
            names = prepared.columnNames()
            columnNames = names
        }
        return Row(columnNames: names, values: (0..<names.count).map { prepared.value(at: $0) })
    }

    /// Rewinds to before the first row, keeping the bindings. Releases the read snapshot of a partly read query.
    public func reset() {
        prepared.reset()
        columnNames = nil
    }

    /// Binds `values` and runs the statement to completion, ignoring any rows (INSERT, UPDATE, DELETE, DDL).
    public func run(_ values: [SQLValue] = []) throws {
        try bind(values)
        defer { reset() }
        while try step() != nil {}
    }

    /// Binds `values` and returns all rows.
    public func rows(_ values: [SQLValue] = []) throws -> [Row] {
        try bind(values)
        defer { reset() }
        var rows: [Row] = []
        while let row = try step() { rows.append(row) }
        return rows
    }

    /// Binds `values` and returns the first row, or nil; the rest is not computed.
    public func firstRow(_ values: [SQLValue] = []) throws -> Row? {
        try bind(values)
        defer { reset() }
        return try step()
    }
}
