// A worker of a CapFilt job: `capfilt run SPEC [--worker I --workers N]`. Workers share the output folder; each
// claims units of work with leases (UnitLease.swift), runs them (UnitRun.swift) and, when no unit is left, the
// last one to finish merges the dataset (Merge.swift). A worker killed at any instant and started again with the
// same index resumes its unit from the last committed batch; one that died or stalled loses its unit to
// another worker when its lease expires. The dataset does not depend on how many workers ran, or in which order.
import CapfiltBLIP
import CapfiltCorpus
import CapfiltTensor
import Foundation

/// Set from a signal handler; checked between transactions.
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    public init() {}
    public var isSet: Bool { lock.lock(); defer { lock.unlock() }; return stopped }
    public func set() { lock.lock(); stopped = true; lock.unlock() }
}

/// A value shared between the reader and model threads.
final class Locked<Value>: @unchecked Sendable {
    private var stored: Value
    private let lock = NSLock()
    init(_ value: Value) { stored = value }
    var value: Value { lock.lock(); defer { lock.unlock() }; return stored }
    /// Mutates under the lock and returns the new value.
    @discardableResult
    func update(_ body: (inout Value) -> Void) -> Value {
        lock.lock(); defer { lock.unlock() }
        body(&stored)
        return stored
    }
}

public enum RunOutcome: Sendable, Equatable {
    case completed
    case interrupted
    /// Units whose input could not be read through (a `pipe:` command failed); every other unit this worker could
    /// claim is done, nothing is merged, and running again retries them, keeping their committed samples.
    case unitsFailed([UnitInputFailed])
}

public struct PipelineError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public final class PipelineRun: @unchecked Sendable {
    public let spec: PipelineSpec
    public let outputFolder: URL
    public let plan: JobPlan
    public let worker: Int
    public let workers: Int
    let leaseSeconds: Double
    let models: Models
    let holder: LeaseHolder
    /// The input's sources, resolved once; each unit opens its own source from it.
    let corpus: CorpusReader
    /// An earlier run's captions and scores that stand in for model work (a re-filter), if any.
    let stored: StoredScores?
    /// Units in this worker's claim order (its share first), the next one to look at, and whether this
    /// worker's own unfinished attempts were looked for yet.
    private let claimOrder: [Int]
    private var cursor = 0
    private var resumeChecked = false
    /// Held for the worker's lifetime: one process per worker index (on this host; a scheduler runs one task
    /// per index across hosts).
    let workerLock: RunFolderLock
    var log: (String) -> Void

    /// Files capfilt owns in an output folder (a new run removes exactly these).
    public static let shardFolderName = "shards"
    /// An earlier run of this folder whose spec differed only in decisions: its plan and units, kept as the store
    /// of captions and scores until the new job's merge is done.
    public static let storedRunName = "stored-run"
    public static let unitsFolderName = "units"
    public static let workersFolderName = "workers"
    public static let runManifestName = "capfilt_run.json"
    /// `capfilt report`'s folder: a new run or a re-filter removes it, since it describes the old dataset.
    public static let reportFolderName = "report"
    static let ownedNames = [JobPlan.fileName, unitsFolderName, workersFolderName, shardFolderName, runManifestName, storedRunName, reportFolderName,
                             Merge.lockName, Merge.scratchName, "capfilt.sqlite", "capfilt.sqlite-wal", "capfilt.sqlite-shm"]
    /// Removed by a new run only when capfilt wrote it (the dataset card).
    static let ownedIfMarked = [Merge.datasetCardName]

