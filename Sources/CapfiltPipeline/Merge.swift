// `capfilt merge`: the dataset users load, from the finished units. Every unit must be done with the job's spec
// and weights; then the units are read in order, once, and their kept samples packed into fixed-size shards
// 00000.tar, 00001.tar, ... with no gaps, each with its manifest (one line per input sample it covers) and
// stats, then the run manifest with every shard's count and SHA-256, last.
//
// Everything a merge decides depends only on the units' contents in unit order, so the dataset is the same
// whatever the number of workers and whatever order they ran in:
// - an image whose exact bytes were kept or filtered in an earlier unit is a duplicate (duplicates: drop): the
//   first occurrence in (unit, position) order stays;
// - a key already given to an earlier sample becomes the sample's derived key (unit_position), or that with a
//   `_2`, `_3`, ... suffix; the same input key again in the same source (a list cut into units) is
//   `duplicate_key`, as within a unit.
// Memory stays flat: the images and keys seen so far live in a scratch SQLite file (`.merge.sqlite`, rebuilt by
// every merge), a unit's rows are read one unit at a time, and shard files are written as they fill. Each file
// is written under a temporary name and renamed into place, so a killed merge leaves the old files or the new
// ones, and a merge run again writes the same bytes.
import CapfiltCorpus
import CapfiltDigest
import CapfiltImage
import CapfiltStore
import CapfiltWebDataset
import Foundation

/// The output formats' version, in every manifest and stats file (schemas in Manifests/).
/// 2: the Parquet manifest beside each shard; img2dataset's url, original sizes, exif and sha256 columns; JSONL
/// manifests without nulls; `successes` in the stats.
public let outputSchemaVersion = 2

public struct Merge {
    let spec: PipelineSpec
    let plan: JobPlan
    let outputFolder: URL

    public static let lockName = "merge.lock"
    static let scratchName = ".merge.sqlite"

    public init(folder: URL) throws {
        plan = try JobPlan.open(folder: folder)
        spec = try PipelineSpec(yaml: plan.specYAML, path: plan.specPath)
        outputFolder = folder
    }

    init(spec: PipelineSpec, plan: JobPlan, outputFolder: URL) {
        self.spec = spec
        self.plan = plan
        self.outputFolder = outputFolder
    }

    public static func shardName(_ index: Int) -> String { JobPlan.pad(index, 5) }

    var shardFolder: URL { outputFolder.appendingPathComponent(PipelineRun.shardFolderName) }

    /// `capfilt merge OUT`: takes the merge lock (throws if another process holds it) and merges. Returns false if
    /// stopped.
    public static func run(folder: URL, stop: StopFlag, verification: ShardVerification = .full,
                           log: (String) -> Void = { _ in }) throws -> Bool {
        let merge = try Merge(folder: folder)
        guard let lock = try RunFolderLock.take(folder: folder, name: lockName, purpose: "capfilt merge \(folder.path)") else {
            throw PipelineError("another capfilt process is merging \(folder.path); wait for it to finish (`capfilt status \(folder.path)`)")
        }
        defer { lock.release() }
        return try merge.merge(stop: stop, verification: verification, log: log)
    }

    // MARK: - Checking the units

