// `capfilt calibrate RUN`: where to put `filter.threshold`, from the ITM scores a finished run already has.
// Two ways users ask for: keep a fraction of the texts (DataComp's: the score at rank n·F), or reach a precision
// on a labelled sample with the most recall. Both print what each threshold would keep, so a choice is seen
// before a re-filter applies it. Scores are P(match) of the ITM head, which is what the threshold compares
// (`itm >= threshold` keeps a text); ITC cosines live on another scale and are not mixed in.
import Foundation

/// The scores the threshold decides: those of samples the filter judged (kept or filtered; not failed, not
/// duplicates), from the merged dataset's manifests.
public struct ScorePool: Sendable, Equatable {
    /// One judged sample: its input key, its web text's P(match) (nil when the text was unusable) and its
    /// synthetic captions' P(match) (non-empty captions only: an empty caption is never kept).
    public struct Sample: Sendable, Equatable {
        public var key: String
        public var web: Float?
        public var synthetic: [Float]
        public init(key: String, web: Float?, synthetic: [Float]) {
            self.key = key
            self.web = web
            self.synthetic = synthetic
        }
    }

    public var samples: [Sample]
    /// The threshold the run used.
    public var runThreshold: Float

    public init(samples: [Sample], runThreshold: Float) {
        self.samples = samples
        self.runThreshold = runThreshold
    }

    /// Every web text's score / every synthetic caption's score.
    public var webScores: [Float] { samples.compactMap(\.web) }
    public var syntheticScores: [Float] { samples.flatMap(\.synthetic) }

    /// The judged samples of a merged run.
    public static func read(runFolder: URL) throws -> ScorePool {
        guard RunManifestFile.exists(runFolder) else {
            throw EvaluationError(description: "\(runFolder.path) has no merged dataset (\(PipelineRun.runManifestName)): let the job finish, or run `capfilt merge \(runFolder.path)`")
        }
        let plan = try JobPlan.open(folder: runFolder)
        let spec = try PipelineSpec(yaml: plan.specYAML, path: plan.specPath)
        let samples = try ManifestRows.read(runFolder: runFolder)
            .filter { $0.status == .kept || $0.status == .filtered }
            .map { r in
                Sample(key: r.sourceKey, web: r.webScore?.itm,
                       synthetic: r.captions.filter { !$0.text.isEmpty }.compactMap(\.itm))
            }
        return ScorePool(samples: samples, runThreshold: spec.filter.threshold)
    }
}

public enum Calibration {
    /// The threshold that keeps a fraction of `scores`: the score at rank ⌈n·F⌉ from the top (DataComp's rule),
    /// and how many it keeps (more than ⌈n·F⌉ only when scores tie at the threshold). nil for no scores.
    public static func threshold(keeping fraction: Double, of scores: [Float]) -> (threshold: Float, kept: Int)? {
        guard !scores.isEmpty else { return nil }
        let sorted = scores.sorted(by: >)
        let rank = min(sorted.count, max(1, Int((Double(sorted.count) * fraction).rounded(.up))))
        let threshold = sorted[rank - 1]
        return (threshold, sorted.prefix { $0 >= threshold }.count)
    }

    /// What a threshold chosen for a precision target expects on the labelled texts.
    public struct PrecisionChoice: Sendable, Equatable {
        public var threshold: Float
        public var precision: Double
        public var recall: Double
        /// Labelled texts at or above the threshold, and how many of them match.
        public var kept: Int
        public var keptMatching: Int
    }

    /// The lowest threshold (so the most recall) whose kept labelled texts reach `precision`, over
    /// (score, matches) pairs; nil when no threshold reaches it (the best precision is in the error message of
    /// the caller, from ``bestPrecision(_:)``).
    public static func threshold(forPrecision precision: Double, labelled: [(score: Float, matches: Bool)]) -> PrecisionChoice? {
        let positives = labelled.filter(\.matches).count
        guard positives > 0 else { return nil }
        // Recall only grows as the threshold goes down: the last candidate reaching the target has the most.
        return sweep(labelled).last { Double($0.matching) / Double($0.kept) >= precision }.map {
            PrecisionChoice(threshold: $0.score, precision: Double($0.matching) / Double($0.kept),
                            recall: Double($0.matching) / Double(positives), kept: $0.kept, keptMatching: $0.matching)
        }
    }