    /// Opens or joins the job in `spec.output.folder` as worker `worker` of `workers`. A job with another spec or
    /// other weights is refused unless `newRun` (one worker only), which discards it; so is an input that changed
    /// since the job was planned. `stop` is checked between the slow steps (hashing, loading).
    public init(spec: PipelineSpec, specYAML: String, specPath: String, newRun: Bool, worker: Int = 0, workers: Int = 1,
                leaseSeconds: Double? = nil, reuseFrom: URL? = nil, stop: StopFlag = StopFlag(),
                log: @escaping (String) -> Void = { _ in }) throws {
        guard workers >= 1, (0..<workers).contains(worker) else {
            throw PipelineError("worker \(worker) of \(workers) does not exist: workers are numbered 0 to \(max(workers - 1, 0))")
        }
        self.spec = spec
        self.log = log
        self.worker = worker
        self.workers = workers
        self.leaseSeconds = leaseSeconds ?? spec.job.leaseSeconds
        outputFolder = spec.resolve(spec.output.folder)
        let fm = FileManager.default
        try OutputFolder.create(outputFolder)
        let workersFolder = outputFolder.appendingPathComponent(Self.workersFolderName)
        try fm.createDirectory(at: workersFolder, withIntermediateDirectories: true)
        do {
            workerLock = try RunFolderLock(folder: workersFolder, name: "\(worker).lock", purpose: "capfilt run \(specPath) --worker \(worker)")
        } catch let busy as RunFolderLock.Busy {
            throw PipelineError("worker \(worker) of \(outputFolder.path) is already running on this host\(busy.holder.map { " (\($0))" } ?? ""). Each worker index runs once: give this one another --worker, or wait for the other to finish (`capfilt status \(outputFolder.path)`).")
        }
        if newRun {
            guard workers == 1 else {
                throw PipelineError("--new-run discards the whole job, so it runs as one worker: start it with --workers 1 (or remove \(outputFolder.path) by hand), then start the other workers without --new-run")
            }
            try Self.clearJob(outputFolder, worker: worker, purpose: "capfilt run --new-run", storing: false)
        }
        holder = LeaseHolder.current(worker: worker, workers: workers)

        let captionFolder = try Self.naming("captioner.model") { try ModelFolder(url: spec.resolve(spec.captioner.model)) }
        let filterFolder = try Self.naming("filter.model") { try ModelFolder(url: spec.resolve(spec.filter.model)) }
        log("hashing model weights")
        let identity = Ledger.RunIdentity(specFingerprint: spec.fingerprint, specYAML: specYAML,
                                          specPath: URL(fileURLWithPath: specPath).standardizedFileURL.path,
                                          captionerSHA256: try captionFolder.weightsDigest(),
                                          filterSHA256: try filterFolder.weightsDigest())
        // A spec that changes only decisions on a finished (or part-finished) job: its units become the store of
        // captions and scores, and the job starts over without model work for what they hold.
        if !newRun, let existing = try JobPlan.read(folder: outputFolder), existing.specFingerprint != identity.specFingerprint
            || existing.captionerSHA256 != identity.captionerSHA256 || existing.filterSHA256 != identity.filterSHA256 {
            let old = try PipelineSpec(yaml: existing.specYAML, path: existing.specPath)
            let changed = spec.changedFields(from: old)
            let forcing = changed.filter { !PipelineSpec.decisionFields.contains($0) }
                + (existing.captionerSHA256 != identity.captionerSHA256 ? ["the captioner weights"] : [])
                + (existing.filterSHA256 != identity.filterSHA256 ? ["the filter weights"] : [])
            guard forcing.isEmpty else {
                throw PipelineError("\(outputFolder.path) holds a run made with other settings: \(forcing.joined(separator: ", ")) changed, and that changes captions or scores, so the models must run again. Pass --new-run to discard that run and start over, choose another output folder, or restore the original.\(changed.count > forcing.count ? " (Changes of \(changed.filter { PipelineSpec.decisionFields.contains($0) }.joined(separator: ", ")) alone would re-use the stored scores.)" : "")")
            }
            guard workers == 1 else {
                throw PipelineError("the spec changes only \(changed.joined(separator: ", ")): the job is re-decided from its stored captions and scores, which one worker starts. Run it with --workers 1 (it needs no model work), then other workers may join.")
            }
            log("the spec changes only \(changed.joined(separator: ", ")): re-deciding from the stored captions and scores, no model work for them")
            try Self.clearJob(outputFolder, worker: worker, purpose: "capfilt run (re-filter)", storing: true)
        }
        plan = try JobPlan.createOrVerify(folder: outputFolder, spec: spec, identity: identity, log: log)
        // Where stored captions and scores come from: this folder's earlier run, or the folder given.
        let storeFolder = reuseFrom ?? outputFolder.appendingPathComponent(Self.storedRunName)
        let (store, why) = StoredScores.open(folder: storeFolder, spec: spec, plan: plan)
        if let why, reuseFrom != nil { log("not re-using \(storeFolder.path): \(why); the models do the work") }
        if let store { log("re-using the captions and scores of \(store.folder.path)") }
        stored = store
        corpus = try CorpusReader(spec: spec.input, baseDirectory: spec.baseDirectory, maxMemberSize: spec.maxMemberBytes)
        guard corpus.sourceCount == plan.sources.count else {
            throw PipelineError("the input now has \(corpus.sourceCount) sources, the job was planned with \(plan.sources.count). Restore the input, or start over with --new-run.")
        }
        // This worker's unfinished units: their image and sidecar files must be as their ledgers recorded them.
        for u in plan.units.indices {
            let unit = UnitFolder(runFolder: outputFolder, unit: u)
            guard let attempt = unit.latestAttempt(), unit.holder(attempt)?.worker == worker,
                  fm.fileExists(atPath: unit.ledgerURL(attempt).path), !fm.fileExists(atPath: unit.resultURL.path) else { continue }
            try InputIdentity.verifyFiles(of: try Ledger(path: unit.ledgerURL(attempt).path))
        }
        let count = plan.units.count
        claimOrder = stride(from: worker, to: count, by: workers).map { $0 } + (0..<count).filter { $0 % workers != worker }
        KillPoint.pass("before-model-load")
        if stop.isSet { throw CancellationError() }
        log("loading models")
        models = try Models(captionFolder: captionFolder, filterFolder: filterFolder, spec: spec, stop: stop)
    }

