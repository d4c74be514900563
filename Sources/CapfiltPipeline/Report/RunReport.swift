// `capfilt report RUN`: what a finished run did, gathered in one pass over its units in unit order, beside the
// merged manifests (which have each sample's final verdict: the merge's cross-unit duplicates and keys) and the
// unit records (which have what the manifests leave out: ITC cosines). Memory stays bounded whatever the run's
// size: fixed-bin histograms, one count pair per unit, and a fixed number of chosen samples per section, picked
// by a seeded hash of their keys (the same run and seed always give the same picks, whatever the worker count).
// The thumbnails of the chosen samples come afterwards (Report/Thumbnails.swift); the page is ReportPage.swift.
import CapfiltDigest
import Foundation

/// Counts of values in `counts.count` equal bins over [low, high]; values outside go to the end bins.
public struct Histogram: Sendable, Equatable {
    public private(set) var low: Float
    public private(set) var high: Float
    public private(set) var counts: [Int]
    public var total: Int { counts.reduce(0, +) }
    public var binWidth: Float { (high - low) / Float(counts.count) }

    public init(low: Float, high: Float, bins: Int) {
        precondition(high > low && bins > 0)
        self.low = low
        self.high = high
        counts = Array(repeating: 0, count: bins)
    }

    public mutating func add(_ value: Float) {
        guard value.isFinite else { return }
        let bin = Int(((value - low) / binWidth).rounded(.down))
        counts[min(max(bin, 0), counts.count - 1)] += 1
    }

    /// Lower edge of bin `i`.
    public func edge(_ i: Int) -> Float { low + Float(i) * binWidth }

    /// The occupied range only, bins merged so that there are at most `maxBins` (for scales like the ITC
    /// cosine's, where the data fill a small part of [-1, 1]). Empty histograms stay as they are.
    public func trimmed(maxBins: Int) -> Histogram {
        guard let first = counts.firstIndex(where: { $0 > 0 }), let last = counts.lastIndex(where: { $0 > 0 }) else { return self }
        let span = last - first + 1
        let factor = (span + maxBins - 1) / maxBins
        let bins = (span + factor - 1) / factor
        var out = Histogram(low: edge(first), high: edge(first) + Float(bins * factor) * binWidth, bins: bins)
        for i in first...last { out.counts[(i - first) / factor] += counts[i] }
        return out
    }
}

/// Checks of synthetic captions.
public enum CaptionChecks {
    /// The phrase a caption repeats the way a looping decoder does, or nil: a word twice in a row ("a a dog"),
    /// a two-word phrase three times, or a four-word phrase twice ("a hat on a hat on a hat"). Shorter phrases
    /// twice are ordinary English ("a large red circle and a large red square").
    public static func repeatedPhrase(_ text: String) -> String? {
        let words = text.lowercased().split { $0.isWhitespace || ",.;:!?\"".contains($0) }.map(String.init)
        guard words.count >= 2 else { return nil }
        for i in 1..<words.count where words[i] == words[i - 1] { return "\(words[i]) \(words[i])" }
        var bigrams: [String: Int] = [:], fourgrams: [String: Int] = [:]
        for i in 0..<(words.count - 1) {
            let bigram = words[i] + " " + words[i + 1]
            bigrams[bigram, default: 0] += 1
            if bigrams[bigram] == 3 { return bigram }
            if i + 3 < words.count {
                let fourgram = words[i...(i + 3)].joined(separator: " ")
                fourgrams[fourgram, default: 0] += 1
                if fourgrams[fourgram] == 2 { return fourgram }
            }
        }
        return nil
    }

    /// Words, as a person counts them (runs of non-space).
    public static func words(_ text: String) -> Int { text.split { $0.isWhitespace }.count }
}

/// The sections of the report's sample grid.
public enum ReportSection: String, CaseIterable, Sendable {
    case keptAsIs = "kept"
    case replaced = "replaced"
    case dropped = "dropped"
    case nearThreshold = "near-threshold"
    case failed = "failed"
    case degenerate = "degenerate"

    /// How far from the threshold a web text's P(match) counts as near it.
    public static let nearBand: Float = 0.05
}

