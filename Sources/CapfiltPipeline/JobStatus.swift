// `capfilt status OUT`: where a whole job stands, from the files in its folder alone (safe while workers run:
// it only reads). Units done, claimed (by whom, since when, lease renewed how long ago, stale or not) and
// pending; each worker's rate from the units it finished; samples and ETA for the job; per-stage counts,
// statuses and reasons over the finished units and the ledgers of the units in progress; the merge's state.
import CapfiltCorpus
import Foundation

public enum JobStatus {
    public static func summary(folder: URL, verification: Merge.ShardVerification = .sizes, now: Date = Date()) throws -> JSON {
        let plan = try JobPlan.open(folder: folder)
        let spec = try PipelineSpec(yaml: plan.specYAML, path: plan.specPath)
        var stages: [String: Int] = [:], statuses: [String: Int] = [:], reasons: [String: Int] = [:]
        var problems: [String: Int] = [:], filter: [String: Int] = [:]
        var done = 0, pending = 0, stale = 0, failed = 0
        var claimed: [JSON] = []
        var workers: [Int: (units: Int, samples: Int, seconds: Double)] = [:]
        var doneSamples = 0, doneUnitsWithCount = 0, knownRemaining = 0, unknownRemaining = 0, inProgressSamples = 0
        for (u, unit) in plan.units.enumerated() {
            let unitFolder = UnitFolder(runFolder: folder, unit: u)
            switch UnitState.of(unitFolder, leaseSeconds: spec.job.leaseSeconds, now: now) {
            case .done(let r):
                done += 1
                doneSamples += r.samples
                doneUnitsWithCount += 1
                stages["done", default: 0] += r.samples
                for (k, v) in r.statuses { statuses[k, default: 0] += v }
                for (k, v) in r.reasons { reasons[k, default: 0] += v }
                for (k, v) in r.webTextProblems { problems[k, default: 0] += v }
                for (k, v) in r.filter { filter[k, default: 0] += v }
                var w = workers[r.worker] ?? (0, 0, 0)
                w.units += 1; w.samples += r.samples; w.seconds += r.seconds
                workers[r.worker] = w
            case .pending:
                pending += 1
                if let count = unit.count { knownRemaining += count } else { unknownRemaining += 1 }
            case .held(let attempt, let holder, let renewed, let isStale):
                if isStale { stale += 1 }
                let failure = unitFolder.failure(attempt)
                if failure != nil { failed += 1 }
                var rows = 0
                let ledgerPath = unitFolder.ledgerURL(attempt).path
                if FileManager.default.fileExists(atPath: ledgerPath), let ledger = try? Ledger(path: ledgerPath) {
                    for h in (try? ledger.histogram()) ?? [] {
                        rows += h.count
                        stages[h.stage, default: 0] += h.count
                        if h.stage == SampleStage.done.rawValue {
                            statuses[h.status, default: 0] += h.count
                            if let r = h.reason { reasons[r, default: 0] += h.count }
                        }
                    }
                }
                inProgressSamples += rows
                if let count = unit.count { knownRemaining += max(0, count - rows) } else { unknownRemaining += 1 }
                claimed.append(.object([
                    "unit": .string(JobPlan.unitName(u)),
                    "source": .string(plan.sources[unit.source].display),
                    "attempt": .int(attempt),
                    "worker": holder.map { .int($0.worker) } ?? .null,
                    "host": holder.map { .string($0.host) } ?? .null,
                    "pid": holder.map { .int(Int($0.pid)) } ?? .null,
                    "since": holder.map { .string(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: $0.claimed))) } ?? .null,
                    "renewed_seconds_ago": renewed.map { .int(Int(now.timeIntervalSince($0))) } ?? .null,
                    "stale": .bool(isStale),
                    "samples_ingested": .int(rows),
                    "failed": failure.map { .string($0) } ?? .null,
                ]))
            }
        }
        // Shards of unknown length count as the finished units' average.
        let perUnit = doneUnitsWithCount > 0 ? Double(doneSamples) / Double(doneUnitsWithCount) : 0
        let remaining = Double(knownRemaining) + Double(unknownRemaining) * perUnit
        let rate = workers.values.reduce(0.0) { $0 + ($1.seconds > 0 ? Double($1.samples) / $1.seconds : 0) }
        let problemsFound = try Merge.verifyShards(folder: folder, verification)
        let manifest = try RunManifest.read(folder: folder)
        let mergeComplete = done == plan.units.count && manifest != nil && problemsFound.isEmpty
        // The dataset's own counts (after the merge's cross-unit duplicates and keys), from the run manifest.
        var dataset: JSON = .null
        if let data = FileManager.default.contents(atPath: folder.appendingPathComponent(PipelineRun.runManifestName).path),
           let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
           let totals = object["totals"] as? [String: Int] {
            dataset = .object(totals.mapValues { .int($0) }.merging(
                ["reasons": .object(((object["status_dict"] as? [String: Int]) ?? [:]).mapValues { .int($0) })]) { a, _ in a })
        }
        return .object([
            "folder": .string(folder.path),
            "units": .object(["total": .int(plan.units.count), "done": .int(done), "claimed": .int(claimed.count),
                              "pending": .int(pending), "stale": .int(stale),
                              "failed": .int(failed)]),
            "claimed": .array(claimed),
            "workers": .array(workers.keys.sorted().map { w in
                let v = workers[w]!
                return .object(["worker": .int(w), "units_done": .int(v.units), "samples": .int(v.samples),
                                "seconds": .float(Float(v.seconds)),
                                "samples_per_second": .float(v.seconds > 0 ? Float(Double(v.samples) / v.seconds) : 0)])
            }),
            "samples": .int(doneSamples + inProgressSamples),
            "samples_done_in_finished_units": .int(doneSamples),
            "samples_left_estimate": .int(Int(remaining.rounded())),
            "eta_seconds": rate > 0 && done < plan.units.count ? .int(Int((remaining / rate).rounded())) : .null,
            "stages": .object(stages.mapValues { .int($0) }),
            "statuses": .object(statuses.mapValues { .int($0) }),
            "reasons": .object(reasons.mapValues { .int($0) }),
            "web_text_problems": .object(problems.mapValues { .int($0) }),
            "web_texts_scored": .int(filter["web_scored", default: 0]),
            "web_texts_kept": .int(filter["web_kept", default: 0]),
            "synthetic_scored": .int(filter["synthetic_scored", default: 0]),
            "synthetic_kept": .int(filter["synthetic_kept", default: 0]),
            "shards_written": .int(manifest?.shards.count ?? 0),
            "shards_damaged": .array(problemsFound.map { .object(["shard": .string(Merge.shardName($0.shard)), "problem": .string($0.problem)]) }),
            "shards_verified_by": .string(verification == .full ? "sha256" : "size"),
            "merge_complete": .bool(mergeComplete),
            "dataset": dataset,
        ])
    }
}