    /// Every unit's result, or an error naming the units that are not done or were made differently.
    public func results() throws -> [UnitResult] {
        var results: [UnitResult] = []
        var missing: [String] = [], different: [String] = []
        for u in plan.units.indices {
            let folder = UnitFolder(runFolder: outputFolder, unit: u)
            guard let result = folder.result() else {
                var what = JobPlan.unitName(u)
                if case .held(let attempt, let holder?, let renewed, let stale) = UnitState.of(folder, leaseSeconds: spec.job.leaseSeconds) {
                    what += " (attempt \(attempt), worker \(holder.worker) on \(holder.host)\(stale ? ", lease expired" : "")\(renewed.map { ", renewed \(Int(Date().timeIntervalSince($0)))s ago" } ?? ""))"
                } else {
                    what += " (not started)"
                }
                missing.append(what)
                continue
            }
            var differences: [String] = []
            if result.specFingerprint != plan.specFingerprint { differences.append("spec") }
            if result.captionerSHA256 != plan.captionerSHA256 { differences.append("captioner weights") }
            if result.filterSHA256 != plan.filterSHA256 { differences.append("filter weights") }
            if result.unit != u { differences.append("unit number \(result.unit)") }
            if !differences.isEmpty { different.append("\(JobPlan.unitName(u)) (\(differences.joined(separator: ", ")))") }
            results.append(result)
        }
        func list(_ names: [String]) -> String {
            names.prefix(20).joined(separator: ", ") + (names.count > 20 ? " and \(names.count - 20) more" : "")
        }
        if !different.isEmpty {
            throw PipelineError("\(different.count) of \(plan.units.count) units of \(outputFolder.path) were made with another spec or other weights than \(JobPlan.fileName) names: \(list(different)). Merging would mix outputs: remove those units' folders under units/ and run the workers again.")
        }
        if !missing.isEmpty {
            throw PipelineError("\(missing.count) of \(plan.units.count) units of \(outputFolder.path) are not done: \(list(missing)). Run the workers again (`capfilt run \(plan.specPath) --worker I --workers N`), or see `capfilt status \(outputFolder.path)`.")
        }
        return results
    }

    /// One digest of every unit's contents: the run manifest records it, so a merge can tell it is up to date.
    static func unitsDigest(_ results: [UnitResult]) -> String {
        SHA256.hex(SHA256.hash(Array(results.map { "\($0.recordsSHA256) \($0.imagesSHA256)\n" }.joined().utf8)))
    }

    /// Every row of the job's finished units in unit order, as the units wrote them (before the merge's
    /// cross-unit decisions): for checks and tools.
    public static func unitRecords(folder: URL) throws -> [SampleRecord] {
        let plan = try JobPlan.open(folder: folder)
        var records: [SampleRecord] = []
        for u in plan.units.indices {
            let unit = UnitFolder(runFolder: folder, unit: u)
            guard let result = unit.result(),
                  let data = FileManager.default.contents(atPath: unit.url.appendingPathComponent(result.records).path) else { continue }
            for line in data.split(separator: 0x0A) { records.append(try JSONDecoder().decode(SampleRecord.self, from: Data(line))) }
        }
        return records
    }

    // MARK: - Merging

    /// Writes the dataset unless the run manifest already records these units and its shards check out (as
    /// `verification` says). Returns false if stopped.
    public func merge(stop: StopFlag, verification: ShardVerification = .automatic, log: (String) -> Void = { _ in }) throws -> Bool {
        let results = try results()
        let digest = Self.unitsDigest(results)
        if let manifest = try RunManifest.read(folder: outputFolder), manifest.unitsSHA256 == digest,
           try Self.verifyShards(folder: outputFolder, verification).isEmpty {
            return true
        }
        log("merging \(results.count) units")
        try FileManager.default.createDirectory(at: shardFolder, withIntermediateDirectories: true)
        let scratchURL = outputFolder.appendingPathComponent(Self.scratchName)
        for suffix in ["", "-journal"] { unlink(scratchURL.path + suffix) }
        defer { for suffix in ["", "-journal"] { unlink(scratchURL.path + suffix) } }
        let scratch = try Database(path: scratchURL.path, durability: .normal, journal: .rollback)
        try scratch.execute("""
            PRAGMA synchronous=OFF;
            CREATE TABLE images (sha256 TEXT PRIMARY KEY, key TEXT NOT NULL) WITHOUT ROWID;
            CREATE TABLE keys (key TEXT PRIMARY KEY) WITHOUT ROWID;
            CREATE TABLE source_keys (source TEXT NOT NULL, source_key TEXT NOT NULL, key TEXT NOT NULL,
                                      PRIMARY KEY (source, source_key)) WITHOUT ROWID;
            """)
        var shards = ShardAssembler(merge: self, stop: stop)
        var totals = Counts()
        for result in results {
            if stop.isSet { return false }
            try scratch.write { db in
                try mergeUnit(result, scratch: db) { sample, image in
                    totals.add(sample.record)
                    try shards.add(sample, image: image)
                }
            }
        }
        try shards.finish()
        if stop.isSet { return false }
        try removeStaleShards(keeping: shards.written.count)
        try writeDatasetCard(totals: totals, shards: shards.written.count)
        try writeRunManifest(shards.written, totals: totals, unitsDigest: digest)
        return true
    }

