// The one error type of CapfiltStore. It keeps SQLite's result codes, its message and the SQL that failed,
// and adds what to do about it, because a resumable pipeline's operator reads these in logs, not in a debugger.

/// An error from SQLite, or from CapfiltStore's own checks (argument counts, type conversions, misuse).
///
/// - `code` is the primary result code (`extendedCode & 0xff`), e.g. 19 for a constraint violation;
///   `extendedCode` refines it, e.g. 2067 for a UNIQUE violation (see https://www.sqlite.org/rescode.html).
/// - `message` is SQLite's own text ("UNIQUE constraint failed: items.name"), or CapfiltStore's for its checks.
/// - `sql` is the statement that failed, when there is one.
/// - `hint` says what to do.
///
/// `description` joins them in one line: the message, the codes, the SQL (first 200 characters) and the hint.
/// Checks that CapfiltStore makes itself reuse SQLite's codes: a wrong argument count is `SQLITE_RANGE` (25),
/// a column read as the wrong type is `SQLITE_MISMATCH` (20), misuse of the API (a nested `write`, a closed
/// database) is `SQLITE_MISUSE` (21), and a migration history that doesn't match the code is `SQLITE_SCHEMA` (17).
/// `isBusy`, `isConstraintViolation` and friends classify an error without magic numbers.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    /// Primary result code: `extendedCode & 0xff`.
    public let code: Int32
    /// Extended result code (equal to `code` when SQLite gives no refinement).
    public let extendedCode: Int32
    /// SQLite's message, or CapfiltStore's for its own checks. A failing migration prefixes its name.
    public let message: String
    /// The SQL statement that failed, if any.
    public let sql: String?
    /// What to do about it.
    public let hint: String

    init(extendedCode: Int32, message: String, sql: String?, hint: String) {
        self.code = extendedCode & 0xff
        self.extendedCode = extendedCode
        self.message = message
        self.sql = sql
        self.hint = hint
    }

    /// The longest SQL prefix quoted in `description`; scripts can be long, and their start identifies them.
    static let quotedSQLLimit = 200

    /// One line: message, codes, the SQL's first 200 characters, and the hint.
    public var description: String {
        var text = "SQLite error \(extendedCode)"
        if extendedCode != code { text += " (primary \(code))" }
        text += ": \(message)"
        if let sql {
            let oneLine = sql.split(whereSeparator: \.isNewline).joined(separator: " ").trimmingSpaces()
            let quoted = oneLine.count > Self.quotedSQLLimit
                ? String(oneLine.prefix(Self.quotedSQLLimit)) + "…" : oneLine
            text += " — in SQL `\(quoted)`"
        }
        text += ". \(hint)"
        return text
    }

    /// The same error, its message prefixed with the migration that raised it.
    func inMigration(_ name: String) -> SQLiteError {
        SQLiteError(extendedCode: extendedCode, message: "migration \"\(name)\" failed: \(message)", sql: sql,
                    hint: "The migration was rolled back and is not recorded; fix it and run again. " + hint)
    }
}

extension StringProtocol {
    /// Drops leading and trailing spaces and tabs, without Foundation.
    func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) })
        else { return "" }
        return String(self[first...last])
    }
}