    /// Releases the worker index for another process. The object must not run again.
    public func close() {
        workerLock.release()
    }

    /// Runs `body`, turning a model error into one that names the spec field to fix (not a command-line flag).
    static func naming<T>(_ setting: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as BLIPError {
            throw PipelineError(error.description(modelSetting: "\(setting) in the spec"))
        }
    }

    /// Claims and runs units until none is left, then merges if every unit is done and no one else is merging.
    /// `wait`: while other workers hold the last units, wait for them (taking over any whose lease expires)
    /// rather than return. Returns `.interrupted` if `stop` was set.
    public func run(stop: StopFlag, verification: Merge.ShardVerification = .automatic, wait: Bool = true,
                    progress: @escaping (RunProgress) -> Void = { _ in }) throws -> RunOutcome {
        let keeper = LeaseKeeper(leaseSeconds: leaseSeconds)
        defer { keeper.stop() }
        let counters = Locked(RunProgress())
        counters.update { $0.unitCount = plan.units.count }
        var done = Set<Int>()
        /// Units this process gave up, with the attempt given up (never claimed again by this process; another
        /// worker may take them over).
        var failed: [Int: UnitInputFailed] = [:]
        var failedAttempts: [Int: Int] = [:]
        var waiting = false
        while true {
            if stop.isSet { return .interrupted }
            guard let (unit, attempt) = try claimNext(done: &done, skipping: failed) else {
                // A unit given up here may have been taken over and finished by another worker since.
                var given: [UnitInputFailed] = []
                for (u, failure) in failed where !done.contains(u) {
                    let folder = UnitFolder(runFolder: outputFolder, unit: u)
                    if case .done = UnitState.of(folder, leaseSeconds: leaseSeconds) { done.insert(u) }
                    else if folder.latestAttempt() == failedAttempts[u] { given.append(failure) }
                }
                counters.update { $0.unitsDone = done.count }
                if done.count == plan.units.count { break }
                if !given.isEmpty && (done.count + given.count == plan.units.count || !wait) {
                    return .unitsFailed(given.sorted { $0.unit < $1.unit })
                }
                if !wait {
                    log("no unit left to claim; \(plan.units.count - done.count) are held by other workers, which merge when they finish")
                    return .completed
                }
                if !waiting { log("waiting for \(plan.units.count - done.count) units held by other workers") }
                waiting = true
                Thread.sleep(forTimeInterval: min(max(leaseSeconds / 4, 0.05), 2))
                continue
            }
            waiting = false
            let folder = UnitFolder(runFolder: outputFolder, unit: unit)
            keeper.hold(folder, attempt: attempt)
            defer { keeper.release() }
            counters.update { $0.unit = unit; $0.unitsDone = done.count }
            // A retry of an attempt given up earlier: its failure note is history now.
            unlink(folder.failureURL(attempt).path)
            do {
                let work = try UnitWork(spec: spec, plan: plan, corpus: corpus, unit: unit, attempt: attempt, folder: folder,
                                        models: models, holder: holder, stored: stored?.unit(unit))
                guard try work.run(stop: stop, counters: counters, progress: progress) else { return .interrupted }
                done.insert(unit)
                counters.update { $0.unitsFinished += 1; $0.unitsDone = done.count }
            } catch let lost as LeaseLost {
                log("\(lost); moving on")
            } catch let failure as UnitInputFailed {
                // The batches committed before the failure stay in the unit's ledger; the lease is no
                // longer renewed, so another worker may retry the unit once it expires.
                failed[unit] = failure
                failedAttempts[unit] = attempt
                log("\(failure). Going on with the other units; run again to retry this one")
                try? Durable.write(Array((failure.reason + "\n").utf8), to: folder.failureURL(attempt), unique: true)
            }
        }
        progress(counters.update { $0.stage = "merge"; $0.unit = nil })
        guard let lock = try RunFolderLock.take(folder: outputFolder, name: Merge.lockName, purpose: "capfilt run --worker \(worker)") else {
            log("every unit is done; another process is merging")
            return .completed
        }
        defer { lock.release() }
        let progressNow = counters.value
        if stored != nil {
            log("re-used stored captions and scores for \(progressNow.reused) samples; the models captioned \(progressNow.captioned)")
        }
        guard try Merge(spec: spec, plan: plan, outputFolder: outputFolder).merge(stop: stop, verification: verification, log: log) else {
            return .interrupted
        }
        // The dataset is whole: the earlier run this folder kept as a store is no longer needed.
        try? FileManager.default.removeItem(at: outputFolder.appendingPathComponent(Self.storedRunName))
        return .completed
    }

