// `capfilt status RUN`: where a run stands, read from its ledger (safe while the run is going: WAL readers
// do not block the writer).
import ArgumentParser
import CapfiltPipeline
import Foundation

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a run's per-stage counts, failure reasons and filter rates.")

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

    static func summary(folder: URL, verification: Exporter.ShardVerification = .sizes) throws -> JSON {
        let ledger = try Ledger.open(runFolder: folder)
        let damaged = try Exporter.verifyShards(ledger: ledger, outputFolder: folder, verification)
        let histogram = try ledger.histogram()
        var stages: [String: Int] = [:], statuses: [String: Int] = [:], reasons: [String: Int] = [:]
        for h in histogram {
            stages[h.stage, default: 0] += h.count
            statuses[h.status, default: 0] += h.count
            if let r = h.reason { reasons[r, default: 0] += h.count }
        }
        let filterRates = try ledger.filterRates()
        return .object([
            "samples": .int(stages.values.reduce(0, +)),
            "stages": .object(stages.mapValues { .int($0) }),
            "statuses": .object(statuses.mapValues { .int($0) }),
            "reasons": .object(reasons.mapValues { .int($0) }),
            "web_text_problems": .object(Dictionary(uniqueKeysWithValues: try ledger.webTextProblems().map { ($0.problem, JSON.int($0.count)) })),
            "web_texts_scored": .int(filterRates.webScored),
            "web_texts_kept": .int(filterRates.webKept),
            "synthetic_scored": .int(filterRates.syntheticScored),
            "synthetic_kept": .int(filterRates.syntheticKept),
            "shards_written": .int(try ledger.shards().count),
            "shards_damaged": .array(damaged.map { .object(["shard": .string(Exporter.shardName($0.shard)), "problem": .string($0.problem)]) }),
            "shards_verified_by": .string(verification == .full ? "sha256" : "size"),
            "export_complete": .bool(try ledger.exportComplete() && damaged.isEmpty),
        ])
    }

    static func printSummary(folder: URL, verification: Exporter.ShardVerification = .sizes) throws {
        guard case .object(let s) = try summary(folder: folder, verification: verification) else { return }
        func int(_ v: JSON?) -> Int { if case .int(let n)? = v { return n }; return 0 }
        func dict(_ v: JSON?) -> [(String, Int)] {
            guard case .object(let d)? = v else { return [] }
            return d.keys.sorted().map { ($0, int(d[$0])) }
        }
        var out = "run \(folder.path)\n"
        out += "  samples         \(int(s["samples"]))\n"
        out += "  by stage        " + dict(s["stages"]).map { "\($0.0) \($0.1)" }.joined(separator: ", ") + "\n"
        out += "  by status       " + dict(s["statuses"]).map { "\($0.0) \($0.1)" }.joined(separator: ", ") + "\n"
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
        if case .bool(let complete)? = s["export_complete"] {
            out += "  export          \(int(s["shards_written"])) shards\(complete ? ", complete" : ", not complete")\n"
        }
        if case .array(let damaged)? = s["shards_damaged"], !damaged.isEmpty {
            out += "  damaged shards  \(damaged.count); `capfilt export \(folder.path)` writes them again\n"
            for case .object(let d) in damaged.prefix(20) {
                if case .string(let shard)? = d["shard"], case .string(let problem)? = d["problem"] { out += "    \(shard): \(problem)\n" }
            }
        }
        FileHandle.standardError.write(Data(out.utf8))
    }
}