    /// A sample as the dataset has it: its row with the merge's decisions, and the key of the sample it duplicates.
    struct MergedSample {
        var record: SampleRecord
        var duplicateOf: String?
    }

    /// Reads one unit's rows and kept images, in order, and hands each sample to `body` with its image when kept.
    private func mergeUnit(_ result: UnitResult, scratch: Database,
                           _ body: (MergedSample, [UInt8]?) throws -> Void) throws {
        let folder = UnitFolder(runFolder: outputFolder, unit: result.unit)
        let recordsURL = folder.url.appendingPathComponent(result.records)
        let imagesURL = folder.url.appendingPathComponent(result.images)
        guard let data = FileManager.default.contents(atPath: recordsURL.path) else {
            throw PipelineError("\(recordsURL.path) is missing though unit \(JobPlan.unitName(result.unit)) is done: remove \(folder.url.path) and run a worker again to redo the unit")
        }
        let bytes = [UInt8](data)
        guard SHA256.hex(SHA256.hash(bytes)) == result.recordsSHA256 else {
            throw PipelineError("\(recordsURL.path) does not have the SHA-256 its done.json records: remove \(folder.url.path) and run a worker again to redo the unit")
        }
        guard FileIdentity.of(imagesURL.path)?.size == Int64(result.imagesBytes) else {
            throw PipelineError("\(imagesURL.path) is missing or not the size its done.json records: remove \(folder.url.path) and run a worker again to redo the unit")
        }
        let images = try TarReader(url: imagesURL, maxMemberSize: Int.max / 2)
        let decoder = JSONDecoder()
        var keys: [Int: String] = [:]
        for line in bytes.split(separator: 0x0A) {
            var record = try decoder.decode(SampleRecord.self, from: Data(line))
            var image: [UInt8]?
            if record.status == .kept {
                guard let member = try images.next(), member.entry.name.hasPrefix("\(record.ordinal).") else {
                    throw PipelineError("\(imagesURL.path) does not hold the image of sample \(record.key) where expected: remove \(folder.url.path) and run a worker again to redo the unit")
                }
                guard SHA256.hex(SHA256.hash(member.data)) == record.imageSHA256 else {
                    throw PipelineError("the image of sample \(record.key) in \(imagesURL.path) does not have the SHA-256 its row records: remove \(folder.url.path) and run a worker again")
                }
                image = member.data
            }
            // The same input key again in the same source (a list cut into several units): failed as within a unit.
            var firstOfSourceKey = false
            if record.reason != Reason.duplicateKey {
                if let first = try scratch.scalar("SELECT key FROM source_keys WHERE source = ? AND source_key = ?",
                                                  [.text(record.source), .text(record.sourceKey)], as: String.self) {
                    record.key = Ingestor.derivedKey(unit: result.unit, position: record.ordinal)
                    Self.drop(&record, .failed, Reason.duplicateKey, "the key \"\(record.sourceKey)\" already appeared in \(record.source) (sample \(first))")
                    image = nil
                } else {
                    firstOfSourceKey = true
                }
            }
            // A key already given to an earlier sample of the run: the derived one, then suffixes.
            var key = record.key
            var suffix = 1
            while try scratch.scalar("SELECT 1 FROM keys WHERE key = ?", [.text(key)], as: Int.self) != nil {
                suffix += 1
                key = Ingestor.derivedKey(unit: result.unit, position: record.ordinal) + (suffix > 2 ? "_\(suffix - 1)" : "")
            }
            try scratch.execute("INSERT INTO keys (key) VALUES (?)", [.text(key)])
            record.key = key
            if firstOfSourceKey {
                try scratch.execute("INSERT INTO source_keys (source, source_key, key) VALUES (?, ?, ?)",
                                    [.text(record.source), .text(record.sourceKey), .text(key)])
            }
            keys[record.ordinal] = key
            var duplicateOf = record.duplicateOf.flatMap { keys[$0] }
            // The same image bytes kept or filtered in an earlier unit: a duplicate, as within a unit.
            if spec.duplicates == .drop, record.duplicateOf == nil, let sha = record.imageSHA256,
               record.status == .kept || record.status == .filtered {
                if let first = try scratch.scalar("SELECT key FROM images WHERE sha256 = ?", [.text(sha)], as: String.self) {
                    Self.drop(&record, .duplicate, Reason.duplicateImage, "same image bytes as sample \(first)")
                    duplicateOf = first
                    image = nil
                } else {
                    try scratch.execute("INSERT INTO images (sha256, key) VALUES (?, ?)", [.text(sha), .text(key)])
                }
            }
            try body(MergedSample(record: record, duplicateOf: duplicateOf), image)
        }
    }

