// The only file that speaks the sqlite3 C API: the connection and statement handles, value marshalling and
// result codes. Raw pointers and C return codes stop here; the rest of CapfiltStore sees Swift types only.

import CSQLite

// MARK: - Connection

/// Owns one `sqlite3*`. Statements retain their connection, so it is closed only after every statement is
/// finalized, and closing can never fail with "unable to close due to unfinalized statements".
final class Connection {
    /// nil once `close()` succeeded.
    private var db: OpaquePointer?
    let path: String

    /// Opens or creates the database. `vfs` names an SQLite VFS, for tests that need a filesystem without WAL.
    init(path: String, vfs: String?) throws {
        var handle: OpaquePointer?
        // FULLMUTEX: SQLite's own structures stay consistent even if a caller breaks the one-thread-at-a-time
        // contract; EXRESCODE: every API returns extended codes (2067 rather than 19).
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_EXRESCODE
        let rc = sqlite3_open_v2(path, &handle, flags, vfs)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close(handle)
            throw SQLiteError(
                extendedCode: rc, message: "cannot open database at \"\(path)\": \(message)", sql: nil,
                hint: "Check that the directory exists and is writable, and that the file is an SQLite database.")
        }
        sqlite3_extended_result_codes(handle, 1)
        self.db = handle
        self.path = path
    }

    deinit {
        // Every PreparedStatement retains this connection, so none is left and close succeeds. Should that
        // ever not hold, close_v2 still frees the connection once the last statement is finalized.
        if let db, sqlite3_close(db) != SQLITE_OK { sqlite3_close_v2(db) }
    }

    /// The open handle, or a misuse error once closed.
    private func handle() throws -> OpaquePointer {
        guard let db else { throw SQLiteError.closed(path: path) }
        return db
    }

    var isClosed: Bool { db == nil }

    /// Closes now. Fails (and stays open) while some `Statement` is still alive.
    func close() throws {
        guard let db else { return }
        let rc = sqlite3_close(db)
        guard rc == SQLITE_OK else {
            throw SQLiteError(
                extendedCode: rc, message: String(cString: sqlite3_errmsg(db)), sql: nil,
                hint: "Release every Statement from prepare(_:) before close(); the database stays open until then.")
        }
        self.db = nil
    }

    /// The error SQLite reports for the last call on this connection, which returned `rc`.
    fileprivate func lastError(_ rc: Int32, sql: String?) -> SQLiteError {
        let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
        return SQLiteError(extendedCode: rc, message: message, sql: sql, hint: SQLiteError.hint(forExtendedCode: rc))
    }

    func setBusyTimeout(milliseconds: Int32) throws {
        let db = try handle()
        let rc = sqlite3_busy_timeout(db, milliseconds)
        guard rc == SQLITE_OK else { throw lastError(rc, sql: nil) }
    }

    /// True outside an explicit transaction.
    var isAutocommit: Bool { db.map { sqlite3_get_autocommit($0) != 0 } ?? true }

    var lastInsertRowID: Int64 { db.map { sqlite3_last_insert_rowid($0) } ?? 0 }

    var changes: Int { db.map { Int(sqlite3_changes64($0)) } ?? 0 }

    /// `wal_checkpoint(TRUNCATE)`: copies the WAL into the database and truncates it to zero bytes.
    func checkpointTruncate() throws {
        let db = try handle()
        var walFrames: Int32 = 0, checkpointed: Int32 = 0
        let rc = sqlite3_wal_checkpoint_v2(db, nil, SQLITE_CHECKPOINT_TRUNCATE, &walFrames, &checkpointed)
        guard rc == SQLITE_OK else { throw lastError(rc, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    /// Prepares each statement of `sql` in turn and hands it to `body` before preparing the next, so a script
    /// can create a table and then use it. Whitespace and comments between statements are skipped.
    func forEachStatement(in sql: String, _ body: (PreparedStatement) throws -> Void) throws {
        let db = try handle()
        let text = sql.utf8CString   // NUL-terminated; passing the length with the NUL lets SQLite skip a copy
        var offset = 0
        while offset < text.count - 1 {
            var stmt: OpaquePointer?
            var next = offset
            let rc = text.withUnsafeBufferPointer { buffer -> Int32 in
                guard let base = buffer.baseAddress else { return SQLITE_OK }
                var tail: UnsafePointer<CChar>?
                let rc = sqlite3_prepare_v3(db, base + offset, Int32(clamping: buffer.count - offset), 0, &stmt, &tail)
                next = tail.map { $0 - base } ?? buffer.count - 1
                return rc
            }
            guard rc == SQLITE_OK else {
                // Name the statement that failed: the script from its start, without the whitespace before it.
                let failing = String(decoding: text[offset..<(text.count - 1)].map { UInt8(bitPattern: $0) },
                                     as: UTF8.self)
                throw lastError(rc, sql: String(failing.drop { $0.isWhitespace }))
            }
            if let stmt { try body(PreparedStatement(stmt, connection: self)) }
            guard next > offset else { break }   // no progress: nothing left SQLite can parse
            offset = next
        }
    }

    /// Prepares exactly one statement: `sql` may end with `;`, whitespace and comments, but not a second statement.
    func prepareOne(_ sql: String, persistent: Bool) throws -> PreparedStatement {
        let db = try handle()
        let text = sql.utf8CString
        var stmt: OpaquePointer?
        var rest = ""
        let rc = text.withUnsafeBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return SQLITE_OK }
            var tail: UnsafePointer<CChar>?
            // PERSISTENT: cached statements live long, so SQLite should not take their memory from its lookaside.
            let flags = persistent ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0
            let rc = sqlite3_prepare_v3(db, base, Int32(clamping: buffer.count), flags, &stmt, &tail)
            if let tail { rest = String(cString: tail) }
            return rc
        }
        guard rc == SQLITE_OK else { throw lastError(rc, sql: sql) }
        guard let stmt else {
            throw SQLiteError.misuse("the SQL contains no statement", sql: sql,
                                     hint: "Pass one SQL statement.")
        }
        let statement = PreparedStatement(stmt, connection: self)
        if !rest.allSatisfy({ $0.isWhitespace || $0 == ";" }) {
            // Something follows: only a second statement is an error, comments are fine.
            var second: OpaquePointer?
            let rc2 = sqlite3_prepare_v2(db, rest, -1, &second, nil)
            sqlite3_finalize(second)
            if rc2 != SQLITE_OK || second != nil {
                throw SQLiteError.misuse(
                    "this call takes one SQL statement, but more follow the first", sql: sql,
                    hint: "Run scripts of several statements with execute(_:) and no arguments, or split them.")
            }
        }
        return statement
    }
}

