// `capfilt eval`: how well a finished run cleaned its corpus, measured against ground-truth labels the
// pipeline never saw. Generic: labels are JSON Lines keyed by the input's own keys,
//   {"key": ..., "web_text_matches": true|false, "reference_caption": "..."}   (either field optional).
import Foundation

public struct Label: Sendable, Equatable {
    public var key: String
    public var webTextMatches: Bool?
    public var referenceCaption: String?
}

public struct EvaluationError: Error, CustomStringConvertible {
    public let description: String
}

/// Counts and the figures derived from them. A ratio is nil when its denominator is 0.
public struct Evaluation: Sendable, Equatable {
    /// Input samples with a label / without one.
    public var labelled = 0
    public var unlabelled = 0
    /// Web texts the filter scored, split by truth and decision.
    public var webTruePositive = 0, webFalseNegative = 0, webFalsePositive = 0, webTrueNegative = 0
    /// Non-matching web texts that were unusable (empty, missing...) and so never reached the filter.
    public var webUnusableWrong = 0
    /// Synthetic captions compared with a reference, and how many equal it.
    public var syntheticCompared = 0, syntheticExact = 0
    /// Input pairs with a known truth, and how many are correct (the web text matches).
    public var inputPairs = 0, inputCorrect = 0
    /// Exported (kept) samples with a known truth for their main caption, and how many are correct.
    public var exportedPairs = 0, exportedCorrect = 0
    /// Images that decoded (captioned and filtered), and how many of them were kept.
    public var decodable = 0, kept = 0

    static func ratio(_ a: Int, _ b: Int) -> Double? { b == 0 ? nil : Double(a) / Double(b) }
    /// Share of correct web texts the filter kept.
    public var webRecall: Double? { Self.ratio(webTruePositive, webTruePositive + webFalseNegative) }
    /// Share of kept web texts that are correct.
    public var webPrecision: Double? { Self.ratio(webTruePositive, webTruePositive + webFalsePositive) }
    /// Share of wrong (scored) web texts the filter dropped.
    public var webDropRate: Double? { Self.ratio(webTrueNegative, webTrueNegative + webFalsePositive) }
    public var syntheticExactShare: Double? { Self.ratio(syntheticExact, syntheticCompared) }
    public var inputCorrectShare: Double? { Self.ratio(inputCorrect, inputPairs) }
    public var exportedCorrectShare: Double? { Self.ratio(exportedCorrect, exportedPairs) }
    public var keptShareOfDecodable: Double? { Self.ratio(kept, decodable) }

