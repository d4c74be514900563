// The unit ledger: one SQLite database per attempt at one unit of work (`units/U/ledger.A.sqlite`), written by
// the one worker holding that attempt's lease, with a row per input sample of the unit and every stage's
// outcome, and the image bytes of the samples kept. A stage's results for a batch are committed in one IMMEDIATE
// transaction, so a worker killed at any instant resumes from the last committed batch of each stage. The
// journal is a rollback journal, not WAL: a unit's file may be written from another host after a take-over,
// and WAL's shared memory only works among processes of one host.
import CapfiltCorpus
import CapfiltStore
import Foundation

/// A file a sample was read from, and its identity then (nil: it did not exist).
public struct InputFileIdentity: Sendable, Equatable {
    public var path: String
    public var identity: FileIdentity?
    public init(path: String, identity: FileIdentity?) { self.path = path; self.identity = identity }
}

/// Where a sample is in the pipeline. Stages only move forward.
public enum SampleStage: String, Sendable, Codable {
    /// Read, checked, decodable; waiting for captions.
    case ingested
    /// Synthetic captions recorded; waiting for the filter.
    case captioned
    /// Final: kept, filtered, failed or duplicate.
    case done
}

/// The final outcome of a sample.
public enum SampleStatus: String, Sendable, Codable, CaseIterable {
    case pending, kept, filtered, failed, duplicate
}

/// One synthetic caption and how the filter judged it.
public struct SyntheticCaption: Sendable, Equatable, Codable {
    public var text: String
    public var tokenIDs: [Int]
    public var itm: Float?
    public var itc: Float?
    public var kept: Bool?

    enum CodingKeys: String, CodingKey { case text, tokenIDs = "token_ids", itm, itc, kept }

    public init(text: String, tokenIDs: [Int], itm: Float? = nil, itc: Float? = nil, kept: Bool? = nil) {
        self.text = text; self.tokenIDs = tokenIDs; self.itm = itm; self.itc = itc; self.kept = kept
    }
}

/// The web text's checks and scores.
public struct WebTextScore: Sendable, Equatable, Codable {
    public var itm: Float
    public var itc: Float
    public var kept: Bool

    public init(itm: Float, itc: Float, kept: Bool) { self.itm = itm; self.itc = itc; self.kept = kept }
}

/// A ledger row; also a line of a finished unit's `records.A.jsonl`.
public struct SampleRecord: Sendable, Equatable, Codable {
    public var ordinal: Int
    public var key: String
    public var sourceKey: String
    public var source: String
    public var position: String
    /// The web text, or nil when unusable (see `webTextProblem`).
    public var webText: String?
    /// Why the web text cannot be used: missing, empty, whitespace_only, invalid_utf8, too_long.
    public var webTextProblem: String?
    public var imageSHA256: String?
    public var imageFormat: String?
    public var imageBytes: Int?
    public var width: Int?
    public var height: Int?
    public var stage: SampleStage
    public var status: SampleStatus
    /// Machine-readable reason for failed / filtered / duplicate (e.g. `image_corrupt`).
    public var reason: String?
    /// Human-readable detail (the decoder's message, the duplicate's key...).
    public var detail: String?
    public var duplicateOf: Int?
    public var captions: [SyntheticCaption] = []
    public var webScore: WebTextScore?
    public var mainCaption: String?
    /// "web" or "synthetic".
    public var mainCaptionSource: String?
    /// The input's own fields about the sample (``InputSample/inputFields``): img2dataset's `url`, `exif`,
    /// `original_width`, a list's extra columns. Output manifests take img2dataset's columns and
    /// `output.additional_columns` from here.
    public var inputFields: [String: String] {
        get { storedInputFields ?? [:] }
        set { storedInputFields = newValue.isEmpty ? nil : newValue }
    }
    /// Absent from records of inputs that say nothing more (and from records written before version 4).
    var storedInputFields: [String: String]?

