// Fault injection for the crash tests: with CAPFILT_KILL_AT=<point>#<n>[:INT] in the environment, the
// process SIGKILLs itself (or, with :INT, sends itself SIGINT) the n-th time it passes <point>. Points sit between the writes that must be atomic
// together, so the tests can prove a kill anywhere loses and duplicates nothing. Without the variable this
// is one dictionary lookup.
import Foundation

enum KillPoint {
    private static let target: (name: String, count: Int, signal: Int32)? = {
        guard let spec = ProcessInfo.processInfo.environment["CAPFILT_KILL_AT"] else { return nil }
        let parts = spec.split(separator: "#")
        guard parts.count == 2 else { return nil }
        let countAndSignal = parts[1].split(separator: ":")
        guard let n = Int(countAndSignal[0]) else { return nil }
        let signal = countAndSignal.count > 1 && countAndSignal[1] == "INT" ? SIGINT : SIGKILL
        return (String(parts[0]), n, signal)
    }()
    nonisolated(unsafe) private static var hits = 0
    private static let lock = NSLock()

    /// Passes the point named `name`.
    static func pass(_ name: String) {
        guard let target, target.name == name else { return }
        lock.lock()
        hits += 1
        let now = hits
        lock.unlock()
        guard now == target.count else { return }
        kill(getpid(), target.signal)
        // SIGINT is handled asynchronously (a dispatch source sets the stop flag): give the handler time to
        // run, so the test sees the stop at this point and not a few writes later.
        if target.signal == SIGINT { usleep(300_000) }
    }
}