// MARK: - PreparedStatement

/// Owns one `sqlite3_stmt*`, finalized in deinit; retains its connection so the connection outlives it.
final class PreparedStatement {
    private let stmt: OpaquePointer
    private let connection: Connection
    /// The statement's own SQL text (one statement, even when it came from a script).
    let sql: String
    /// Number of `?` (or named) parameters.
    let parameterCount: Int

    fileprivate init(_ stmt: OpaquePointer, connection: Connection) {
        self.stmt = stmt
        self.connection = connection
        self.sql = sqlite3_sql(stmt).map { String(cString: $0) } ?? ""
        self.parameterCount = Int(sqlite3_bind_parameter_count(stmt))
    }

    deinit { sqlite3_finalize(stmt) }

    /// Resets, clears old bindings and binds `values` to parameters 1...n; the count must match exactly.
    func bind(_ values: [SQLValue]) throws {
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
        guard values.count == parameterCount else {
            throw SQLiteError(
                extendedCode: SQLITE_RANGE,
                message: "wrong number of arguments: the statement has \(parameterCount) parameter"
                    + (parameterCount == 1 ? "" : "s") + ", \(values.count) given",
                sql: sql, hint: "Pass exactly one argument per ? placeholder, in order.")
        }
        for (i, value) in values.enumerated() {
            let rc = bindValue(value, at: Int32(i + 1))
            guard rc == SQLITE_OK else { throw connection.lastError(rc, sql: sql) }
        }
    }