    /// Reads a labels file (JSON Lines). Malformed lines are errors naming the line: labels are ground truth.
    public static func loadLabels(path: String) throws -> [String: Label] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EvaluationError(description: "\(path) cannot be read: give the labels file (JSON Lines) written with the corpus")
        }
        var labels: [String: Label] = [:]
        for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any],
                  let key = object["key"] as? String else {
                throw EvaluationError(description: "\(path) line \(n + 1): expected {\"key\": ..., \"web_text_matches\": ..., \"reference_caption\": ...}")
            }
            var label = Label(key: key)
            if let v = object["web_text_matches"], !(v is NSNull) {
                guard let b = v as? Bool else { throw EvaluationError(description: "\(path) line \(n + 1): web_text_matches must be true or false") }
                label.webTextMatches = b
            }
            if let v = object["reference_caption"], !(v is NSNull) {
                guard let s = v as? String else { throw EvaluationError(description: "\(path) line \(n + 1): reference_caption must be a string") }
                label.referenceCaption = s
            }
            if labels[key] != nil { throw EvaluationError(description: "\(path) line \(n + 1): key \(key) is labelled twice") }
            labels[key] = label
        }
        return labels
    }

    /// Captions compare after the tokenizer's normalization: lowercase, single spaces, no trailing period.
    public static func normalize(_ s: String) -> String {
        var t = s.lowercased().split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        while t.hasSuffix(".") || t.hasSuffix(" ") { t.removeLast() }
        return t
    }

    /// Evaluates every sample of a merged run, from its shard manifests (the dataset as users get it).
    public static func evaluate(runFolder: URL, labels: [String: Label]) throws -> Evaluation {
        guard RunManifestFile.exists(runFolder) else {
            throw EvaluationError(description: "\(runFolder.path) has no merged dataset (\(PipelineRun.runManifestName)): let the job finish, or run `capfilt merge \(runFolder.path)`")
        }
        return try evaluate(records: try ManifestRows.read(runFolder: runFolder), labels: labels)
    }

    /// Evaluates rows of a finished run.
    public static func evaluate(records: [SampleRecord], labels: [String: Label]) throws -> Evaluation {
        var e = Evaluation()
        for r in records {
            guard let label = labels[r.sourceKey] else { e.unlabelled += 1; continue }
            e.labelled += 1
            if let matches = label.webTextMatches {
                e.inputPairs += 1
                if matches { e.inputCorrect += 1 }
                if let score = r.webScore {
                    switch (matches, score.kept) {
                    case (true, true): e.webTruePositive += 1
                    case (true, false): e.webFalseNegative += 1
                    case (false, true): e.webFalsePositive += 1
                    case (false, false): e.webTrueNegative += 1
                    }
                } else if !matches && r.webTextProblem != nil {
                    e.webUnusableWrong += 1
                }
            }
            let reference = label.referenceCaption.map(normalize)
            if let reference {
                for c in r.captions {
                    e.syntheticCompared += 1
                    if normalize(c.text) == reference { e.syntheticExact += 1 }
                }
            }
            if r.status == .kept || r.status == .filtered { e.decodable += 1 }
            if r.status == .kept {
                e.kept += 1
                var correct: Bool?
                if r.mainCaptionSource == "web" {
                    correct = label.webTextMatches
                } else if let reference, let main = r.mainCaption {
                    correct = normalize(main) == reference
                }
                if let correct {
                    e.exportedPairs += 1
                    if correct { e.exportedCorrect += 1 }
                }
            }
        }
        return e
    }

    public var json: JSON {
        func r(_ v: Double?) -> JSON { v.map { .float(Float($0)) } ?? .null }
        return .object([
            "labelled_samples": .int(labelled), "unlabelled_samples": .int(unlabelled),
            "web_text_recall": r(webRecall), "web_text_precision": r(webPrecision), "web_text_drop_rate": r(webDropRate),
            "web_text_counts": .object(["true_positive": .int(webTruePositive), "false_negative": .int(webFalseNegative),
                                        "false_positive": .int(webFalsePositive), "true_negative": .int(webTrueNegative),
                                        "wrong_and_unusable": .int(webUnusableWrong)]),
            "synthetic_exact_share": r(syntheticExactShare), "synthetic_compared": .int(syntheticCompared),
            "input_correct_share": r(inputCorrectShare), "input_pairs": .int(inputPairs),
            "exported_correct_share": r(exportedCorrectShare), "exported_pairs": .int(exportedPairs),
            "kept_share_of_decodable": r(keptShareOfDecodable), "decodable_images": .int(decodable), "kept": .int(kept),
        ])
    }

    /// A short report for people.
    public var report: String {
        func pct(_ v: Double?) -> String { v.map { String(format: "%5.1f%%", 100 * $0) } ?? "    -" }
        return """
            filter on web texts   recall \(pct(webRecall)) (\(webTruePositive)/\(webTruePositive + webFalseNegative) correct texts kept)
                                  drop rate \(pct(webDropRate)) (\(webTrueNegative)/\(webTrueNegative + webFalsePositive) wrong texts dropped; \(webUnusableWrong) more were unusable)
                                  precision \(pct(webPrecision))
            synthetic captions    \(pct(syntheticExactShare)) equal the reference (\(syntheticExact)/\(syntheticCompared))
            correct pairs         input \(pct(inputCorrectShare)) (\(inputCorrect)/\(inputPairs)) → exported \(pct(exportedCorrectShare)) (\(exportedCorrect)/\(exportedPairs))
            images kept           \(pct(keptShareOfDecodable)) of decodable images (\(kept)/\(decodable))
            """
    }
}

enum RunManifestFile {
    static func exists(_ folder: URL) -> Bool {
        FileManager.default.fileExists(atPath: folder.appendingPathComponent(PipelineRun.runManifestName).path)
    }
}

/// The merged dataset's manifest rows, as the records evaluation and calibration need (status, texts, ITM
/// scores, keys).
enum ManifestRows {
    static func read(runFolder: URL) throws -> [SampleRecord] {
        let shards = runFolder.appendingPathComponent(PipelineRun.shardFolderName)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: shards.path)) ?? [])
            .filter { $0.hasSuffix(".jsonl") && !$0.hasPrefix(".") }.sorted()
        var records: [SampleRecord] = []
        for name in names {
            guard let data = FileManager.default.contents(atPath: shards.appendingPathComponent(name).path) else { continue }
            for line in data.split(separator: 0x0A) {
                guard let row = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                    throw EvaluationError(description: "\(name) has a line that is not JSON: the merged dataset is damaged; run `capfilt merge \(runFolder.path)`")
                }
                var r = SampleRecord(ordinal: records.count, key: row["key"] as? String ?? "", sourceKey: row["source_key"] as? String ?? "",
                                     source: row["source"] as? String ?? "", position: row["position"] as? String ?? "",
                                     stage: .done, status: SampleStatus(rawValue: row["status"] as? String ?? "") ?? .failed)
                r.webTextProblem = row["web_text_problem"] as? String
                // The JSONL manifest is never null: an unscored web text has web_text_scored false (and stand-in
                // itm 0, kept false), which must not read as a score.
                if row["web_text_scored"] as? Bool ?? true, let kept = row["web_text_kept"] as? Bool {
                    r.webScore = WebTextScore(itm: (row["web_text_itm"] as? NSNumber)?.floatValue ?? 0, itc: 0, kept: kept)
                }
                let scores = row["synthetic_itm"] as? [Any] ?? []
                r.captions = (row["synthetic_captions"] as? [String] ?? []).enumerated().map { i, text in
                    var caption = SyntheticCaption(text: text, tokenIDs: [])
                    caption.itm = i < scores.count ? (scores[i] as? NSNumber)?.floatValue : nil
                    return caption
                }
                r.mainCaption = row["main_caption"] as? String
                r.mainCaptionSource = row["main_caption_source"] as? String
                records.append(r)
            }
        }
        return records
    }
}