    enum CodingKeys: String, CodingKey {
        case ordinal, key, sourceKey = "source_key", source, position, webText = "web_text", webTextProblem = "web_text_problem"
        case imageSHA256 = "image_sha256", imageFormat = "image_format", imageBytes = "image_bytes", width, height, stage, status
        case reason, detail, duplicateOf = "duplicate_of", captions, webScore = "web_score", mainCaption = "main_caption"
        case mainCaptionSource = "main_caption_source", storedInputFields = "input_fields"
    }

    public init(ordinal: Int, key: String, sourceKey: String, source: String, position: String, webText: String? = nil,
                webTextProblem: String? = nil, imageSHA256: String? = nil, imageFormat: String? = nil, imageBytes: Int? = nil,
                width: Int? = nil, height: Int? = nil, stage: SampleStage, status: SampleStatus, reason: String? = nil,
                detail: String? = nil, duplicateOf: Int? = nil, captions: [SyntheticCaption] = [], webScore: WebTextScore? = nil,
                mainCaption: String? = nil, mainCaptionSource: String? = nil) {
        self.ordinal = ordinal; self.key = key; self.sourceKey = sourceKey; self.source = source; self.position = position
        self.webText = webText; self.webTextProblem = webTextProblem; self.imageSHA256 = imageSHA256
        self.imageFormat = imageFormat; self.imageBytes = imageBytes; self.width = width; self.height = height
        self.stage = stage; self.status = status; self.reason = reason; self.detail = detail; self.duplicateOf = duplicateOf
        self.captions = captions; self.webScore = webScore; self.mainCaption = mainCaption; self.mainCaptionSource = mainCaptionSource
    }
}

public final class Ledger: @unchecked Sendable {
    public static let schemaVersion = 4
    public let path: String
    private let db: Database
    private let lock = NSLock()

    static let migrations: [Migration] = [
        Migration("001_unit_ledger", """
            CREATE TABLE run (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                schema_version INTEGER NOT NULL,
                spec_fingerprint TEXT NOT NULL,
                spec_yaml TEXT NOT NULL,
                spec_path TEXT NOT NULL,
                captioner_sha256 TEXT NOT NULL,
                filter_sha256 TEXT NOT NULL
            );
            CREATE TABLE samples (
                ordinal INTEGER PRIMARY KEY,
                key TEXT NOT NULL UNIQUE,
                source_key TEXT NOT NULL,
                source TEXT NOT NULL,
                position TEXT NOT NULL,
                web_text TEXT,
                web_text_problem TEXT,
                image_sha256 TEXT,
                image_format TEXT,
                image_bytes INTEGER,
                width INTEGER,
                height INTEGER,
                stage TEXT NOT NULL,
                status TEXT NOT NULL,
                reason TEXT,
                detail TEXT,
                duplicate_of INTEGER REFERENCES samples(ordinal),
                captions TEXT NOT NULL DEFAULT '[]',
                web_score TEXT,
                main_caption TEXT,
                main_caption_source TEXT
            );
            CREATE INDEX samples_by_image ON samples(image_sha256);
            CREATE INDEX samples_by_source_key ON samples(source, source_key);
            -- REPLACE deletes the old row; without this index each delete scanned the table for rows pointing at it.
            CREATE INDEX samples_by_duplicate ON samples(duplicate_of);
            CREATE TABLE input_files (
                path TEXT PRIMARY KEY,
                size INTEGER,
                mtime_ns INTEGER
            ) WITHOUT ROWID;
            CREATE TABLE kept_images (
                ordinal INTEGER PRIMARY KEY REFERENCES samples(ordinal),
                extension TEXT NOT NULL,
                bytes BLOB NOT NULL
            );
            """),
        // Version 4: what the input says about each sample (url, exif, original sizes, extra columns).
        Migration("002_input_fields", "ALTER TABLE samples ADD COLUMN input_fields TEXT;"),
    ]

    /// Opens (creating if needed) the ledger at `path`.
    public init(path: String) throws {
        self.path = path
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !FileManager.default.fileExists(atPath: dir) {
            throw PipelineError("\(dir) does not exist: give the run's output folder")
        }
        db = try Database(path: path, durability: .full, journal: .rollback)
        try db.migrate(Self.migrations)
    }

