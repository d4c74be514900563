// One SQLite connection configured for a crash-safe, resumable pipeline: WAL, synchronous=FULL by default,
// foreign keys on, IMMEDIATE write transactions, and cached statements for the SQL it runs repeatedly.

/// An SQLite database connection.
///
/// ```swift
/// let db = try Database(path: runDirectory + "/ledger.sqlite")
/// try db.migrate([Migration("0001_samples", "CREATE TABLE samples(key TEXT PRIMARY KEY, status TEXT NOT NULL)")])
/// try db.write { db in
///     try db.execute("INSERT INTO samples(key, status) VALUES (?, ?)", ["000123", "captioned"])
/// }
/// let done = try db.scalar("SELECT count(*) FROM samples WHERE status = ?", ["captioned"], as: Int.self)
/// ```
///
/// **Threads.** A `Database` owns one connection and is not a lock: use it from one thread (or one actor, or
/// one serial queue) at a time. It is `Sendable` so it can be handed over to the owner, not so several owners can
/// use it at once. For parallel writers, give each its own `Database` on the same file; WAL and `busyTimeout`
/// make them take turns.
///
/// **Durability.** Changes outside `write` autocommit statement by statement; group related changes in `write`
/// so that a crash keeps all of them or none. With `.full`, a committed `write` survives a power loss.
///
/// **Lifetime.** The connection closes when the `Database` and every `Statement` it prepared are released, or
/// at `close()`. Cached statements are finalized first, so closing never fails on unfinalized statements.
public final class Database: @unchecked Sendable {
    /// How hard a commit pushes data to disk (`PRAGMA synchronous`).
    public enum Durability: Sendable {
        /// `synchronous=FULL`: the WAL is synced at every commit; a commit survives power loss.
        case full
        /// `synchronous=NORMAL`: synced at checkpoints only; the database stays consistent after a power loss,
        /// but the last commits may be lost. Survives a killed process either way.
        case normal
    }

    /// How the database keeps its journal (`PRAGMA journal_mode`).
    public enum Journal: Sendable {
        /// `WAL`: readers never block the writer. Needs shared memory, so every process using the file must be
        /// on one host.
        case wal
        /// `DELETE` (a rollback journal beside the file): no shared memory, so the file may move between hosts
        /// of a shared file system as long as one process at a time writes it.
        case rollback
    }

    /// The path the database was opened with (`:memory:` for in-memory databases).
    public let path: String
    /// The synchronous mode applied at open.
    public let durability: Durability
    let connection: Connection
    /// Statements used by `execute` (with arguments), `query`, `queryOne` and `scalar`, keyed by SQL text.
    private var statementCache: [String: Statement] = [:]
    /// Bound on the cache, so SQL built by string interpolation cannot grow it without limit.
    private static let statementCacheLimit = 256

    /// Opens or creates the database at `path`, and configures it:
    /// `journal_mode=WAL` (verified: a filesystem that cannot do WAL is an error, because a killed run could not
    /// resume safely), `synchronous` per `durability`, `foreign_keys=ON`, and `busy_timeout` of `busyTimeout`
    /// seconds (how long to wait for another connection's write lock before failing with a "locked" error).
    ///
    /// `":memory:"` opens a private in-memory database, which cannot use WAL (its journal mode is `memory`).
    public convenience init(path: String, durability: Durability = .full, busyTimeout: Double = 5,
                            journal: Journal = .wal) throws {
        try self.init(path: path, durability: durability, busyTimeout: busyTimeout, vfs: nil, journal: journal)
    }

    /// A private in-memory database, configured like a file one except that it has no WAL.
    public static func inMemory() throws -> Database {
        try Database(path: ":memory:")
    }