    /// A sample the merge takes out of the dataset, with why.
    static func drop(_ record: inout SampleRecord, _ status: SampleStatus, _ reason: String, _ detail: String) {
        record.status = status
        record.reason = reason
        record.detail = detail
        record.mainCaption = nil
        record.mainCaptionSource = nil
    }

    /// Shard files from an earlier merge with more shards, and temporary files of a killed one: every hidden
    /// name (ours start with "."; so do Foundation's `.dat.nosync*` files of `createFile`) and `*.partial`.
    private func removeStaleShards(keeping count: Int) throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: shardFolder.path)) ?? []
        for name in names {
            let stem = name.hasPrefix(".") ? "" : String(name.prefix { $0.isNumber })
            let stale = name.hasPrefix(".") || name.hasSuffix(".partial") || (Int(stem).map { $0 >= count } ?? false)
            if stale { try? FileManager.default.removeItem(at: shardFolder.appendingPathComponent(name)) }
        }
    }

    // MARK: - Dataset card

    static let datasetCardName = "README.md"
    static let datasetCardMarker = "<!-- written by capfilt merge: rewritten by every merge -->"

    /// `OUT/README.md`, a Hugging Face dataset card whose config makes `load_dataset(OUT)` read the shards (and
    /// nothing else of the folder). The manifests are not a second config: `datasets` picks one builder for
    /// every config of a folder, so a Parquet config beside the tars is read as tars. A README.md that capfilt
    /// did not write is left alone.
    private func writeDatasetCard(totals: Counts, shards: Int) throws {
        let url = outputFolder.appendingPathComponent(Self.datasetCardName)
        if let existing = FileManager.default.contents(atPath: url.path),
           !String(decoding: existing, as: UTF8.self).contains(Self.datasetCardMarker) {
            return
        }
        let kept = totals.statuses["kept", default: 0]
        let card = """
            ---
            configs:
            - config_name: default
              data_files:
              - split: train
                path: shards/*.tar
            ---
            \(Self.datasetCardMarker)

            # CapFilt output

            \(kept) image-text pairs kept of \(totals.rows) input samples (\(totals.statuses["filtered", default: 0]) filtered, \
            \(totals.statuses["failed", default: 0]) failed, \(totals.statuses["duplicate", default: 0]) duplicate) in \(shards) webdataset \
            shards, cleaned with BLIP's CapFilt by capfilt. `load_dataset(path)` reads the shards (KEY.\
            \(spec.output.imageFormat == .original ? "jpg/png/webp as the input had them" : spec.output.imageFormat.rawValue), KEY.txt, KEY.json); \
            `load_dataset("parquet", data_files="PATH/shards/*.parquet")` reads one row per input sample with its status and scores. \
            The run manifest `capfilt_run.json` lists every shard with its SHA-256, the spec and the model hashes.

            """
        try Durable.write(Array(card.utf8), to: url)
    }

    // MARK: - Run manifest

    private func writeRunManifest(_ shards: [ShardAssembler.Written], totals: Counts, unitsDigest: String) throws {
        let manifest: JSON = .object([
            "schema_version": .int(outputSchemaVersion),
            "spec": .string(plan.specYAML),
            "captioner": .object(["model": .string(spec.captioner.model), "sha256": .string(plan.captionerSHA256)]),
            "filter": .object(["model": .string(spec.filter.model), "sha256": .string(plan.filterSHA256)]),
            "units": .int(plan.units.count),
            "units_sha256": .string(unitsDigest),
            "shards": .array(shards.map { s in
                .object([
                    "tar": .string(Self.shardName(s.index) + ".tar"),
                    "manifest": .string(Self.shardName(s.index) + ".jsonl"),
                    "parquet": .string(Self.shardName(s.index) + ".parquet"),
                    "stats": .string(Self.shardName(s.index) + "_stats.json"),
                    "samples": .int(s.kept),
                    "input_samples": .int(s.rows),
                    "bytes": .int(s.tarBytes),
                    "sha256": .string(s.tarSHA256),
                    "manifest_sha256": .string(s.manifestSHA256),
                    "parquet_sha256": .string(s.parquetSHA256),
                    "stats_sha256": .string(s.statsSHA256),
                ])
            }),
            "totals": .object([
                "input_samples": .int(totals.rows),
                "kept": .int(totals.statuses["kept", default: 0]),
                "filtered": .int(totals.statuses["filtered", default: 0]),
                "failed": .int(totals.statuses["failed", default: 0]),
                "duplicate": .int(totals.statuses["duplicate", default: 0]),
            ]),
            "status_dict": .object(totals.reasons.mapValues { .int($0) }),
        ])
        KillPoint.pass("before-run-manifest")
        try Durable.write(Array((manifest.text + "\n").utf8), to: outputFolder.appendingPathComponent(PipelineRun.runManifestName))
        KillPoint.pass("after-run-manifest")
    }

    // MARK: - Verifying written shards

    /// How written shards are checked against the run manifest.
    public enum ShardVerification: Sendable {
        /// Every file present, tar sizes equal; then SHA-256 of every file when the tars total at most
        /// `hashLimit` bytes (a few seconds of hashing), else sizes only.
        case automatic
        /// SHA-256 of every tar, manifest and stats file (`--verify`).
        case full
        /// Files present and tar sizes only.
        case sizes
    }

    /// Up to this many tar bytes, `.automatic` hashes every file.
    public static let hashLimit: Int64 = 1 << 30

    /// A shard whose files are not what the run manifest says.
    public struct ShardProblem: Sendable, Equatable, CustomStringConvertible {
        public var shard: Int
        public var problem: String
        public var description: String { "\(Merge.shardName(shard)): \(problem)" }
    }

    /// The shards the run manifest lists whose files are missing or differ from its sizes and hashes (none when
    /// there is no run manifest yet).
    public static func verifyShards(folder: URL, _ verification: ShardVerification) throws -> [ShardProblem] {
        guard let manifest = try RunManifest.read(folder: folder) else { return [] }
        let shardFolder = folder.appendingPathComponent(PipelineRun.shardFolderName)
        let hash: Bool
        switch verification {
        case .full: hash = true
        case .sizes: hash = false
        case .automatic: hash = manifest.shards.reduce(Int64(0)) { $0 + Int64($1.bytes) } <= hashLimit
        }
        var problems: [ShardProblem] = []
        for (index, s) in manifest.shards.enumerated() {
            let name = shardName(index)
            let files = [(name + ".tar", s.sha256), (name + ".jsonl", s.manifestSHA256), (name + ".parquet", s.parquetSHA256),
                         (name + "_stats.json", s.statsSHA256)]
            var problem: String?
            for (file, sha) in files where problem == nil {
                let url = shardFolder.appendingPathComponent(file)
                guard let identity = FileIdentity.of(url.path) else { problem = "\(file) is missing"; continue }
                if file.hasSuffix(".tar") && identity.size != Int64(s.bytes) {
                    problem = "\(file) has \(identity.size) bytes, the run manifest records \(s.bytes)"
                } else if hash, (try? SHA256.hash(file: url)) != sha {
                    problem = "\(file) does not have the SHA-256 the run manifest records"
                }
            }
            if let problem { problems.append(ShardProblem(shard: index, problem: problem)) }
        }
        return problems
    }
}