    private func bindValue(_ value: SQLValue, at index: Int32) -> Int32 {
        // SQLITE_TRANSIENT: SQLite copies text and blobs, because Swift lends the buffers for this call only.
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        switch value {
        case .null:
            return sqlite3_bind_null(stmt, index)
        case .integer(let v):
            return sqlite3_bind_int64(stmt, index, v)
        case .real(let v):
            return sqlite3_bind_double(stmt, index, v)   // SQLite itself stores NaN as NULL
        case .text(var s):
            return s.withUTF8 { bytes in
                // An empty string may have no buffer; a NULL pointer would bind NULL, so bind a real "".
                guard let base = bytes.baseAddress, !bytes.isEmpty else {
                    return sqlite3_bind_text64(stmt, index, "", 0, transient, UInt8(SQLITE_UTF8))
                }
                return UnsafeRawPointer(base).withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                    sqlite3_bind_text64(stmt, index, $0, UInt64(bytes.count), transient, UInt8(SQLITE_UTF8))
                }
            }
        case .blob(let b):
            // A zero-length blob through bind_blob with a NULL pointer would become NULL; zeroblob(0) stays a blob.
            if b.isEmpty { return sqlite3_bind_zeroblob(stmt, index, 0) }
            return b.withUnsafeBytes { sqlite3_bind_blob64(stmt, index, $0.baseAddress, UInt64($0.count), transient) }
        }
    }

    /// Advances: true when a row is available, false when done. On error the statement is reset and can be rerun.
    func step() throws -> Bool {
        let rc = sqlite3_step(stmt)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = connection.lastError(rc, sql: sql)   // read the message before reset can replace it
            sqlite3_reset(stmt)
            throw error
        }
    }

    /// Rewinds to before the first row; bindings are kept.
    func reset() { sqlite3_reset(stmt) }

    var columnCount: Int { Int(sqlite3_column_count(stmt)) }

    func columnNames() -> [String] {
        (0..<sqlite3_column_count(stmt)).map { sqlite3_column_name(stmt, $0).map { String(cString: $0) } ?? "" }
    }

    /// The value of column `index` of the current row.
    func value(at index: Int) -> SQLValue {
        let i = Int32(index)
        switch sqlite3_column_type(stmt, i) {
        case SQLITE_INTEGER:
            return .integer(sqlite3_column_int64(stmt, i))
        case SQLITE_FLOAT:
            return .real(sqlite3_column_double(stmt, i))
        case SQLITE_TEXT:
            // text first, then bytes: SQLite's documented order, so the byte count is of the UTF-8 form.
            guard let text = sqlite3_column_text(stmt, i) else { return .text("") }
            let count = Int(sqlite3_column_bytes(stmt, i))
            return .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            guard let blob = sqlite3_column_blob(stmt, i) else { return .blob([]) }
            let count = Int(sqlite3_column_bytes(stmt, i))
            return .blob([UInt8](UnsafeRawBufferPointer(start: blob, count: count)))
        default:
            return .null
        }
    }
}

// MARK: - Result codes

// Extended codes are macros Swift does not import (`SQLITE_CONSTRAINT | (8<<8)`); these mirror sqlite3.h.
private let constraintUnique = SQLITE_CONSTRAINT | (8 << 8)
private let constraintPrimaryKey = SQLITE_CONSTRAINT | (6 << 8)
private let constraintForeignKey = SQLITE_CONSTRAINT | (3 << 8)

extension SQLiteError {
    /// SQLITE_BUSY or SQLITE_LOCKED: another connection holds the lock this one needs.
    public var isBusy: Bool { code == SQLITE_BUSY || code == SQLITE_LOCKED }
    /// SQLITE_CONSTRAINT: UNIQUE, NOT NULL, CHECK, FOREIGN KEY or PRIMARY KEY violation (see `extendedCode`).
    public var isConstraintViolation: Bool { code == SQLITE_CONSTRAINT }
    /// SQLITE_CONSTRAINT_UNIQUE or SQLITE_CONSTRAINT_PRIMARYKEY: the row already exists.
    public var isUniqueViolation: Bool {
        extendedCode == constraintUnique || extendedCode == constraintPrimaryKey
    }
    /// SQLITE_CONSTRAINT_FOREIGNKEY.
    public var isForeignKeyViolation: Bool { extendedCode == constraintForeignKey }
    /// SQLITE_MISMATCH: a value read as a type it does not convert to.
    public var isTypeMismatch: Bool { code == SQLITE_MISMATCH }
    /// SQLITE_MISUSE: the API was used in a way it does not allow (nested write, closed database, …).
    public var isMisuse: Bool { code == SQLITE_MISUSE }

