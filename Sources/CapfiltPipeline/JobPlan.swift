// The job plan: what a run folder's job is, written once by the first worker and read by every other one. It
// fixes the run's identity (spec, weights) and its units of work: one per webdataset shard, one per block of
// `input.block_size` samples of a list file or image folder. A unit is named by its index in this plan, and a
// sample by (unit, position in the unit); nothing else (which worker, in which order) decides an output.
//
// `OUTPUT/capfilt_job.json` is created with link(2), which fails if the name exists, so when workers start
// together exactly one plan wins and the others read it; on a shared file system this is the one operation
// NFS makes atomic across hosts.
import CapfiltCorpus
import CapfiltDigest
import Foundation

public struct JobPlan: Codable, Sendable, Equatable {
    public static let fileName = "capfilt_job.json"
    public static let formatVersion = 1

    /// One input source as the plan found it (the input must still be so when a worker reads it).
    public struct Source: Codable, Sendable, Equatable {
        public var display: String
        public var path: String
        public var size: Int64
        public var mtimeNanoseconds: Int64
        /// SHA-256 of list files (their lines are the samples); nil for shards and folders.
        public var sha256: String?

        enum CodingKeys: String, CodingKey { case display, path, size, mtimeNanoseconds = "mtime_ns", sha256 }
    }

    /// One unit of work: samples [first, first + count) of source `source` (count nil: the whole source).
    public struct Unit: Codable, Sendable, Equatable {
        public var source: Int
        public var first: Int
        public var count: Int?
    }