    /// Empties the job in `folder` (its plan, units, shards, manifest, the dataset card capfilt wrote) under the
    /// locks of every other worker of this host and of the merge. `storing`: the plan and units are moved to
    /// `stored-run/` instead, as the store of a re-filter (an existing store is kept: it is the older, whole run).
    static func clearJob(_ folder: URL, worker: Int, purpose: String, storing: Bool) throws {
        let fm = FileManager.default
        let workersFolder = folder.appendingPathComponent(workersFolderName)
        let what = storing ? "the job is re-decided" : "--new-run discards the job"
        // Nothing is removed while another worker of this host runs or a merge is going.
        var held: [RunFolderLock] = []
        for name in (try? fm.contentsOfDirectory(atPath: workersFolder.path)) ?? [] where name.hasSuffix(".lock") && name != "\(worker).lock" {
            guard let lock = try RunFolderLock.take(folder: workersFolder, name: name, purpose: purpose) else {
                throw PipelineError("worker \(name.dropLast(5)) of \(folder.path) is running; stop every worker before \(what)")
            }
            held.append(lock)
        }
        guard let lock = try RunFolderLock.take(folder: folder, name: Merge.lockName, purpose: purpose) else {
            throw PipelineError("another capfilt process is merging \(folder.path); wait for it before \(what)")
        }
        defer {
            lock.release()
            held.forEach { $0.release() }
        }
        // The outputs go first (a re-filter writes them again), then, when storing, the units and last the plan:
        // a store with a plan is whole, and a kill at any point leaves a folder the next start finishes.
        var keep: Set<String> = [Merge.lockName, workersFolderName]
        if storing { keep.formUnion([storedRunName, unitsFolderName, JobPlan.fileName]) }
        for name in ownedNames where !keep.contains(name) {
            try? fm.removeItem(at: folder.appendingPathComponent(name))
        }
        for name in ownedIfMarked {
            let url = folder.appendingPathComponent(name)
            if let bytes = fm.contents(atPath: url.path), String(decoding: bytes, as: UTF8.self).contains(Merge.datasetCardMarker) {
                try? fm.removeItem(at: url)
            }
        }
        guard storing else { return }
        KillPoint.pass("refilter-outputs-removed")
        let store = folder.appendingPathComponent(storedRunName)
        if !fm.fileExists(atPath: store.appendingPathComponent(JobPlan.fileName).path) {
            try fm.createDirectory(at: store, withIntermediateDirectories: true)
            let units = folder.appendingPathComponent(unitsFolderName)
            if fm.fileExists(atPath: units.path) {
                try? fm.removeItem(at: store.appendingPathComponent(unitsFolderName))
                try fm.moveItem(at: units, to: store.appendingPathComponent(unitsFolderName))
            }
            KillPoint.pass("refilter-units-stored")
            try fm.moveItem(at: folder.appendingPathComponent(JobPlan.fileName), to: store.appendingPathComponent(JobPlan.fileName))
            Durable.syncFolder(store)
            Durable.syncFolder(folder)
        } else {
            // A store from an earlier re-filter that was interrupted: it is the whole run; this job's partial
            // units are redone from it.
            try? fm.removeItem(at: folder.appendingPathComponent(unitsFolderName))
            try? fm.removeItem(at: folder.appendingPathComponent(JobPlan.fileName))
        }
    }