/// What the run manifest says, as far as merging and checking need it.
struct RunManifest {
    struct Shard { var bytes: Int; var sha256: String; var manifestSHA256: String; var parquetSHA256: String; var statsSHA256: String }
    var unitsSHA256: String
    var shards: [Shard]

    static func read(folder: URL) throws -> RunManifest? {
        let url = folder.appendingPathComponent(PipelineRun.runManifestName)
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let shards = object["shards"] as? [[String: Any]] else {
            return RunManifest(unitsSHA256: "", shards: [])  // damaged: not up to date, so merged again
        }
        return RunManifest(unitsSHA256: object["units_sha256"] as? String ?? "", shards: shards.map {
            Shard(bytes: $0["bytes"] as? Int ?? -1, sha256: $0["sha256"] as? String ?? "",
                  manifestSHA256: $0["manifest_sha256"] as? String ?? "", parquetSHA256: $0["parquet_sha256"] as? String ?? "",
                  statsSHA256: $0["stats_sha256"] as? String ?? "")
        })
    }
}

/// Counts by status and reason.
struct Counts {
    var rows = 0
    var statuses: [String: Int] = [:]
    var reasons: [String: Int] = [:]
    var webProblems: [String: Int] = [:]
    var webKept = 0, syntheticKept = 0, mainWeb = 0, mainSynthetic = 0