    /// Each distinct score from the top as a candidate threshold, with the labelled texts it keeps (those at or
    /// above it) and how many of them match.
    static func sweep(_ labelled: [(score: Float, matches: Bool)]) -> [(score: Float, kept: Int, matching: Int)] {
        let sorted = labelled.sorted { $0.score > $1.score }
        var out: [(score: Float, kept: Int, matching: Int)] = []
        var kept = 0, matching = 0, i = 0
        while i < sorted.count {
            let score = sorted[i].score
            while i < sorted.count && sorted[i].score == score {
                kept += 1
                if sorted[i].matches { matching += 1 }
                i += 1
            }
            out.append((score, kept, matching))
        }
        return out
    }

    /// The precision-target choice over the pool's labelled web texts (labels keyed by input keys). Throws
    /// when no web text is labelled, or when no threshold reaches the target (saying the best there is).
    public static func choose(precision: Double, pool: ScorePool, labels: [String: Label], labelsPath: String) throws
        -> (choice: PrecisionChoice, labelled: Int) {
        let labelled = pool.samples.compactMap { s -> (score: Float, matches: Bool)? in
            guard let score = s.web, let matches = labels[s.key]?.webTextMatches else { return nil }
            return (score, matches)
        }
        guard !labelled.isEmpty else {
            throw EvaluationError(description: "no scored web text of the run has a label in \(labelsPath) (labels are keyed by the input's keys, with web_text_matches true or false)")
        }
        guard let choice = threshold(forPrecision: precision, labelled: labelled) else {
            let best = bestPrecision(labelled)
            throw EvaluationError(description: "no threshold reaches precision \(String(format: "%.1f%%", 100 * precision)) on the \(labelled.count) labelled web texts (the best is \(String(format: "%.1f%%", 100 * best))): ask for at most that, or label more samples")
        }
        return (choice, labelled.count)
    }

    /// The highest precision any threshold gives on the labelled texts (for the message when a target is out
    /// of reach).
    public static func bestPrecision(_ labelled: [(score: Float, matches: Bool)]) -> Double {
        sweep(labelled).map { Double($0.matching) / Double($0.kept) }.max() ?? 0
    }

    /// One row of the what-if table: at this threshold, how many web texts, synthetic captions and samples
    /// (any text kept) the filter would keep.
    public struct Row: Sendable, Equatable {
        public var threshold: Float
        public var webKept: Int
        public var syntheticKept: Int
        public var samplesKept: Int
        /// Why this row is in the table ("run", "keep-fraction", "precision", or nil for the grid).
        public var note: String?
    }

    /// The table over a grid of thresholds (0.1 ... 0.9) and the thresholds of interest, sorted.
    public static func table(_ pool: ScorePool, extra: [(Float, String)]) -> [Row] {
        var thresholds: [(Float, String?)] = (1...9).map { (Float($0) / 10, nil) }
        thresholds.append((pool.runThreshold, "run"))
        thresholds += extra.map { ($0.0, $0.1) }
        var rows: [Row] = []
        for (t, note) in thresholds {
            if let i = rows.firstIndex(where: { $0.threshold == t }) {
                if let note { rows[i].note = [rows[i].note, note].compactMap { $0 }.joined(separator: ", ") }
                continue
            }
            var web = 0, synthetic = 0, samples = 0
            for s in pool.samples {
                let w = s.web.map { $0 >= t } ?? false
                let c = s.synthetic.filter { $0 >= t }.count
                if w { web += 1 }
                synthetic += c
                if w || c > 0 { samples += 1 }
            }
            rows.append(Row(threshold: t, webKept: web, syntheticKept: synthetic, samplesKept: samples, note: note))
        }
        return rows.sorted { $0.threshold < $1.threshold }
    }
}