    /// What to do, by result code; the operator reads this, so it names causes seen in practice.
    static func hint(forExtendedCode extendedCode: Int32) -> String {
        switch extendedCode & 0xff {
        case SQLITE_BUSY, SQLITE_LOCKED:
            return "The database is locked: another capfilt process (or another connection) is using this run; "
                + "wait for it to finish or stop it, then retry, or raise busyTimeout."
        case SQLITE_CONSTRAINT:
            return "A row violates the schema (UNIQUE, NOT NULL, CHECK or FOREIGN KEY): fix the values, or use "
                + "INSERT OR IGNORE / ON CONFLICT for rows that may already exist."
        case SQLITE_ERROR:
            return "Check the SQL text, and that the migrations creating its tables have run."
        case SQLITE_READONLY:
            return "The database or its directory is read-only: make both writable (WAL creates -wal and -shm "
                + "files beside the database)."
        case SQLITE_CANTOPEN:
            return "Check that the directory exists and is writable."
        case SQLITE_CORRUPT, SQLITE_NOTADB:
            return "The file is damaged or is not an SQLite database: restore it from a backup or start a new run."
        case SQLITE_FULL:
            return "The disk is full: free space and resume; committed work is intact."
        case SQLITE_IOERR:
            return "An I/O error: check the disk and filesystem, then resume; committed work is intact."
        case SQLITE_TOOBIG:
            return "A text or blob exceeds SQLite's size limit: store large payloads in files and keep their path."
        case SQLITE_RANGE:
            return "Pass exactly one argument per ? placeholder, in order."
        case SQLITE_INTERRUPT, SQLITE_ABORT:
            return "The statement was interrupted or its transaction rolled back: rerun it."
        case SQLITE_SCHEMA:
            return "The schema changed under this statement: rerun it."
        default:
            return "See https://www.sqlite.org/rescode.html for result code \(extendedCode)."
        }
    }

    /// CapfiltStore's own misuse errors (SQLITE_MISUSE).
    static func misuse(_ message: String, sql: String? = nil, hint: String) -> SQLiteError {
        SQLiteError(extendedCode: SQLITE_MISUSE, message: message, sql: sql, hint: hint)
    }

    static func closed(path: String) -> SQLiteError {
        misuse("the database at \"\(path)\" is closed", hint: "Open a new Database; a closed one cannot be reused.")
    }

    /// A value that does not convert to the requested Swift type (SQLITE_MISMATCH).
    static func typeMismatch(_ message: String, hint: String) -> SQLiteError {
        SQLiteError(extendedCode: SQLITE_MISMATCH, message: message, sql: nil, hint: hint)
    }

    /// A requested column or index that the row does not have (SQLITE_RANGE).
    static func noSuchColumn(_ message: String, hint: String) -> SQLiteError {
        SQLiteError(extendedCode: SQLITE_RANGE, message: message, sql: nil, hint: hint)
    }

    /// Migration history that does not match the code's list (SQLITE_SCHEMA).
    static func migrationHistory(_ message: String, hint: String) -> SQLiteError {
        SQLiteError(extendedCode: SQLITE_SCHEMA, message: message, sql: nil, hint: hint)
    }

    /// The filesystem refused WAL (SQLITE_CANTOPEN: the database cannot be opened the way capfilt needs).
    static func walUnsupported(path: String, mode: String) -> SQLiteError {
        SQLiteError(
            extendedCode: SQLITE_CANTOPEN,
            message: "journal_mode=WAL was refused for \"\(path)\" (the mode stayed \"\(mode)\"): this filesystem "
                + "lacks the shared-memory locking WAL needs", sql: "PRAGMA journal_mode=WAL",
            hint: "Put the run directory on a local disk (not NFS/SMB or a FUSE mount) so a killed run can resume safely.")
    }
}