    /// The next unit to work on, claimed: this worker's own unfinished attempt (a re-run resumes it), else a
    /// unit no one has started (this worker's share first: units ≡ worker mod workers), else one whose lease
    /// expired (a new attempt). nil when every unit is done or held by a live worker. Each unit is looked at
    /// about once while units are left to start, so claiming costs O(units) over the whole job.
    func claimNext(done: inout Set<Int>, skipping failed: [Int: UnitInputFailed] = [:]) throws -> (unit: Int, attempt: Int)? {
        if !resumeChecked {
            resumeChecked = true
            for unit in claimOrder {
                let folder = UnitFolder(runFolder: outputFolder, unit: unit)
                switch UnitState.of(folder, leaseSeconds: leaseSeconds) {
                case .done: done.insert(unit)
                case .held(let attempt, let holder?, _, let isStale) where isOwn(holder, stale: isStale):
                    try folder.reclaim(attempt, holder: self.holder)
                    log("resuming unit \(JobPlan.unitName(unit)) (attempt \(attempt))")
                    return (unit, attempt)
                default: break
                }
            }
        }
        while cursor < claimOrder.count {
            let unit = claimOrder[cursor]
            cursor += 1
            guard !done.contains(unit) else { continue }
            let folder = UnitFolder(runFolder: outputFolder, unit: unit)
            switch UnitState.of(folder, leaseSeconds: leaseSeconds) {
            case .done: done.insert(unit)
            case .pending: if try folder.claim(1, holder: holder) { return (unit, 1) }
            case .held: break  // looked at again below once nothing is left to start
            }
        }
        for unit in claimOrder where !done.contains(unit) && failed[unit] == nil {
            let folder = UnitFolder(runFolder: outputFolder, unit: unit)
            switch UnitState.of(folder, leaseSeconds: leaseSeconds) {
            case .done: done.insert(unit)
            case .pending: if try folder.claim(1, holder: holder) { return (unit, 1) }
            case .held(let attempt, let holder, _, let isStale) where isStale || holder.map({ isOwn($0, stale: false) }) == true:
                if let holder, isOwn(holder, stale: isStale) {
                    // Our own earlier process's attempt (it died after this one started): resume it.
                    try folder.reclaim(attempt, holder: self.holder)
                    log("resuming unit \(JobPlan.unitName(unit)) (attempt \(attempt))")
                    return (unit, attempt)
                }
                if try folder.claim(attempt + 1, holder: self.holder) {
                    log("taking over unit \(JobPlan.unitName(unit)) whose holder died or stalled (attempt \(attempt + 1))")
                    return (unit, attempt + 1)
                }
            case .held: break
            }
        }
        return nil
    }

    /// Whether an attempt is this worker's to resume: its index's, and its holder gone (or this very process,
    /// whose earlier run of the job ended: one process runs one worker index at a time).
    private func isOwn(_ holder: LeaseHolder, stale: Bool) -> Bool {
        holder.worker == worker && (stale || (holder.pid == getpid() && holder.host == self.holder.host))
    }
}