    mutating func add(_ r: SampleRecord) {
        rows += 1
        statuses[r.status.rawValue, default: 0] += 1
        if let reason = r.reason { reasons[reason, default: 0] += 1 }
        if let p = r.webTextProblem { webProblems[p, default: 0] += 1 }
        if r.webScore?.kept == true { webKept += 1 }
        syntheticKept += r.captions.filter { $0.kept == true }.count
        if r.status == .kept { if r.mainCaptionSource == "web" { mainWeb += 1 } else { mainSynthetic += 1 } }
    }
}

/// Packs merged samples into shards as they come: a shard takes `samples_per_shard` kept samples, or fewer when
/// the next would pass `max_shard_bytes`; its manifest has every input row from after the previous shard's to
/// before the kept sample that opens the next shard. Tar, manifest and stats each go to a temporary file and
/// are renamed into place; the stats, last, mean the shard is whole.
struct ShardAssembler {
    struct Written {
        var index: Int; var kept: Int; var rows: Int; var tarBytes: Int
        var tarSHA256: String; var manifestSHA256: String; var parquetSHA256: String; var statsSHA256: String
    }

    let merge: Merge
    let stop: StopFlag
    private(set) var written: [Written] = []
    private var tar: TarWriter?
    private var manifest: FileHandle?
    private var manifestHash = SHA256()
    private var parquet: ShardManifestWriter?
    private let columns: [ManifestColumn]
    /// The columns each `KEY.json` repeats from the input.
    private let inputColumns: [ManifestColumn]
    private var counts = Counts()
    private var bytes = 0
    private var firstKey = "", lastKey = ""

    init(merge: Merge, stop: StopFlag) {
        self.merge = merge
        self.stop = stop
        columns = ManifestColumn.all(additional: merge.spec.output.additionalColumns)
        inputColumns = ManifestColumn.inputColumns(additional: merge.spec.output.additionalColumns)
    }

    private var index: Int { written.count }
    private func url(_ suffix: String) -> URL { merge.shardFolder.appendingPathComponent(Merge.shardName(index) + suffix) }
    private func temp(_ suffix: String) -> URL { merge.shardFolder.appendingPathComponent("." + Merge.shardName(index) + suffix + ".partial") }

