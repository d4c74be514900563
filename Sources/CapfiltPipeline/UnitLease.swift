// Leases on units of work, as files in the unit's folder on the shared file system:
//
//   units/00042/lease.1     attempt 1, created with O_CREAT|O_EXCL by the worker that claimed it
//   units/00042/lease.2     attempt 2: a take-over after lease.1 expired
//   units/00042/done.json   the unit's result (written last, by rename)
//
// Claiming is exclusive creation, atomic on local file systems and on NFS v3+. The holder renews its lease by
// touching the file every quarter of the lease time; a lease whose file was not touched for the lease time (or
// whose holder is a dead process on this host) is stale, and another worker takes the unit over by creating the
// next attempt's file. The stale holder, should it wake up, sees the newer lease before its next commit and
// lets the unit go. Each attempt has its own ledger file, so two holders never write one SQLite file.
import Foundation

/// Who holds a lease: written into the lease file when it is claimed.
public struct LeaseHolder: Codable, Sendable, Equatable {
    public var worker: Int
    public var workers: Int
    public var host: String
    public var pid: Int32
    /// Seconds since 1970 when the lease was claimed.
    public var claimed: Double

    static func current(worker: Int, workers: Int) -> LeaseHolder {
        LeaseHolder(worker: worker, workers: workers, host: ProcessInfo.processInfo.hostName,
                    pid: getpid(), claimed: Date().timeIntervalSince1970)
    }

    /// Whether this holder is a process of this host that no longer exists.
    var isDeadHere: Bool {
        host == ProcessInfo.processInfo.hostName && pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
    }
}

/// The holder of a unit's newest lease lost it to a take-over (or its file vanished): the unit is no longer ours.
struct LeaseLost: Error, CustomStringConvertible {
    let unit: Int
    let attempt: Int
    var description: String { "unit \(JobPlan.unitName(unit)) attempt \(attempt) was taken over by another worker" }
}

/// One unit's folder and the state its files give.
struct UnitFolder {
    let unit: Int
    let url: URL

    init(runFolder: URL, unit: Int) {
        self.unit = unit
        url = runFolder.appendingPathComponent("units").appendingPathComponent(JobPlan.unitName(unit))
    }

    func leaseURL(_ attempt: Int) -> URL { url.appendingPathComponent("lease.\(attempt)") }
    func ledgerURL(_ attempt: Int) -> URL { url.appendingPathComponent("ledger.\(attempt).sqlite") }
    func recordsURL(_ attempt: Int) -> URL { url.appendingPathComponent("records.\(attempt).jsonl") }
    func imagesURL(_ attempt: Int) -> URL { url.appendingPathComponent("images.\(attempt).tar") }
    var resultURL: URL { url.appendingPathComponent(UnitResult.fileName) }
    /// Why attempt `attempt` was given up (its input failed), written by the worker that gave it up.
    func failureURL(_ attempt: Int) -> URL { url.appendingPathComponent("failed.\(attempt).txt") }

    /// The reason attempt `attempt` was given up, if it was.
    func failure(_ attempt: Int) -> String? {
        FileManager.default.contents(atPath: failureURL(attempt).path).map {
            String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// The newest attempt with a lease file, if any.
    func latestAttempt() -> Int? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: url.path) else { return nil }
        return names.compactMap { $0.hasPrefix("lease.") ? Int($0.dropFirst(6)) : nil }.max()
    }

    func holder(_ attempt: Int) -> LeaseHolder? {
        FileManager.default.contents(atPath: leaseURL(attempt).path).flatMap { try? JSONDecoder().decode(LeaseHolder.self, from: $0) }
    }

    /// When the lease was last renewed (the file's modification time).
    func renewed(_ attempt: Int) -> Date? {
        var info = stat()
        guard stat(leaseURL(attempt).path, &info) == 0 else { return nil }
        return Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
    }

    func result() -> UnitResult? {
        FileManager.default.contents(atPath: resultURL.path).flatMap { try? JSONDecoder().decode(UnitResult.self, from: $0) }
    }

    /// Creates `lease.attempt` if no one has: true when this process now holds it.
    func claim(_ attempt: Int, holder: LeaseHolder) throws -> Bool {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        let fd = open(leaseURL(attempt).path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 {
            if errno == EEXIST { return false }
            throw PipelineError("cannot create \(leaseURL(attempt).path) (\(String(cString: strerror(errno)))): the output folder must be writable")
        }
        let bytes = Array(try JSONEncoder().encode(holder))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fsync(fd)
        close(fd)
        return true
    }

    /// Rewrites the holder of a lease this worker resumes (its own earlier process held it).
    func reclaim(_ attempt: Int, holder: LeaseHolder) throws {
        try Durable.write(Array(try JSONEncoder().encode(holder)), to: leaseURL(attempt), unique: true)
    }

    /// Touches the lease: throws LeaseLost when a newer attempt exists or the file is gone.
    func renew(_ attempt: Int) throws {
        try check(attempt)
        guard utimes(leaseURL(attempt).path, nil) == 0 else { throw LeaseLost(unit: unit, attempt: attempt) }
    }

    /// Throws LeaseLost when attempt `attempt` is no longer the unit's newest lease.
    func check(_ attempt: Int) throws {
        if FileManager.default.fileExists(atPath: leaseURL(attempt + 1).path)
            || !FileManager.default.fileExists(atPath: leaseURL(attempt).path) {
            throw LeaseLost(unit: unit, attempt: attempt)
        }
    }
}

/// What a unit's folder says about it, for claiming and for `capfilt status`.
enum UnitState {
    case pending
    case done(UnitResult)
    /// Attempt `attempt` is held; stale when its lease expired or its holder is a dead process of this host.
    case held(attempt: Int, holder: LeaseHolder?, renewed: Date?, stale: Bool)

    static func of(_ folder: UnitFolder, leaseSeconds: Double, now: Date = Date()) -> UnitState {
        if let result = folder.result() { return .done(result) }
        guard let attempt = folder.latestAttempt() else { return .pending }
        let holder = folder.holder(attempt)
        let renewed = folder.renewed(attempt)
        // A lease file just created may not have its holder written yet: judge it by its time only.
        let expired = renewed.map { now.timeIntervalSince($0) > leaseSeconds } ?? true
        return .held(attempt: attempt, holder: holder, renewed: renewed, stale: expired || holder?.isDeadHere == true)
    }
}

/// Renews the current lease from its own thread every quarter of the lease time, so a worker busy in a long
/// batch keeps its unit; only a stopped or dead process lets it expire.
final class LeaseKeeper: @unchecked Sendable {
    private let current = Locked<(folder: UnitFolder, attempt: Int)?>(nil)
    private let period: Double
    private let stopped = Locked(false)
    /// Signalled by `stop()`, so the thread wakes at once instead of at the end of its period.
    private let wake = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)

    init(leaseSeconds: Double) {
        period = max(leaseSeconds / 4, 0.05)
        let thread = Thread { [self] in
            defer { done.signal() }
            while !stopped.value {
                if wake.wait(timeout: .now() + period) == .success { break }
                // A lost lease is noticed by the unit's next commit (UnitFolder.check), which stops the work.
                if let (folder, attempt) = current.value { try? folder.renew(attempt) }
            }
        }
        thread.start()
    }

    func hold(_ folder: UnitFolder, attempt: Int) {
        current.update { $0 = (folder, attempt) }
    }

    func release() { current.update { $0 = nil } }

    func stop() {
        stopped.update { $0 = true }
        wake.signal()
        done.wait()
    }
}