    // MARK: - Run identity

    public struct RunIdentity: Sendable, Equatable {
        public var specFingerprint: String
        public var specYAML: String
        /// Where the spec was read from: its folder anchors the spec's relative paths.
        public var specPath: String
        public var captionerSHA256: String
        public var filterSHA256: String
    }

    /// The identity recorded when the run was created, or nil for a new ledger.
    public func identity() throws -> RunIdentity? {
        try locked {
            guard let row = try db.queryOne("SELECT spec_fingerprint, spec_yaml, spec_path, captioner_sha256, filter_sha256 FROM run WHERE id = 1") else { return nil }
            return RunIdentity(specFingerprint: row["spec_fingerprint"] ?? "", specYAML: row["spec_yaml"] ?? "", specPath: row["spec_path"] ?? "",
                               captionerSHA256: row["captioner_sha256"] ?? "", filterSHA256: row["filter_sha256"] ?? "")
        }
    }

    public func recordIdentity(_ id: RunIdentity) throws {
        try locked {
            try db.write { db in
                try db.execute("INSERT INTO run (id, schema_version, spec_fingerprint, spec_yaml, spec_path, captioner_sha256, filter_sha256) VALUES (1, ?, ?, ?, ?, ?, ?)",
                               [.integer(Int64(Self.schemaVersion)), .text(id.specFingerprint), .text(id.specYAML), .text(id.specPath),
                                .text(id.captionerSHA256), .text(id.filterSHA256)])
            }
        }
    }

    // MARK: - Samples

    /// Rows with ordinals in `range`, in order.
    public func samples(in range: Range<Int>) throws -> [SampleRecord] {
        try locked {
            try db.query("SELECT * FROM samples WHERE ordinal >= ? AND ordinal < ? ORDER BY ordinal",
                         [.integer(Int64(range.lowerBound)), .integer(Int64(range.upperBound))]).map(Self.record)
        }
    }

    /// Every row, in order, handed to `body` one at a time (the export's merge with the input stream).
    public func forEachSample(from ordinal: Int = 0, _ body: (SampleRecord) throws -> Void) throws {
        let pageSize = 4096
        guard let last = try maxOrdinal() else { return }
        var next = ordinal
        while next <= last {
            for record in try samples(in: next..<(next + pageSize)) { try body(record) }
            next += pageSize
        }
    }

    public func maxOrdinal() throws -> Int? {
        try locked { try db.scalar("SELECT MAX(ordinal) FROM samples", as: Int.self) }
    }

    /// The first earlier sample with these image bytes.
    public func firstSample(withImage sha256: String, before ordinal: Int) throws -> SampleRecord? {
        try locked {
            try db.queryOne("SELECT * FROM samples WHERE image_sha256 = ? AND ordinal < ? AND status != 'duplicate' ORDER BY ordinal LIMIT 1",
                            [.text(sha256), .integer(Int64(ordinal))]).map(Self.record)
        }
    }

    /// The first earlier sample of the same source with the same key.
    public func firstSample(source: String, sourceKey: String, before ordinal: Int) throws -> String? {
        try locked {
            try db.scalar("SELECT key FROM samples WHERE source = ? AND source_key = ? AND ordinal < ? ORDER BY ordinal LIMIT 1",
                          [.text(source), .text(sourceKey), .integer(Int64(ordinal))], as: String.self)
        }
    }

