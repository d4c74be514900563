// Export: kept samples into webdataset shards of a fixed number of samples (the last shorter) under a byte
// cap. Each shard is written under a temporary name, fsynced and renamed; then its manifest (one line per
// input sample it covers); then its stats, last. The run manifest comes after every shard. A shard recorded
// in the ledger is complete; anything else is rewritten from scratch, with the same bytes.
import CapfiltCorpus
import CapfiltDigest
import CapfiltWebDataset
import Foundation

/// The output formats' version, in every manifest and stats file (schemas in Manifests/).
public let outputSchemaVersion = 1

struct ShardPlan: Equatable {
    var index: Int
    /// Input ordinals the manifest covers: from after the previous shard's last one to this shard's last kept one
    /// (the last shard runs to the end of the input).
    var firstOrdinal: Int
    var lastOrdinal: Int
    var kept: [Int]

    var name: String { Exporter.shardName(index) }
}

/// Writes the shards of a finished run. Needs the spec and the ledger, not the models.
public struct Exporter {
    let spec: PipelineSpec
    let ledger: Ledger
    let outputFolder: URL

    public init(spec: PipelineSpec, ledger: Ledger, outputFolder: URL) {
        self.spec = spec
        self.ledger = ledger
        self.outputFolder = outputFolder
    }

    /// `capfilt export`: checks that the run is finished and its input unchanged, then writes every shard that is
    /// missing or not what the ledger recorded (SHA-256 of every file) and the run manifest. Holds the folder's
    /// lock. Returns false if stopped.
    public static func reexport(runFolder: URL, stop: StopFlag) throws -> Bool {
        _ = try Ledger.open(runFolder: runFolder)  // a clear message when this is no run folder
        let lock = try RunFolderLock(folder: runFolder, purpose: "capfilt export \(runFolder.path)")
        defer { lock.release() }
        let ledger = try Ledger.open(runFolder: runFolder)
        guard let identity = try ledger.identity() else { throw PipelineError("\(runFolder.path) has no recorded run") }
        let spec = try PipelineSpec(yaml: identity.specYAML, path: identity.specPath)
        let pending = try ledger.histogram().filter { $0.stage != SampleStage.done.rawValue }.reduce(0) { $0 + $1.count }
        if pending > 0 {
            throw PipelineError("\(pending) samples of this run are not finished; resume it with `capfilt run \(identity.specPath)` first")
        }
        try InputIdentity.verifyOrRecord(ledger: ledger, spec: spec)
        return try Exporter(spec: spec, ledger: ledger, outputFolder: runFolder).export(stop: stop, verification: .full)
    }

    public static func shardName(_ index: Int) -> String {
        let digits = String(index)
        return digits.count >= 5 ? digits : String(repeating: "0", count: 5 - digits.count) + digits
    }

    var shardFolder: URL { outputFolder.appendingPathComponent(PipelineRun.shardFolderName) }

    /// Shards from the ledger alone: consecutive kept samples, `samples_per_shard` each, a new shard before
    /// one would pass `max_shard_bytes` (image, caption and metadata bytes).
    func plan() throws -> [ShardPlan] {
        var plans: [ShardPlan] = []
        var current = ShardPlan(index: 0, firstOrdinal: 0, lastOrdinal: -1, kept: [])
        var bytes = 0
        var last = -1
        try ledger.forEachSample { record in
            last = record.ordinal
            guard record.status == .kept else { return }
            let size = (record.imageBytes ?? 0) + (record.mainCaption?.utf8.count ?? 0) + 1024
            if !current.kept.isEmpty && (current.kept.count >= spec.output.samplesPerShard || bytes + size > spec.output.maxShardBytes) {
                plans.append(current)
                current = ShardPlan(index: plans.count, firstOrdinal: current.lastOrdinal + 1, lastOrdinal: -1, kept: [])
                bytes = 0
            }
            current.kept.append(record.ordinal)
            current.lastOrdinal = record.ordinal
            bytes += size
        }
        current.lastOrdinal = max(current.lastOrdinal, last)
        if current.lastOrdinal >= current.firstOrdinal { plans.append(current) }
        return plans
    }