/// One chosen sample, as the grid shows it.
public struct ReportSample: Sendable, Equatable {
    /// The sample's key in the dataset (the merge's: unique in the run).
    public var key: String
    public var unit: Int
    /// Position in its unit.
    public var position: Int
    public var status: SampleStatus
    public var reason: String?
    public var detail: String?
    public var webText: String?
    public var webTextProblem: String?
    public var webScore: WebTextScore?
    public var captions: [SyntheticCaption]
    public var mainCaption: String?
    public var mainCaptionSource: String?
    public var imageFormat: String?
    public var width: Int?
    public var height: Int?
    public var imageSHA256: String?
    /// The thumbnail's path inside the report folder, once made.
    public var thumbnail: String?
    /// Why there is no thumbnail (an image that does not decode, an input that cannot be read again).
    public var noThumbnail: String?
    /// The seeded hash that chose it (smallest first).
    var rank: UInt64

    /// The file name its thumbnail gets: unit and position, so the same sample always has the same name.
    public var id: String { "\(JobPlan.unitName(unit))-\(position)" }
}

/// Everything the report page shows.
public struct RunReport: Sendable {
    public var runFolder: String
    public var specPath: String
    public var threshold: Float
    public var mainCaptionRule: String
    public var captionerModel: String
    public var captionerSHA256: String
    public var filterModel: String
    public var filterSHA256: String
    public var shards: Int
    public var seed: UInt64

    /// Samples in, and by final status.
    public var input = 0
    public var statuses: [SampleStatus: Int] = [:]
    /// Final reasons (failed, duplicate and filtered samples), as the run manifest's `status_dict`.
    public var reasons: [String: Int] = [:]
    /// Failed samples by reason, duplicates by reason: the funnel's losses.
    public var failedReasons: [String: Int] = [:]
    public var duplicateReasons: [String: Int] = [:]
    /// Why web texts could not be used (missing, empty, ...), over every input sample.
    public var webTextProblems: [String: Int] = [:]
    /// Kept samples by where their main caption came from ("web", "synthetic").
    public var mainCaptionSources: [String: Int] = [:]
    /// Judged samples (kept or filtered) whose web text the filter kept.
    public var webTextsKept = 0

    /// P(match) of the judged samples' web texts and non-empty synthetic captions: 20 bins over [0, 1].
    public var itmWeb = Histogram(low: 0, high: 1, bins: 20)
    public var itmSynthetic = Histogram(low: 0, high: 1, bins: 20)
    /// ITC cosines of the same texts: bins of 0.01 over [-1, 1] (the page shows the occupied range).
    public var itcWeb = Histogram(low: -1, high: 1, bins: 200)
    public var itcSynthetic = Histogram(low: -1, high: 1, bins: 200)
    /// Words per usable web text and per synthetic caption of judged samples: bins 0, 1, ..., 40 or more.
    public var webWords = Histogram(low: 0, high: 41, bins: 41)
    public var syntheticWords = Histogram(low: 0, high: 41, bins: 41)
    public var syntheticCaptions = 0
    /// Synthetic captions that repeat a phrase (``CaptionChecks/repeatedPhrase(_:)``).
    public var degenerateCaptions = 0

    /// Per unit, in unit order: input samples and kept samples.
    public var units: [(name: String, input: Int, kept: Int)] = []

    /// Per section: how many samples of the run belong to it, and the chosen ones (smallest seeded hash
    /// first).
    public var sectionCounts: [ReportSection: Int] = [:]
    public var sections: [ReportSection: [ReportSample]] = [:]

    public var kept: Int { statuses[.kept, default: 0] }
}

public struct ReportError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

extension RunReport {
    /// Samples chosen per section by default.
    public static let defaultPerSection = 12