    mutating func add(_ sample: Merge.MergedSample, image original: [UInt8]?) throws {
        let r = sample.record
        let image = try original.map { r.status == .kept ? try merge.outputImage(r, $0) : $0 }
        let size = r.status == .kept ? (image?.count ?? 0) + (r.mainCaption?.utf8.count ?? 0) + 1024 : 0
        if r.status == .kept, tar != nil {
            let kept = counts.statuses["kept", default: 0]
            if kept > 0 && (kept >= merge.spec.output.samplesPerShard || bytes + size > merge.spec.output.maxShardBytes) {
                try close()
            }
        }
        if tar == nil { try open() }
        bytes += size
        if r.status == .kept, let image, let tar {
            try tar.add(name: r.key + "." + merge.memberExtension(r), bytes: image)
            try tar.add(name: r.key + ".json", bytes: Array(merge.sampleJSON(r, inputColumns: inputColumns).text.utf8))
            try tar.add(name: r.key + ".txt", bytes: Array((r.mainCaption ?? "").utf8))
        }
        var row = ManifestRow(record: r, duplicateOf: sample.duplicateOf, shard: Merge.shardName(index))
        row.record.source = merge.displayPath(r.source)
        if let parquet {
            let line = Array((parquet.jsonLine(row) + "\n").utf8)
            try manifest?.write(contentsOf: line)
            manifestHash.update(line)
        }
        try parquet?.add(row)
        if counts.rows == 0 { firstKey = r.key }
        lastKey = r.key
        counts.add(r)
    }

    mutating func finish() throws {
        if tar != nil { try close() }
    }

    private mutating func open() throws {
        for suffix in [".tar", ".jsonl"] { try? FileManager.default.removeItem(at: temp(suffix)) }
        // The Parquet writer writes `NNNNN.parquet.partial` and renames it on close.
        try? FileManager.default.removeItem(atPath: url(".parquet").path + ".partial")
        tar = try TarWriter(url: temp(".tar"), mtime: 0)
        manifest = try Durable.create(temp(".jsonl"))
        manifestHash = SHA256()
        parquet = try ShardManifestWriter(parquetPath: url(".parquet").path, columns: columns)
        counts = Counts()
        bytes = 0
    }

    private mutating func close() throws {
        guard let tar, let manifest, var parquet else { return }
        KillPoint.pass("export-tar-written")
        try tar.finish()
        try Durable.rename(temp(".tar"), to: url(".tar"))
        KillPoint.pass("export-tar-renamed")
        let tarSHA = try SHA256.hash(file: url(".tar"))
        try manifest.synchronize()
        try manifest.close()
        try Durable.rename(temp(".jsonl"), to: url(".jsonl"))
        KillPoint.pass("export-manifest-written")
        try parquet.close()
        let parquetSHA = try SHA256.hash(file: url(".parquet"))
        KillPoint.pass("export-parquet-written")
        let stats = Array((stats(tarBytes: Int(tar.bytesWritten), tarSHA256: tarSHA).text + "\n").utf8)
        try Durable.write(stats, to: url("_stats.json"))
        KillPoint.pass("export-stats-written")
        written.append(Written(index: index, kept: counts.statuses["kept", default: 0], rows: counts.rows,
                               tarBytes: Int(tar.bytesWritten), tarSHA256: tarSHA,
                               manifestSHA256: SHA256.hex(manifestHash.finalize()), parquetSHA256: parquetSHA,
                               statsSHA256: SHA256.hex(SHA256.hash(stats))))
        self.tar = nil
        self.manifest = nil
        self.parquet = nil
    }

    private func stats(tarBytes: Int, tarSHA256: String) -> JSON {
        let name = Merge.shardName(index)
        return .object([
            "schema_version": .int(outputSchemaVersion),
            "shard": .string(name),
            "tar": .string(name + ".tar"),
            "manifest": .string(name + ".jsonl"),
            "parquet": .string(name + ".parquet"),
            "tar_bytes": .int(tarBytes),
            "tar_sha256": .string(tarSHA256),
            "first_key": .string(firstKey),
            "last_key": .string(lastKey),
            "count": .int(counts.rows),
            "kept": .int(counts.statuses["kept", default: 0]),
            // img2dataset's name for the samples written to the shard.
            "successes": .int(counts.statuses["kept", default: 0]),
            "filtered": .int(counts.statuses["filtered", default: 0]),
            "failed": .int(counts.statuses["failed", default: 0]),
            "duplicate": .int(counts.statuses["duplicate", default: 0]),
            "status_dict": .object(counts.reasons.mapValues { .int($0) }),
            "web_text_problems": .object(counts.webProblems.mapValues { .int($0) }),
            "web_texts_kept": .int(counts.webKept),
            "synthetic_captions_kept": .int(counts.syntheticKept),
            "main_caption_from_web": .int(counts.mainWeb),
            "main_caption_from_synthetic": .int(counts.mainSynthetic),
        ])
    }
}

