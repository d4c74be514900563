// `capfilt status OUT`: where a job stands: units, workers, rate and ETA, per-stage counts and reasons, the
// merge. Reads files only, so it is safe while workers run.
import ArgumentParser
import CapfiltPipeline
import Foundation

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a job's units, workers, rate and ETA, per-stage counts, failure reasons and filter rates.")

    @Argument(help: "The run's output folder.")
    var runFolder: String

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Flag(help: "Check every written shard file against its SHA-256 in the ledger (default: files present, tar sizes).")
    var verify = false

    func run() throws {
        let folder = URL(fileURLWithPath: runFolder)
        if json {
            print(try Self.summary(folder: folder, verification: verify ? .full : .sizes).text)
        } else {
            try Self.printSummary(folder: folder, verification: verify ? .full : .sizes)
        }
    }

    static func summary(folder: URL, verification: Merge.ShardVerification = .sizes) throws -> JSON {
        try JobStatus.summary(folder: folder, verification: verification)
    }

    static func printSummary(folder: URL, verification: Merge.ShardVerification = .sizes) throws {
        guard case .object(let s) = try summary(folder: folder, verification: verification) else { return }
        func int(_ v: JSON?) -> Int { if case .int(let n)? = v { return n }; return 0 }
        func dict(_ v: JSON?) -> [(String, Int)] {
            guard case .object(let d)? = v else { return [] }
            return d.keys.sorted().map { ($0, int(d[$0])) }
        }
        var out = "job \(folder.path)\n"
        if case .object(let units)? = s["units"] {
            out += "  units           \(int(units["done"])) done, \(int(units["claimed"])) claimed (\(int(units["stale"])) stale, \(int(units["failed"])) failed), \(int(units["pending"])) pending, of \(int(units["total"]))\n"
        }
        if case .array(let claimed)? = s["claimed"] {
            for case .object(let c) in claimed.prefix(20) {
                func text(_ v: JSON?) -> String { switch v { case .string(let t)?: t; case .int(let n)?: String(n); case .bool(let b)?: b ? "yes" : "no"; default: "?" } }
                out += "    unit \(text(c["unit"])) attempt \(text(c["attempt"])): worker \(text(c["worker"])) on \(text(c["host"])) pid \(text(c["pid"])) since \(text(c["since"])), renewed \(text(c["renewed_seconds_ago"]))s ago\(c["stale"] == .bool(true) ? ", STALE (another worker takes it over)" : ""), \(text(c["samples_ingested"])) samples in\n"
                if case .string(let failure)? = c["failed"] { out += "      FAILED: \(failure)\n" }
            }
        }
        if case .array(let workers)? = s["workers"], !workers.isEmpty {
            out += "  workers         " + workers.compactMap { w -> String? in
                guard case .object(let o) = w, case .float(let rate)? = o["samples_per_second"] else { return nil }
                return "\(int(o["worker"])): \(int(o["units_done"])) units, \(int(o["samples"])) samples, " + String(format: "%.1f/s", rate)
            }.joined(separator: "; ") + "\n"
        }
        out += "  samples         \(int(s["samples"])) (about \(int(s["samples_left_estimate"])) left)"
        if case .int(let eta)? = s["eta_seconds"] { out += String(format: ", ETA %dh%02dm%02ds", eta / 3600, eta % 3600 / 60, eta % 60) }
        out += "\n"
        out += "  by stage        " + dict(s["stages"]).map { "\($0.0) \($0.1)" }.joined(separator: ", ") + "\n"
        out += "  by status       (as the units recorded them) " + dict(s["statuses"]).map { "\($0.0) \($0.1)" }.joined(separator: ", ") + "\n"
        let reasons = dict(s["reasons"])
        if !reasons.isEmpty {
            out += "  reasons\n" + reasons.map { "    \($0.0.padding(toLength: 26, withPad: " ", startingAt: 0)) \($0.1)\n" }.joined()
        }
        let problems = dict(s["web_text_problems"])
        if !problems.isEmpty {
            out += "  web text problems " + problems.map { "\($0.0) \($0.1)" }.joined(separator: ", ") + "\n"
        }
        func rate(_ kept: Int, _ scored: Int) -> String {
            scored == 0 ? "-" : String(format: "%d/%d kept (%.1f%%)", kept, scored, 100 * Double(kept) / Double(scored))
        }
        out += "  filter: web texts \(rate(int(s["web_texts_kept"]), int(s["web_texts_scored"]))), synthetic captions \(rate(int(s["synthetic_kept"]), int(s["synthetic_scored"])))\n"
        if case .bool(let complete)? = s["merge_complete"] {
            out += "  merged dataset  \(int(s["shards_written"])) shards\(complete ? ", complete" : ", not complete")"
            if case .object(let d)? = s["dataset"] {
                out += ": " + ["kept", "filtered", "failed", "duplicate"].map { "\($0) \(int(d[$0]))" }.joined(separator: ", ")
                    + " (duplicates across units counted)"
            }
            out += "\n"
        }
        if case .array(let damaged)? = s["shards_damaged"], !damaged.isEmpty {
            out += "  damaged shards  \(damaged.count); `capfilt merge \(folder.path)` writes them again\n"
            for case .object(let d) in damaged.prefix(20) {
                if case .string(let shard)? = d["shard"], case .string(let problem)? = d["problem"] { out += "    \(shard): \(problem)\n" }
            }
        }
        FileHandle.standardError.write(Data(out.utf8))
    }
}