    /// Writes every shard that is not recorded, or whose files are not what the ledger recorded (checked as
    /// `verification` says), then the run manifest. A recorded shard is only ever replaced by a rename of its
    /// complete new version, so a failed or killed export loses nothing that was there. Returns false if stopped.
    public func export(stop: StopFlag, verification: ShardVerification = .automatic) throws -> Bool {
        let plans = try plan()
        try FileManager.default.createDirectory(at: shardFolder, withIntermediateDirectories: true)
        let problems = try verifyShards(verification)
        let done = Set(try ledger.shards().map(\.shard)).subtracting(problems.map(\.shard))
        var pending = plans.filter { !done.contains($0.index) }
        if !pending.isEmpty {
            // One pass over the input: the image bytes of kept samples come from where they were read.
            let corpus = try CorpusReader(spec: spec.input, baseDirectory: spec.baseDirectory, maxMemberSize: spec.maxMemberBytes)
            var images: [Int: ([UInt8], String)] = [:]
            var needed = Set(pending.flatMap(\.kept))
            while let plan = pending.first {
                if stop.isSet { return false }
                while images.count < plan.kept.count, let input = try corpus.next() {
                    guard needed.contains(input.ordinal) else { continue }
                    needed.remove(input.ordinal)
                    switch CorpusReader.readImage(input.image, maxBytes: spec.limits.maxImageBytes) {
                    case .success(let image): images[input.ordinal] = image
                    case .failure(let failure):
                        throw PipelineError("sample \(Ingestor.key(input.ordinal)) (\(input.location.source) \(input.location.position)) was read during the run but cannot be read for export: \(failure). Restore the input and run `capfilt export` again.")
                    }
                }
                guard plan.kept.allSatisfy({ images[$0] != nil }) else {
                    throw PipelineError("the input ended before every kept sample of shard \(plan.name) was found: the input changed since the run. Restore it and run `capfilt export` again.")
                }
                try write(plan, images: images)
                for ordinal in plan.kept { images[ordinal] = nil }
                pending.removeFirst()
            }
        }
        try writeRunManifest(plans)
        return true
    }

    /// How recorded shards are checked against the ledger.
    public enum ShardVerification: Sendable {
        /// Every file present, tar sizes equal; then SHA-256 of every file when the tars total at most
        /// `hashLimit` bytes (a few seconds of hashing), else sizes only.
        case automatic
        /// SHA-256 of every tar, manifest and stats file (`--verify`).
        case full
        /// Files present and tar sizes only.
        case sizes
    }

    /// Up to this many recorded tar bytes, `.automatic` hashes every file.
    public static let hashLimit: Int64 = 1 << 30

    /// A recorded shard whose files are not what the ledger says.
    public struct ShardProblem: Sendable, Equatable, CustomStringConvertible {
        public var shard: Int
        public var problem: String
        public var description: String { "\(Exporter.shardName(shard)): \(problem)" }
    }

    /// The recorded shards whose files are missing or differ from the ledger's sizes and hashes.
    public func verifyShards(_ verification: ShardVerification) throws -> [ShardProblem] {
        try Self.verifyShards(ledger: ledger, outputFolder: outputFolder, verification)
    }

    /// The same, for `capfilt status`, which has the ledger but no spec.
    public static func verifyShards(ledger: Ledger, outputFolder: URL, _ verification: ShardVerification) throws -> [ShardProblem] {
        let shardFolder = outputFolder.appendingPathComponent(PipelineRun.shardFolderName)
        let recorded = try ledger.shards()
        let hash: Bool
        switch verification {
        case .full: hash = true
        case .sizes: hash = false
        case .automatic: hash = recorded.reduce(Int64(0)) { $0 + Int64($1.tarBytes) } <= Self.hashLimit
        }
        var problems: [ShardProblem] = []
        for s in recorded {
            let name = Self.shardName(s.shard)
            let files = [(name + ".tar", s.tarSHA256), (name + ".jsonl", s.manifestSHA256), (name + "_stats.json", s.statsSHA256)]
            var problem: String?
            for (file, sha) in files where problem == nil {
                let url = shardFolder.appendingPathComponent(file)
                guard let identity = FileIdentity.of(url.path) else { problem = "\(file) is missing"; continue }
                if file.hasSuffix(".tar") && identity.size != Int64(s.tarBytes) {
                    problem = "\(file) has \(identity.size) bytes, the ledger recorded \(s.tarBytes)"
                } else if hash, (try? SHA256.hash(file: url)) != sha {
                    problem = "\(file) does not have the SHA-256 the ledger recorded"
                }
            }
            if let problem { problems.append(ShardProblem(shard: s.shard, problem: problem)) }
        }
        return problems
    }

    // MARK: - One shard