    /// Reads the finished, merged run in `runFolder`: one unit's records and one shard's manifest in memory at
    /// a time.
    public static func gather(runFolder: URL, seed: UInt64 = 0, perSection: Int = defaultPerSection) throws -> RunReport {
        let merge = try Merge(folder: runFolder)
        // Units first: a run that is not finished is told which units are missing.
        let results = try merge.results()
        let manifestURL = runFolder.appendingPathComponent(PipelineRun.runManifestName)
        guard let data = FileManager.default.contents(atPath: manifestURL.path) else {
            throw ReportError(description: "\(runFolder.path) has no merged dataset (\(PipelineRun.runManifestName)): let the job finish, or run `capfilt merge \(runFolder.path)`")
        }
        guard let manifest = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let shards = manifest["shards"] as? [[String: Any]] else {
            throw ReportError(description: "\(manifestURL.path) is damaged: run `capfilt merge \(runFolder.path)` to write it again")
        }
        guard manifest["units_sha256"] as? String == Merge.unitsDigest(results) else {
            throw ReportError(description: "the merged dataset of \(runFolder.path) is older than its units: run `capfilt merge \(runFolder.path)` first")
        }
        let spec = merge.spec
        var report = RunReport(
            runFolder: runFolder.path, specPath: merge.plan.specPath, threshold: spec.filter.threshold,
            mainCaptionRule: spec.filter.mainCaption.rawValue, captionerModel: spec.captioner.model,
            captionerSHA256: merge.plan.captionerSHA256, filterModel: spec.filter.model,
            filterSHA256: merge.plan.filterSHA256, shards: shards.count, seed: seed)
        let shardFolder = runFolder.appendingPathComponent(PipelineRun.shardFolderName)
        let rows = ManifestCursor(files: shards.map { shardFolder.appendingPathComponent($0["manifest"] as? String ?? "") },
                                  runFolder: runFolder)
        var picks: [ReportSection: Reservoir] = [:]
        for section in ReportSection.allCases { picks[section] = Reservoir(capacity: perSection) }
        let decoder = JSONDecoder()
        for result in results {
            let unit = UnitFolder(runFolder: runFolder, unit: result.unit)
            let url = unit.url.appendingPathComponent(result.records)
            guard let bytes = FileManager.default.contents(atPath: url.path).map({ [UInt8]($0) }),
                  SHA256.hex(SHA256.hash(bytes)) == result.recordsSHA256 else {
                throw ReportError(description: "\(url.path) is missing or not what its done.json records: remove \(unit.url.path), run a worker again to redo the unit, then `capfilt merge \(runFolder.path)`")
            }
            var input = 0, kept = 0
            for line in bytes.split(separator: 0x0A) {
                var record = try decoder.decode(SampleRecord.self, from: Data(line))
                guard let row = try rows.next() else {
                    throw ReportError(description: "the manifests of \(runFolder.path) end before unit \(unit.url.lastPathComponent) does: run `capfilt merge \(runFolder.path)` to write them again")
                }
                guard row.position == record.position, row.source_key == record.sourceKey else {
                    throw ReportError(description: "\(rows.name) does not follow the units (\(row.key) where unit \(unit.url.lastPathComponent) has \(record.key)): run `capfilt merge \(runFolder.path)` to write the manifests again")
                }
                // The merge's verdict over the unit's.
                record.key = row.key
                record.status = SampleStatus(rawValue: row.status) ?? record.status
                record.reason = row.reason.isEmpty ? nil : row.reason
                record.detail = row.error_message.isEmpty ? nil : row.error_message
                record.mainCaption = row.main_caption.isEmpty ? nil : row.main_caption
                record.mainCaptionSource = row.main_caption_source.isEmpty ? nil : row.main_caption_source
                input += 1
                if record.status == .kept { kept += 1 }
                report.add(record, unit: result.unit, picks: &picks)
            }
            report.units.append((JobPlan.unitName(result.unit), input, kept))
        }
        if try rows.next() != nil {
            throw ReportError(description: "the manifests of \(runFolder.path) have more rows than its units: run `capfilt merge \(runFolder.path)` to write them again")
        }
        for (section, reservoir) in picks { report.sections[section] = reservoir.chosen }
        return report
    }