    /// Inserts new rows or replaces existing ones, all in one transaction: a stage's commit for a batch. `files`
    /// are the identities of the files those rows were read from (list images, folder sidecars).
    public func commit(_ records: [SampleRecord], files: [InputFileIdentity] = [],
                       keptImages: [(ordinal: Int, fileExtension: String, bytes: [UInt8])] = []) throws {
        guard !records.isEmpty || !files.isEmpty else { return }
        try locked {
            try db.write { db in
                if !files.isEmpty {
                    let insert = try db.prepare("INSERT OR REPLACE INTO input_files (path, size, mtime_ns) VALUES (?, ?, ?)")
                    for f in files {
                        try insert.run([.text(f.path), f.identity.map { .integer($0.size) } ?? .null,
                                        f.identity.map { .integer($0.modifiedNanoseconds) } ?? .null])
                    }
                }
                let statement = try db.prepare("""
                    INSERT OR REPLACE INTO samples (ordinal, key, source_key, source, position, web_text, web_text_problem,
                        image_sha256, image_format, image_bytes, width, height, stage, status, reason, detail, duplicate_of,
                        captions, web_score, main_caption, main_caption_source, input_fields)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
                for r in records { try statement.run(Self.values(r)) }
                if !keptImages.isEmpty {
                    let insert = try db.prepare("INSERT OR REPLACE INTO kept_images (ordinal, extension, bytes) VALUES (?, ?, ?)")
                    for image in keptImages {
                        try insert.run([.integer(Int64(image.ordinal)), .text(image.fileExtension), .blob(image.bytes)])
                    }
                }
            }
        }
    }

    // MARK: - Input identity

    /// Every file identity recorded at ingest, a page at a time (bounded memory).
    public func forEachInputFile(_ body: (InputFileIdentity) throws -> Void) throws {
        var after = ""
        while true {
            let page = try locked {
                try db.query("SELECT path, size, mtime_ns FROM input_files WHERE path > ? ORDER BY path LIMIT 4096", [.text(after)])
                    .map { row -> InputFileIdentity in
                        let size: Int64? = row["size"], mtime: Int64? = row["mtime_ns"]
                        return InputFileIdentity(path: row["path"] ?? "",
                                                 identity: size.map { FileIdentity(size: $0, modifiedNanoseconds: mtime ?? 0) })
                    }
            }
            for file in page { try body(file) }
            guard let last = page.last else { return }
            after = last.path
        }
    }

    // MARK: - Counts

    /// (stage, status, reason) → count, for `capfilt status` and the stats files.
    public func histogram() throws -> [(stage: String, status: String, reason: String?, count: Int)] {
        try locked {
            try db.query("SELECT stage, status, reason, COUNT(*) AS n FROM samples GROUP BY stage, status, reason ORDER BY stage, status, reason")
                .map { (stage: $0["stage"] ?? "", status: $0["status"] ?? "", reason: $0["reason"], count: $0["n"] ?? 0) }
        }
    }

    /// Web-text problems → count.
    public func webTextProblems() throws -> [(problem: String, count: Int)] {
        try locked {
            try db.query("SELECT web_text_problem AS p, COUNT(*) AS n FROM samples WHERE web_text_problem IS NOT NULL GROUP BY p ORDER BY p")
                .map { (problem: $0["p"] ?? "", count: $0["n"] ?? 0) }
        }
    }

    /// The kept samples' image bytes in ordinal order, one at a time (bounded memory).
    public func forEachKeptImage(_ body: (_ ordinal: Int, _ fileExtension: String, _ bytes: [UInt8]) throws -> Void) throws {
        var after = -1
        while true {
            let page = try locked {
                try db.query("SELECT ordinal, extension, bytes FROM kept_images WHERE ordinal > ? ORDER BY ordinal LIMIT 64",
                             [.integer(Int64(after))])
                    .map { row -> (Int, String, [UInt8]) in (row["ordinal"] ?? 0, row["extension"] ?? "", row["bytes"] ?? []) }
            }
            for (ordinal, ext, bytes) in page { try body(ordinal, ext, bytes) }
            guard let last = page.last else { return }
            after = last.0
        }
    }

    /// The query plans of the statements a batch commit and the duplicate look-ups run, for the test that holds
    /// them to index searches (no statement may scan the table: a batch's cost must not grow with the unit).
    public func queryPlans() throws -> [String: [String]] {
        let statements = [
            "duplicate image": "SELECT * FROM samples WHERE image_sha256 = 'x' AND ordinal < 5 AND status != 'duplicate' ORDER BY ordinal LIMIT 1",
            "duplicate key": "SELECT key FROM samples WHERE source = 'a' AND source_key = 'b' AND ordinal < 5 ORDER BY ordinal LIMIT 1",
            "rows of a batch": "SELECT * FROM samples WHERE ordinal >= 0 AND ordinal < 8 ORDER BY ordinal",
            "rows pointing at a replaced row": "SELECT ordinal FROM samples WHERE duplicate_of = 3",
            "kept images": "SELECT ordinal, extension, bytes FROM kept_images WHERE ordinal > 3 ORDER BY ordinal LIMIT 64",
        ]
        return try locked {
            try statements.mapValues { sql in try db.query("EXPLAIN QUERY PLAN " + sql).map { $0["detail"] ?? "" } }
        }
    }

    // MARK: - Row mapping

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    private static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    private static func values(_ r: SampleRecord) throws -> [SQLValue] {
        func text(_ s: String?) -> SQLValue { s.map { .text($0) } ?? .null }
        func int(_ i: Int?) -> SQLValue { i.map { .integer(Int64($0)) } ?? .null }
        let captions = String(decoding: try encoder.encode(r.captions), as: UTF8.self)
        let web = try r.webScore.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
        return [.integer(Int64(r.ordinal)), .text(r.key), .text(r.sourceKey), .text(r.source), .text(r.position),
                text(r.webText), text(r.webTextProblem), text(r.imageSHA256), text(r.imageFormat), int(r.imageBytes),
                int(r.width), int(r.height), .text(r.stage.rawValue), .text(r.status.rawValue), text(r.reason), text(r.detail),
                int(r.duplicateOf), .text(captions), text(web), text(r.mainCaption), text(r.mainCaptionSource),
                r.inputFields.isEmpty ? .null : .text(JSON.object(r.inputFields.mapValues { .string($0) }).text)]
    }

    private static func record(_ row: Row) throws -> SampleRecord {
        let decoder = JSONDecoder()
        let captionsJSON: String = row["captions"] ?? "[]"
        let webJSON: String? = row["web_score"]
        let fieldsJSON: String? = row["input_fields"]
        var record = SampleRecord(
            ordinal: row["ordinal"] ?? 0, key: row["key"] ?? "", sourceKey: row["source_key"] ?? "",
            source: row["source"] ?? "", position: row["position"] ?? "", webText: row["web_text"],
            webTextProblem: row["web_text_problem"], imageSHA256: row["image_sha256"], imageFormat: row["image_format"],
            imageBytes: row["image_bytes"], width: row["width"], height: row["height"],
            stage: SampleStage(rawValue: row["stage"] ?? "") ?? .ingested,
            status: SampleStatus(rawValue: row["status"] ?? "") ?? .pending,
            reason: row["reason"], detail: row["detail"], duplicateOf: row["duplicate_of"],
            captions: try decoder.decode([SyntheticCaption].self, from: Data(captionsJSON.utf8)),
            webScore: try webJSON.map { try decoder.decode(WebTextScore.self, from: Data($0.utf8)) },
            mainCaption: row["main_caption"], mainCaptionSource: row["main_caption_source"])
        if let fieldsJSON { record.inputFields = try decoder.decode([String: String].self, from: Data(fieldsJSON.utf8)) }
        return record
    }
}

extension Ledger {
    /// How many texts the filter scored and kept.
    public func filterRates() throws -> (webScored: Int, webKept: Int, syntheticScored: Int, syntheticKept: Int) {
        var rates = (webScored: 0, webKept: 0, syntheticScored: 0, syntheticKept: 0)
        try forEachSample { r in
            if let w = r.webScore { rates.webScored += 1; if w.kept { rates.webKept += 1 } }
            for c in r.captions where c.itm != nil {
                rates.syntheticScored += 1
                if c.kept == true { rates.syntheticKept += 1 }
            }
        }
        return rates
    }
}