    private func write(_ plan: ShardPlan, images: [Int: ([UInt8], String)]) throws {
        let records = try ledger.samples(in: plan.firstOrdinal..<(plan.lastOrdinal + 1))
        let byOrdinal = Dictionary(uniqueKeysWithValues: records.map { ($0.ordinal, $0) })

        // 1. The tar, under a temporary name, fsynced, then renamed.
        let tarURL = shardFolder.appendingPathComponent(plan.name + ".tar")
        let tarTemp = shardFolder.appendingPathComponent("." + plan.name + ".tar.partial")
        try? FileManager.default.removeItem(at: tarTemp)
        let writer = try TarWriter(url: tarTemp, mtime: 0)
        for ordinal in plan.kept {
            guard let record = byOrdinal[ordinal], let (bytes, _) = images[ordinal] else { continue }
            guard SHA256.hex(SHA256.hash(bytes)) == record.imageSHA256 else {
                throw PipelineError("the image of sample \(record.key) (\(record.source) \(record.position)) changed since the run read it. Restore the input, or start a new run with --new-run.")
            }
            try writer.add(name: record.key + "." + imageExtension(record), bytes: bytes)
            try writer.add(name: record.key + ".json", bytes: Array(sampleJSON(record).text.utf8))
            try writer.add(name: record.key + ".txt", bytes: Array((record.mainCaption ?? "").utf8))
        }
        KillPoint.pass("export-tar-written")
        try writer.finish()
        try Durable.rename(tarTemp, to: tarURL)
        KillPoint.pass("export-tar-renamed")
        let tarSHA = try SHA256.hash(file: tarURL)
        let tarBytes = Int(writer.bytesWritten)

        // 2. The manifest: one line per input sample of the shard's range.
        let manifest = records.map { manifestRow($0, shard: plan.name).text + "\n" }.joined()
        let manifestURL = shardFolder.appendingPathComponent(plan.name + ".jsonl")
        try Durable.write(Array(manifest.utf8), to: manifestURL)
        KillPoint.pass("export-manifest-written")

        // 3. The stats, last: their presence means the shard is whole.
        let stats = shardStats(records, plan: plan, tarBytes: tarBytes, tarSHA256: tarSHA)
        let statsURL = shardFolder.appendingPathComponent(plan.name + "_stats.json")
        let statsBytes = Array((stats.text + "\n").utf8)
        try Durable.write(statsBytes, to: statsURL)
        KillPoint.pass("export-stats-written")

        try ledger.recordShard(Ledger.ShardRecord(
            shard: plan.index, firstOrdinal: plan.firstOrdinal, lastOrdinal: plan.lastOrdinal, samples: records.count,
            kept: plan.kept.count, tarBytes: tarBytes, tarSHA256: tarSHA,
            manifestSHA256: SHA256.hex(SHA256.hash(Array(manifest.utf8))), statsSHA256: SHA256.hex(SHA256.hash(statsBytes))))
    }