    private mutating func add(_ r: SampleRecord, unit: Int, picks: inout [ReportSection: Reservoir]) {
        input += 1
        statuses[r.status, default: 0] += 1
        if let reason = r.reason, r.status != .kept {
            reasons[reason, default: 0] += 1
            if r.status == .failed { failedReasons[reason, default: 0] += 1 }
            if r.status == .duplicate { duplicateReasons[reason, default: 0] += 1 }
        }
        if let problem = r.webTextProblem { webTextProblems[problem, default: 0] += 1 }
        if r.status == .kept { mainCaptionSources[r.mainCaptionSource ?? "none", default: 0] += 1 }

        var members: [ReportSection] = []
        let judged = r.status == .kept || r.status == .filtered
        if judged {
            if let web = r.webScore {
                itmWeb.add(web.itm)
                itcWeb.add(web.itc)
                if web.kept { webTextsKept += 1 }
                if abs(web.itm - threshold) <= ReportSection.nearBand { members.append(.nearThreshold) }
            }
            if let text = r.webText { webWords.add(Float(CaptionChecks.words(text))) }
        }
        var degenerate = false
        for caption in r.captions where !caption.text.isEmpty {
            if judged {
                if let itm = caption.itm { itmSynthetic.add(itm) }
                if let itc = caption.itc { itcSynthetic.add(itc) }
                syntheticWords.add(Float(CaptionChecks.words(caption.text)))
            }
            syntheticCaptions += 1
            if CaptionChecks.repeatedPhrase(caption.text) != nil {
                degenerateCaptions += 1
                degenerate = true
            }
        }
        if degenerate { members.append(.degenerate) }
        switch r.status {
        case .kept: members.append(r.mainCaptionSource == "synthetic" ? .replaced : .keptAsIs)
        case .filtered, .duplicate: members.append(.dropped)
        case .failed: members.append(.failed)
        case .pending: break
        }
        guard !members.isEmpty else { return }
        let sample = ReportSample(
            key: r.key, unit: unit, position: r.ordinal, status: r.status, reason: r.reason, detail: r.detail,
            webText: r.webText, webTextProblem: r.webTextProblem, webScore: r.webScore, captions: r.captions,
            mainCaption: r.mainCaption, mainCaptionSource: r.mainCaptionSource, imageFormat: r.imageFormat,
            width: r.width, height: r.height, imageSHA256: r.imageSHA256, rank: Self.rank(seed: seed, key: r.key))
        for section in members {
            sectionCounts[section, default: 0] += 1
            picks[section]?.offer(sample)
        }
    }

    /// The seeded hash a sample is chosen by: the first 8 bytes of SHA-256("seed:key").
    static func rank(seed: UInt64, key: String) -> UInt64 {
        SHA256.hash(Array("\(seed):\(key)".utf8)).prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
}

/// The `capacity` samples of smallest rank among those offered.
private struct Reservoir {
    let capacity: Int
    private(set) var items: [ReportSample] = []

    init(capacity: Int) { self.capacity = capacity }

    mutating func offer(_ sample: ReportSample) {
        guard capacity > 0 else { return }
        if items.count < capacity { items.append(sample); return }
        // capacity is small (a page's worth): a scan beats a heap's bookkeeping.
        var worst = 0
        for i in items.indices where Self.before(items[worst], items[i]) { worst = i }
        if Self.before(sample, items[worst]) { items[worst] = sample }
    }

    var chosen: [ReportSample] { items.sorted(by: Self.before) }

    private static func before(_ a: ReportSample, _ b: ReportSample) -> Bool { (a.rank, a.key) < (b.rank, b.key) }
}

/// The merged manifests' rows in order, one shard's file in memory at a time.
private final class ManifestCursor {
    /// The columns the report takes from a JSONL manifest row (which has no nulls: "" for absent text).
    struct Row: Decodable {
        var key: String
        var status: String
        var reason: String
        var error_message: String
        var main_caption: String
        var main_caption_source: String
        var position: String
        var source_key: String
    }

    private var files: ArraySlice<URL>
    private let runFolder: URL
    private var lines: [ArraySlice<UInt8>] = []
    private var index = 0
    private let decoder = JSONDecoder()
    private(set) var name = ""

    init(files: [URL], runFolder: URL) {
        self.files = files[...]
        self.runFolder = runFolder
    }

    func next() throws -> Row? {
        while index >= lines.count {
            guard let url = files.popFirst() else { return nil }
            guard let data = FileManager.default.contents(atPath: url.path) else {
                throw ReportError(description: "\(url.path) is missing: run `capfilt merge \(runFolder.path)` to write the dataset again")
            }
            lines = [UInt8](data).split(separator: 0x0A)
            index = 0
            name = url.lastPathComponent
        }
        defer { index += 1 }
        do {
            return try decoder.decode(Row.self, from: Data(lines[index]))
        } catch {
            throw ReportError(description: "line \(index + 1) of \(name) is not a capfilt manifest row (\(error)): run `capfilt merge \(runFolder.path)` to write it again")
        }
    }
}