    public var formatVersion = JobPlan.formatVersion
    public var specFingerprint: String
    public var specYAML: String
    public var specPath: String
    public var captionerSHA256: String
    public var filterSHA256: String
    public var blockSize: Int
    public var sources: [Source]
    public var units: [Unit]

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", specFingerprint = "spec_fingerprint", specYAML = "spec_yaml"
        case specPath = "spec_path", captionerSHA256 = "captioner_sha256", filterSHA256 = "filter_sha256"
        case blockSize = "block_size", sources, units
    }

    public var identity: Ledger.RunIdentity {
        Ledger.RunIdentity(specFingerprint: specFingerprint, specYAML: specYAML, specPath: specPath,
                           captionerSHA256: captionerSHA256, filterSHA256: filterSHA256)
    }

    /// A unit's folder name: its index, zero-padded to 5 digits.
    public static func unitName(_ unit: Int) -> String { pad(unit, 5) }

    static func pad(_ n: Int, _ width: Int) -> String {
        let digits = String(n)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    // MARK: - Making the plan

    /// Plans the job: sources as they are now, and their units (list files and folders are read through once to
    /// count their samples; shards are one unit each, unread; Parquet files are split by their footers' row
    /// groups).
    static func make(spec: PipelineSpec, identity: Ledger.RunIdentity) throws -> JobPlan {
        let corpus = try CorpusReader(spec: spec.input, baseDirectory: spec.baseDirectory, maxMemberSize: spec.maxMemberBytes)
        let sources = try InputIdentity.currentSources(corpus, kind: spec.input.kind)
        var units: [Unit] = []
        for index in sources.indices {
            if spec.input.kind == .webdataset {
                units.append(Unit(source: index, first: 0, count: nil))
                continue
            }
            if let groups = corpus.parquetRowGroups(ofSource: index), groups.reduce(0, +) > 0 {
                // Parquet: runs of whole row groups of about block_size rows, so a unit never decodes a row group
                // it does not own.
                var first = 0, count = 0
                for rows in groups {
                    if count > 0 && count + rows > spec.blockSize {
                        units.append(Unit(source: index, first: first, count: count))
                        first += count
                        count = 0
                    }
                    count += rows
                }
                units.append(Unit(source: index, first: first, count: count))
                continue
            }
            let total = corpus.openSource(index).skip(Int.max)
            if total == 0 && spec.input.kind == .folder {
                throw CorpusError(.noInputFiles, path: sources[index].display, detail: "the folder tree holds no "
                    + "images (\(spec.input.imageExtensions.map { "." + $0 }.joined(separator: ", ")))"
                    + FolderContents.hint(sources[index].path))
            }
            var first = 0
            repeat {
                units.append(Unit(source: index, first: first, count: min(spec.blockSize, total - first)))
                first += spec.blockSize
            } while first < total
        }
        return JobPlan(specFingerprint: identity.specFingerprint, specYAML: identity.specYAML, specPath: identity.specPath,
                       captionerSHA256: identity.captionerSHA256, filterSHA256: identity.filterSHA256,
                       blockSize: spec.blockSize, sources: sources, units: units)
    }

    /// The folder's plan: read and checked against this spec, weights and input if there is one, else made
    /// and created (if another worker creates it first, theirs is read and checked).
    static func createOrVerify(folder: URL, spec: PipelineSpec, identity: Ledger.RunIdentity,
                               log: (String) -> Void) throws -> JobPlan {
        let url = folder.appendingPathComponent(fileName)
        if let existing = try read(folder: folder) {
            try existing.check(identity: identity, folder: folder)
            try InputIdentity.compare(recorded: existing.sources, current: try currentSources(spec))
            return existing
        }
        log("planning the job's units of work")
        let plan = try make(spec: spec, identity: identity)
        let temp = folder.appendingPathComponent(".\(fileName).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).partial")
        try Durable.writeFile(try plan.encoded(), to: temp)
        defer { unlink(temp.path) }
        if link(temp.path, url.path) != 0 {
            guard errno == EEXIST, let theirs = try read(folder: folder) else {
                throw PipelineError("cannot create \(url.path) (\(String(cString: strerror(errno)))): check that the output folder is writable")
            }
            try theirs.check(identity: identity, folder: folder)
            return theirs
        }
        Durable.syncFolder(folder)
        return plan
    }

    static func currentSources(_ spec: PipelineSpec) throws -> [Source] {
        let corpus = try CorpusReader(spec: spec.input, baseDirectory: spec.baseDirectory, maxMemberSize: spec.maxMemberBytes)
        return try InputIdentity.currentSources(corpus, kind: spec.input.kind)
    }

    /// The plan in `folder`, or nil when there is none.
    public static func read(folder: URL) throws -> JobPlan? {
        let url = folder.appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent("capfilt.sqlite").path) {
                throw PipelineError("\(folder.path) holds a run made by an older capfilt (one global ledger, capfilt.sqlite). This version splits a job into units of work and cannot resume it: finish it with the older capfilt, or pass --new-run to discard it and start over.")
            }
            return nil
        }
        do {
            let plan = try JSONDecoder().decode(JobPlan.self, from: data)
            guard plan.formatVersion == formatVersion else {
                throw PipelineError("\(url.path) has format version \(plan.formatVersion); this capfilt reads version \(formatVersion). Use the capfilt that made the run, or --new-run.")
            }
            return plan
        } catch let error as PipelineError {
            throw error
        } catch {
            throw PipelineError("\(url.path) is damaged (\(error)). It is written once, atomically, so something else changed it: restore it, or start over with --new-run.")
        }
    }

    /// The folder's plan, or an error saying this is no capfilt run folder.
    public static func open(folder: URL) throws -> JobPlan {
        guard let plan = try read(folder: folder) else {
            throw PipelineError("\(folder.path) is not a capfilt run folder (no \(fileName)). Give the output folder of a `capfilt run`.")
        }
        return plan
    }

    func check(identity: Ledger.RunIdentity, folder: URL) throws {
        var changed: [String] = []
        if specFingerprint != identity.specFingerprint { changed.append("the spec") }
        if captionerSHA256 != identity.captionerSHA256 { changed.append("the captioner weights") }
        if filterSHA256 != identity.filterSHA256 { changed.append("the filter weights") }
        if !changed.isEmpty {
            throw PipelineError("\(folder.path) holds a run made with other settings (\(changed.joined(separator: " and ")) changed). Resuming would mix outputs. Restore the original, choose another output folder, or pass --new-run to discard that run and start over.")
        }
    }

    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return Array(try encoder.encode(self)) + [0x0A]
    }

    /// The samples of unit `u`, numbered from 0 within the unit, from the worker's reader of the input.
    func openUnit(_ u: Int, corpus: CorpusReader) -> UnitReader {
        let unit = units[u]
        let stream = corpus.openSource(unit.source)
        stream.skip(unit.first)
        return UnitReader(unit: u, stream: stream, remaining: unit.count)
    }
}

/// A unit's input could not be read through for a reason a retry may fix (a `pipe:` command that failed): the
/// unit is left unfinished, its committed samples kept, and the worker goes on with other units.
public struct UnitInputFailed: Error, Sendable, Equatable, CustomStringConvertible {
    public let unit: Int
    /// The source as the spec names it.
    public let source: String
    /// What happened and what to do.
    public let reason: String
    public var description: String { "unit \(JobPlan.unitName(unit)) failed: \(reason)" }
}

/// The samples of one unit, in order, numbered from 0.
final class UnitReader {
    private let unit: Int
    private let stream: SourceStream
    private var remaining: Int?
    private var position = 0

    init(unit: Int, stream: SourceStream, remaining: Int?) {
        self.unit = unit
        self.stream = stream
        self.remaining = remaining
    }

    /// The next sample with its position in the unit. Throws ``UnitInputFailed`` when the source failed before
    /// its end (every sample before the failure has been returned).
    func next() throws -> (position: Int, sample: InputSample)? {
        if let r = remaining, r <= 0 { return nil }
        guard let sample = stream.next() else {
            if let failure = stream.failure {
                throw UnitInputFailed(unit: unit, source: failure.source, reason: failure.description)
            }
            return nil
        }
        remaining = remaining.map { $0 - 1 }
        defer { position += 1 }
        return (position, sample)
    }
}