    /// The image member's extension: the format's usual one (the bytes are the original ones).
    func imageExtension(_ record: SampleRecord) -> String {
        switch record.imageFormat {
        case "jpeg": return "jpg"
        case let format?: return format
        case nil: return "img"
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
    func sampleJSON(_ r: SampleRecord) -> JSON {
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
        return .object([
            "schema_version": .int(outputSchemaVersion),
            "key": .string(r.key),
            "source": .object(["path": .string(displayPath(r.source)), "position": .string(r.position), "key": .string(r.sourceKey)]),
            "width": .int(r.width ?? 0),
            "height": .int(r.height ?? 0),
            "image_format": .string(r.imageFormat ?? ""),
            "image_sha256": .string(r.imageSHA256 ?? ""),
            "main_caption": .string(r.mainCaption ?? ""),
            "main_caption_source": .string(r.mainCaptionSource ?? ""),
            "web_text": web,
            "synthetic_captions": synthetic,
        ])
    }

    /// A manifest line. Column names follow img2dataset where the meaning is the same (key, status,
    /// error_message, caption, width, height).
    func manifestRow(_ r: SampleRecord, shard: String) -> JSON {
        func optional(_ s: String?) -> JSON { s.map { .string($0) } ?? .null }
        func optional(_ i: Int?) -> JSON { i.map { .int($0) } ?? .null }
        return .object([
            "key": .string(r.key),
            "status": .string(r.status.rawValue),
            "reason": optional(r.reason),
            "error_message": optional(r.detail),
            "caption": optional(r.webText),
            "web_text_problem": optional(r.webTextProblem),
            "web_text_itm": r.webScore.map { .float($0.itm) } ?? .null,
            "web_text_kept": r.webScore.map { .bool($0.kept) } ?? .null,
            "synthetic_captions": .array(r.captions.map { .string($0.text) }),
            "synthetic_itm": .array(r.captions.map { $0.itm.map { JSON.float($0) } ?? .null }),
            "main_caption": optional(r.mainCaption),
            "width": optional(r.width),
            "height": optional(r.height),
            "image_sha256": optional(r.imageSHA256),
            "duplicate_of": r.duplicateOf.map { .string(Ingestor.key($0)) } ?? .null,
            "source": .string(displayPath(r.source)),
            "position": .string(r.position),
            "source_key": .string(r.sourceKey),
            "shard": .string(shard),
        ])
    }

    func shardStats(_ records: [SampleRecord], plan: ShardPlan, tarBytes: Int, tarSHA256: String) -> JSON {
        var reasons: [String: JSON] = [:]
        var statuses: [String: Int] = [:]
        var webProblems: [String: Int] = [:]
        var webKept = 0, syntheticKept = 0, mainWeb = 0, mainSynthetic = 0
        for r in records {
            statuses[r.status.rawValue, default: 0] += 1
            if let reason = r.reason { reasons[reason] = .int((reasons[reason].flatMap { if case .int(let n) = $0 { n } else { nil } } ?? 0) + 1) }
            if let p = r.webTextProblem { webProblems[p, default: 0] += 1 }
            if r.webScore?.kept == true { webKept += 1 }
            syntheticKept += r.captions.filter { $0.kept == true }.count
            if r.status == .kept { if r.mainCaptionSource == "web" { mainWeb += 1 } else { mainSynthetic += 1 } }
        }
        return .object([
            "schema_version": .int(outputSchemaVersion),
            "shard": .string(plan.name),
            "tar": .string(plan.name + ".tar"),
            "tar_bytes": .int(tarBytes),
            "tar_sha256": .string(tarSHA256),
            "first_key": .string(Ingestor.key(plan.firstOrdinal)),
            "last_key": .string(Ingestor.key(plan.lastOrdinal)),
            "count": .int(records.count),
            "kept": .int(statuses["kept", default: 0]),
            "filtered": .int(statuses["filtered", default: 0]),
            "failed": .int(statuses["failed", default: 0]),
            "duplicate": .int(statuses["duplicate", default: 0]),
            "status_dict": .object(reasons),
            "web_text_problems": .object(webProblems.mapValues { .int($0) }),
            "web_texts_kept": .int(webKept),
            "synthetic_captions_kept": .int(syntheticKept),
            "main_caption_from_web": .int(mainWeb),
            "main_caption_from_synthetic": .int(mainSynthetic),
        ])
    }

    // MARK: - Run manifest

    private func writeRunManifest(_ plans: [ShardPlan]) throws {
        let shards = try ledger.shards()
        guard let identity = try ledger.identity() else { throw PipelineError("the ledger has no run identity") }
        let histogram = try ledger.histogram()
        var totals: [String: Int] = [:]
        var reasons: [String: Int] = [:]
        for h in histogram {
            totals[h.status, default: 0] += h.count
            if let reason = h.reason { reasons[reason, default: 0] += h.count }
        }
        let manifest: JSON = .object([
            "schema_version": .int(outputSchemaVersion),
            "spec": .string(identity.specYAML),
            "captioner": .object(["model": .string(spec.captioner.model), "sha256": .string(identity.captionerSHA256)]),
            "filter": .object(["model": .string(spec.filter.model), "sha256": .string(identity.filterSHA256)]),
            "shards": .array(shards.map { s in
                .object([
                    "tar": .string(Self.shardName(s.shard) + ".tar"),
                    "manifest": .string(Self.shardName(s.shard) + ".jsonl"),
                    "stats": .string(Self.shardName(s.shard) + "_stats.json"),
                    "samples": .int(s.kept),
                    "input_samples": .int(s.samples),
                    "bytes": .int(s.tarBytes),
                    "sha256": .string(s.tarSHA256),
                ])
            }),
            "totals": .object([
                "input_samples": .int(totals.values.reduce(0, +)),
                "kept": .int(totals["kept", default: 0]),
                "filtered": .int(totals["filtered", default: 0]),
                "failed": .int(totals["failed", default: 0]),
                "duplicate": .int(totals["duplicate", default: 0]),
            ]),
            "status_dict": .object(reasons.mapValues { .int($0) }),
        ])
        let bytes = Array((manifest.text + "\n").utf8)
        KillPoint.pass("before-run-manifest")
        try Durable.write(bytes, to: outputFolder.appendingPathComponent(PipelineRun.runManifestName))
        KillPoint.pass("after-run-manifest")
        try ledger.markExportComplete(runManifestSHA256: SHA256.hex(SHA256.hash(bytes)))
    }
}

/// Crash-safe file replacement: write a temporary file, fsync it, rename it over the target, fsync the folder.
enum Durable {
    static func write(_ bytes: [UInt8], to url: URL) throws {
        let temp = url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".partial")
        try? FileManager.default.removeItem(at: temp)
        guard FileManager.default.createFile(atPath: temp.path, contents: nil) else {
            throw PipelineError("cannot create \(temp.path): check that the output folder is writable")
        }
        let handle = try FileHandle(forWritingTo: temp)
        try handle.write(contentsOf: bytes)
        try handle.synchronize()
        try handle.close()
        try rename(temp, to: url)
    }

    static func rename(_ from: URL, to: URL) throws {
        guard Foundation.rename(from.path, to.path) == 0 else {
            throw PipelineError("cannot rename \(from.path) to \(to.path) (errno \(errno)): check the output folder")
        }
        let dir = open(to.deletingLastPathComponent().path, O_RDONLY)
        if dir >= 0 { fsync(dir); close(dir) }
    }
}