// MARK: - Output formats

extension Merge {
    /// The image member's extension: the format's usual one (the bytes are the original ones).
    static func imageExtension(_ record: SampleRecord) -> String {
        switch record.imageFormat {
        case "jpeg": return "jpg"
        case let format?: return format
        case nil: return "img"
        }
    }

    /// The format `output.image_format` asks for this sample's image, or nil to keep its bytes.
    func targetFormat(_ record: SampleRecord) -> ImageFormat? {
        switch spec.output.imageFormat {
        case .original: return nil
        case .jpg: return record.imageFormat == "jpeg" ? nil : .jpeg
        case .webp: return record.imageFormat == "webp" ? nil : .webp
        }
    }

    /// The image member's extension in the shard.
    func memberExtension(_ record: SampleRecord) -> String {
        switch targetFormat(record) {
        case .jpeg?: return "jpg"
        case .webp?: return "webp"
        default: return Self.imageExtension(record)
        }
    }

    /// The image member's bytes: the input's, or re-encoded as `output.image_format` says (decoded as the models
    /// saw it: alpha composited onto white, the first frame of an animation).
    func outputImage(_ record: SampleRecord, _ bytes: [UInt8]) throws -> [UInt8] {
        guard let format = targetFormat(record) else { return bytes }
        do {
            return try ImageEncoder.encode(try ImageDecoder.decodeRGB(bytes, limits: spec.limits.imageLimits), as: format, quality: spec.output.imageQuality)
        } catch {
            throw PipelineError("re-encoding the image of sample \(record.key) as \(spec.output.imageFormat.rawValue) failed (\(error)); it decoded when it was ingested, so the unit's images.tar changed since: remove that unit's folder under units/ and run a worker again")
        }
    }

    /// A path as the user wrote it: relative to the spec's folder when inside it, so outputs do not depend on
    /// where the run folder is checked out.
    func displayPath(_ path: String) -> String {
        let base = spec.baseDirectory.standardizedFileURL.path + "/"
        return path.hasPrefix(base) ? String(path.dropFirst(base.count)) : path
    }

    /// `key.json`: every text with its scores. No nulls and the same fields in every sample, so loaders that
    /// infer a schema from the first samples (Hugging Face datasets) get it right.
    func sampleJSON(_ r: SampleRecord, inputColumns: [ManifestColumn]) -> JSON {
        let web: JSON = .object([
            "text": .string(r.webText ?? ""),
            "problem": .string(r.webTextProblem ?? ""),
            "scored": .bool(r.webScore != nil),
            "itm": .float(r.webScore?.itm ?? 0),
            "itc": .float(r.webScore?.itc ?? 0),
            "kept": .bool(r.webScore?.kept ?? false),
        ])
        let synthetic: JSON = .array(r.captions.map {
            .object(["text": .string($0.text), "itm": .float($0.itm ?? 0), "itc": .float($0.itc ?? 0), "kept": .bool($0.kept ?? false)])
        })
        var object: [String: JSON] = [
            "schema_version": .int(outputSchemaVersion),
            "key": .string(r.key),
            "source": .object(["path": .string(displayPath(r.source)), "position": .string(r.position), "key": .string(r.sourceKey)]),
            "width": .int(r.width ?? 0),
            "height": .int(r.height ?? 0),
            // The member's extension ("jpg", "png", "webp"), as the tar names it.
            "image_format": .string(r.imageFormat == nil ? "" : memberExtension(r)),
            "image_sha256": .string(r.imageSHA256 ?? ""),
            "main_caption": .string(r.mainCaption ?? ""),
            "main_caption_source": .string(r.mainCaptionSource ?? ""),
            "web_text": web,
            "synthetic_captions": synthetic,
        ]
        // img2dataset's fields of the input (as the manifests have them) and the spec's additional columns.
        let row = ManifestRow(record: r, duplicateOf: nil, shard: "")
        for column in inputColumns { object[column.name] = column.value(row).nonNullJSON }
        return .object(object)
    }

}