    /// `vfs` selects an SQLite VFS; tests use one without shared memory to reach the WAL-refused path.
    init(path: String, durability: Durability, busyTimeout: Double, vfs: String?, journal: Journal = .wal) throws {
        self.path = path
        self.durability = durability
        self.connection = try Connection(path: path, vfs: vfs)

        // The timeout comes first: setting the journal mode may itself wait for another process's lock.
        let milliseconds = busyTimeout.isNaN ? 0 : min(max(busyTimeout * 1000, 0), Double(Int32.max))
        try connection.setBusyTimeout(milliseconds: Int32(milliseconds))

        let isMemory = path == ":memory:" || path.isEmpty
        let wanted = journal == .wal ? "wal" : "delete"
        let mode = try scalar("PRAGMA journal_mode=\(wanted)", as: String.self)?.lowercased() ?? ""
        if !isMemory && mode != wanted && journal == .wal {
            throw SQLiteError.walUnsupported(path: path, mode: mode)
        }
        try execute(durability == .full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL")
        try execute("PRAGMA foreign_keys=ON")
        // A build without foreign-key support ignores the pragma silently; the ledger relies on it, so check.
        guard try scalar("PRAGMA foreign_keys", as: Int.self) == 1 else {
            throw SQLiteError.misuse("foreign_keys could not be enabled: this SQLite was built without them",
                                     sql: "PRAGMA foreign_keys=ON",
                                     hint: "Link capfilt against a standard SQLite build (libsqlite3-dev).")
        }
    }

    // MARK: Running SQL

    /// Runs SQL that returns no rows you need.
    ///
    /// Without arguments, `sql` may be a script of several statements separated by `;`, each run in turn.
    /// With arguments, it must be one statement, whose `?` placeholders take `arguments` in order; the compiled
    /// statement is cached for the next call with the same SQL.
    public func execute(_ sql: String, _ arguments: [SQLValue] = []) throws {
        if arguments.isEmpty {
            try connection.forEachStatement(in: sql) { prepared in
                try Statement(prepared).run()
            }
        } else {
            try cachedStatement(sql).run(arguments)
        }
    }

    /// Compiles one statement, to bind and run many times; see `Statement`. Not cached: the caller owns it.
    public func prepare(_ sql: String) throws -> Statement {
        Statement(try connection.prepareOne(sql, persistent: true))
    }

    /// All rows of one query. The compiled statement is cached.
    public func query(_ sql: String, _ arguments: [SQLValue] = []) throws -> [Row] {
        try cachedStatement(sql).rows(arguments)
    }

    /// The first row of one query, or nil; later rows are not computed. The compiled statement is cached.
    public func queryOne(_ sql: String, _ arguments: [SQLValue] = []) throws -> Row? {
        try cachedStatement(sql).firstRow(arguments)
    }

    /// The first column of the first row as `T`: nil when there is no row or the value is NULL; throws
    /// (`isTypeMismatch`) when the value does not convert to `T`.
    public func scalar<T: SQLValueConvertible>(
        _ sql: String, _ arguments: [SQLValue] = [], as type: T.Type
    ) throws -> T? {
        guard let row = try queryOne(sql, arguments), row.count > 0, !row[0].isNull else { return nil }
        do {
            return try row.value(at: 0, as: type)
        } catch let error as SQLiteError {
            throw SQLiteError(extendedCode: error.extendedCode, message: error.message, sql: sql, hint: error.hint)
        }
    }

    /// The cached statement for `sql`, compiling it on first use.
    private func cachedStatement(_ sql: String) throws -> Statement {
        if let cached = statementCache[sql] { return cached }
        let statement = Statement(try connection.prepareOne(sql, persistent: true))
        if statementCache.count >= Self.statementCacheLimit { statementCache.removeAll(keepingCapacity: true) }
        statementCache[sql] = statement
        return statement
    }

    // MARK: Transactions

    /// Runs `body` in a write transaction and returns its result.
    ///
    /// `BEGIN IMMEDIATE` takes the write lock before `body` runs, so `body` never fails halfway for lack of it;
    /// if another connection holds it, this waits up to `busyTimeout` and then throws an error with `isBusy`.
    /// When `body` returns, the transaction commits; when it throws, the transaction rolls back and the error is
    /// rethrown, leaving no trace of `body`'s changes. If the commit itself fails, it rolls back and throws.
    ///
    /// Transactions do not nest: calling `write` inside `body` (or while a transaction begun with
    /// `execute("BEGIN")` is open) throws an `isMisuse` error, because an inner "commit" that is not durable
    /// would mislead. Put the work of the inner call in the outer `body` instead.
    public func write<T>(_ body: (Database) throws -> T) throws -> T {
        guard connection.isAutocommit else {
            throw SQLiteError.misuse(
                "write(_:) was called while a transaction is already open (nested write, or a manual BEGIN)",
                hint: "Do the work inside the enclosing write's body; transactions do not nest.")
        }
        try execute("BEGIN IMMEDIATE")
        let result: T
        do {
            result = try body(self)
            try execute("COMMIT")
        } catch {
            rollbackIfOpen()
            throw error
        }
        return result
    }

    /// Rolls back the open transaction, if SQLite has not already done so itself (it does on some errors,
    /// such as a full disk). A failing ROLLBACK is ignored: the error that caused it is the one to report.
    private func rollbackIfOpen() {
        guard !connection.isAutocommit else { return }
        try? execute("ROLLBACK")
    }

    /// True while a transaction is open.
    public var isInTransaction: Bool { !connection.isAutocommit }

    // MARK: State

    /// The rowid of the most recent successful INSERT on this connection (0 if none).
    public var lastInsertRowID: Int64 { connection.lastInsertRowID }

    /// Rows changed by the most recent INSERT, UPDATE or DELETE on this connection.
    public var changes: Int { connection.changes }

    /// `PRAGMA wal_checkpoint(TRUNCATE)`: copies the WAL into the database file and truncates the WAL, e.g.
    /// at the end of a stage so the run directory holds one self-contained file. Waits up to `busyTimeout` for
    /// readers and writers to finish, then throws an `isBusy` error. A no-op for in-memory databases.
    public func checkpoint() throws {
        try connection.checkpointTruncate()
    }

    /// Closes the connection now, finalizing cached statements. Throws (and stays open) while a `Statement`
    /// from `prepare(_:)` is still alive. Afterwards every call throws an `isMisuse` error. Calling it again
    /// does nothing. Not needed for correctness: releasing the `Database` closes it too.
    public func close() throws {
        statementCache.removeAll()
        try connection.close()
    }
}
