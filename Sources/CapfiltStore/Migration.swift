// Named, ordered schema migrations, recorded in the database so that each runs exactly once, even across
// crashes: a migration and its record commit in the same transaction.

/// One schema change: a unique name and the SQL script that applies it.
///
/// Names are recorded in `schema_migrations`; never rename, remove or reorder a migration that has shipped,
/// only append new ones. The script runs inside a transaction, so it must not contain BEGIN/COMMIT, and
/// `PRAGMA foreign_keys` has no effect in it.
public struct Migration: Sendable, Equatable {
    /// Unique, stable name, e.g. "0002_add_filter_scores".
    public let name: String
    /// One or more SQL statements.
    public let sql: String

    public init(_ name: String, _ sql: String) {
        self.name = name
        self.sql = sql
    }
}

extension Database {
    /// The table that records applied migrations, in order.
    static let migrationsTable = "schema_migrations"

    /// Applies, in order, the migrations not yet recorded in `schema_migrations`, each in its own transaction
    /// together with its record. Already-applied ones are skipped, so running the same list again does nothing.
    ///
    /// Throws if the list has an empty or duplicate name, or disagrees with the recorded history (a recorded
    /// migration renamed, reordered or missing from the list, e.g. a database from a newer capfilt). A failing
    /// migration rolls back, stays unrecorded, and its name leads the error's message; earlier ones stay applied.
    /// Safe against a concurrent migrator: each transaction checks again that its migration is still pending.
    public func migrate(_ migrations: [Migration]) throws {
        var seen: Set<String> = []
        for migration in migrations {
            guard !migration.name.isEmpty, seen.insert(migration.name).inserted else {
                throw SQLiteError.misuse(
                    migration.name.isEmpty ? "a migration has an empty name"
                        : "migration name \"\(migration.name)\" appears twice",
                    hint: "Give every migration a unique, non-empty name.")
            }
        }
        try execute("""
            CREATE TABLE IF NOT EXISTS \(Self.migrationsTable) (
                position   INTEGER PRIMARY KEY,
                name       TEXT NOT NULL UNIQUE,
                applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
            )
            """)
        // Checked outside a transaction first, so a fully migrated database costs no write lock.
        var appliedCount = try checkedHistory(against: migrations)
        for (position, migration) in migrations.enumerated() where position >= appliedCount {
            try write { db in
                appliedCount = try db.checkedHistory(against: migrations)   // another process may have moved on
                guard position >= appliedCount else { return }
                do {
                    try db.execute(migration.sql)
                } catch let error as SQLiteError {
                    throw error.inMigration(migration.name)
                }
                try db.execute("INSERT INTO \(Self.migrationsTable)(position, name) VALUES (?, ?)",
                               [.integer(Int64(position)), .text(migration.name)])
            }
        }
    }

    /// Names of the applied migrations, in the order they were applied (empty if none ever ran).
    public func appliedMigrations() throws -> [String] {
        let exists = try scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                                [.text(Self.migrationsTable)], as: Int.self) ?? 0
        guard exists > 0 else { return [] }
        return try query("SELECT name FROM \(Self.migrationsTable) ORDER BY position").map {
            try $0.value(at: 0, as: String.self)
        }
    }

    /// Verifies that the recorded history is a prefix of `migrations` and returns its length.
    private func checkedHistory(against migrations: [Migration]) throws -> Int {
        let applied = try query("SELECT position, name FROM \(Self.migrationsTable) ORDER BY position")
        for (expected, row) in applied.enumerated() {
            let position = try row.value("position", as: Int.self)
            let name = try row.value("name", as: String.self)
            guard position == expected, expected < migrations.count else {
                throw SQLiteError.migrationHistory(
                    "the database records migration \"\(name)\" at position \(position), which this capfilt "
                        + "does not know (it knows \(migrations.count) migrations)",
                    hint: "The database was migrated by a newer capfilt: use that version, or start a new run.")
            }
            guard migrations[expected].name == name else {
                throw SQLiteError.migrationHistory(
                    "migration history mismatch at position \(position): the database applied \"\(name)\", "
                        + "the code lists \"\(migrations[expected].name)\"",
                    hint: "Shipped migrations must never be renamed, removed or reordered; append new ones instead.")
            }
        }
        return applied.count
    }
}
