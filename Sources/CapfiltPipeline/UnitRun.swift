// One unit of work, start (or resume) to finish: a reader thread ingests and decodes batches of the unit's
// samples, a bounded queue hands them to the model thread, which captions and filters them; each stage commits
// a batch in one transaction of the unit's ledger, the kept samples' image bytes with the filter's commit. When
// every sample is done the unit leaves as three files: `images.A.tar` (kept images), `records.A.jsonl` (every
// sample's row) and, last, `done.json` naming them with their SHA-256.
//
// Determinism: batch b is always positions [b·B, (b+1)·B) of the unit (B = captioner.batch_size), so a resumed
// unit forms the same model batches; sampling seeds derive from (seed, unit, position, caption index).
import CapfiltBLIP
import CapfiltCorpus
import CapfiltDigest
import CapfiltTensor
import CapfiltWebDataset
import Foundation

/// The models of a worker, loaded once and shared by every unit it runs.
final class Models: @unchecked Sendable {
    let captionFolder: ModelFolder
    let filterFolder: ModelFolder
    let captioner: BLIPCaptioner
    let retriever: BLIPRetriever

    init(captionFolder: ModelFolder, filterFolder: ModelFolder, spec: PipelineSpec, stop: StopFlag) throws {
        self.captionFolder = captionFolder
        self.filterFolder = filterFolder
        captioner = try PipelineRun.naming("captioner.model") { try captionFolder.loadCaptioner(precision: spec.captioner.precision) }
        if stop.isSet { throw CancellationError() }
        retriever = try PipelineRun.naming("filter.model") { try filterFolder.loadRetriever(precision: spec.filter.precision) }
    }
}

/// `units/U/done.json`: a finished unit.
public struct UnitResult: Codable, Sendable, Equatable {
    public static let fileName = "done.json"

    public var unit: Int
    public var attempt: Int
    public var specFingerprint: String
    public var captionerSHA256: String
    public var filterSHA256: String
    public var samples: Int
    public var kept: Int
    public var records: String
    public var recordsSHA256: String
    public var images: String
    public var imagesSHA256: String
    public var imagesBytes: Int
    public var statuses: [String: Int]
    public var reasons: [String: Int]
    public var webTextProblems: [String: Int]
    /// web_scored, web_kept, synthetic_scored, synthetic_kept.
    public var filter: [String: Int]
    /// Who finished it and how long its last attempt's process worked on it: for `capfilt status`, never output.
    public var worker: Int
    public var host: String
    public var seconds: Double
    /// CPU seconds (user + system) the process spent on it: a rate per CPU-second is what the machine's load and
    /// a virtual machine's stolen time do not move (absent from units finished before it was recorded).
    public var cpuSeconds: Double?
    public var finished: Double

    enum CodingKeys: String, CodingKey {
        case unit, attempt, specFingerprint = "spec_fingerprint", captionerSHA256 = "captioner_sha256"
        case filterSHA256 = "filter_sha256", samples, kept, records, recordsSHA256 = "records_sha256", images
        case imagesSHA256 = "images_sha256", imagesBytes = "images_bytes", statuses, reasons
        case webTextProblems = "web_text_problems", filter, worker, host, seconds, cpuSeconds = "cpu_seconds", finished
    }
}

/// Counters for progress lines.
/// One vocabulary with `capfilt status`: `kept`, `filtered` (dropped by the filter), `duplicate`, `failed` are
/// final statuses, and `finished` is their sum (resumed samples included, counted by their recorded status).
public struct RunProgress: Sendable {
    public var read = 0
    public var captioned = 0
    /// Samples whose texts the filter scored.
    public var scored = 0
    public var finished = 0
    public var kept = 0
    public var filtered = 0
    public var duplicate = 0
    public var failed = 0
    /// Samples already done in the ledger when this worker reached them (a resume).
    public var skipped = 0
    /// Samples whose captions and scores came from an earlier run's units (a re-filter), not from the models.
    public var reused = 0
    public var stage = "ingest"
    /// Units this worker finished, and the job's units done (by anyone) of `unitCount`.
    public var unitsFinished = 0
    public var unitsDone = 0
    public var unitCount = 0
    /// The unit being worked on.
    public var unit: Int?
    public let started = Date()

    /// Seconds left for the job, from the share of units done and this worker's rate (nil until one is done).
    public var estimatedSecondsLeft: Double? {
        guard unitCount > 0, unitsFinished > 0 else { return nil }
        let perUnit = Date().timeIntervalSince(started) / Double(unitsFinished)
        return perUnit * Double(max(0, unitCount - unitsDone))
    }
}

extension RunProgress {
    mutating func count(_ statuses: [SampleStatus]) {
        for status in statuses {
            switch status {
            case .kept: kept += 1
            case .filtered: filtered += 1
            case .duplicate: duplicate += 1
            case .failed: failed += 1
            case .pending: continue
            }
            finished += 1
        }
    }
}

final class UnitWork: @unchecked Sendable {
    let spec: PipelineSpec
    let plan: JobPlan
    let unit: Int
    let attempt: Int
    let folder: UnitFolder
    let models: Models
    let ledger: Ledger
    let holder: LeaseHolder
    let corpus: CorpusReader
    /// An earlier run's samples of this unit by position, whose captions and scores stand in for the models
    /// (StoredScores.swift); nil when there are none.
    let stored: [Int: SampleRecord]?
    private let ingestor: Ingestor

    init(spec: PipelineSpec, plan: JobPlan, corpus: CorpusReader, unit: Int, attempt: Int, folder: UnitFolder, models: Models,
         holder: LeaseHolder, stored: [Int: SampleRecord]? = nil) throws {
        self.stored = stored
        self.spec = spec
        self.plan = plan
        self.corpus = corpus
        self.unit = unit
        self.attempt = attempt
        self.folder = folder
        self.models = models
        self.holder = holder
        ingestor = Ingestor(spec: spec, captionFolder: models.captionFolder, filterFolder: models.filterFolder)
        ledger = try Ledger(path: folder.ledgerURL(attempt).path)
        if let recorded = try ledger.identity() {
            guard recorded.specFingerprint == plan.specFingerprint, recorded.captionerSHA256 == plan.captionerSHA256,
                  recorded.filterSHA256 == plan.filterSHA256 else {
                throw PipelineError("\(folder.ledgerURL(attempt).path) was made for another job (spec or weights differ from \(JobPlan.fileName)): remove the run folder's units/ or start over with --new-run")
            }
            try InputIdentity.verifyFiles(of: ledger)
        } else {
            try ledger.recordIdentity(plan.identity)
        }
    }

    /// Runs the unit to its end and writes its result. Returns false if `stop` was set first. Throws LeaseLost
    /// when another worker took the unit over.
    func run(stop: StopFlag, counters: Locked<RunProgress>, progress: @escaping (RunProgress) -> Void) throws -> Bool {
        let started = Date(), startedCPU = processCPUSeconds()
        let queue = BoundedQueue<[IngestedSample]>(capacity: 2)
        let readerError = Locked<Error?>(nil)
        let batchSize = spec.captioner.batchSize
        let readerDone = DispatchSemaphore(value: 0)
        let total = Locked(0)

        let reader = Thread { [self] in
            defer { readerDone.signal() }
            do {
                let samples = plan.openUnit(unit, corpus: corpus)
                var batch: [(Int, InputSample)] = []
                func flush() throws {
                    defer { batch = [] }
                    guard !batch.isEmpty else { return }
                    let work = try prepare(batch)
                    counters.update { c in
                        c.read += batch.count
                        c.skipped += work.skipped
                        c.count(work.done)
                    }
                    // Pushed even when empty (every sample failed or was done before), so the model thread reports.
                    if !queue.push(work.samples) { throw CancellationError() }
                }
                // A source that fails (UnitInputFailed) ends the unit here: the batches committed before stay, the
                // partial batch is dropped (committing it would form a model batch a retry would not form).
                while !stop.isSet, let (position, sample) = try samples.next() {
                    batch.append((position, sample))
                    total.update { $0 = position + 1 }
                    if (position + 1) % batchSize == 0 { try flush() }
                }
                if !stop.isSet { try flush() }
            } catch is CancellationError {
            } catch {
                readerError.update { $0 = error }
            }
            queue.close()
        }
        reader.stackSize = 8 << 20
        reader.start()

        do {
            // Whatever ends this loop (done, stop, a thrown error), the queue is closed so the reader cannot stay
            // blocked on it, and the reader is awaited before returning.
            defer {
                queue.close()
                readerDone.wait()
            }
            while let samples = queue.pop() {
                if stop.isSet { break }
                var batch = samples
                counters.update { $0.stage = "caption" }
                let captionedByModel = try captionStage(&batch)
                counters.update { $0.captioned += captionedByModel; $0.stage = "filter" }
                let reused = try filterStage(&batch)
                let snapshot = counters.update { c in
                    c.reused += reused
                    c.scored += batch.filter { $0.record.webScore != nil || $0.record.captions.contains { $0.itm != nil } }.count
                    c.count(batch.map(\.record.status))
                }
                progress(snapshot)
            }
        }
        // A command killed by the same Ctrl-C that stops the worker is an interruption, not a failed unit.
        if stop.isSet, readerError.value is UnitInputFailed { return false }
        if let error = readerError.value { throw error }
        if stop.isSet { return false }
        try finish(samples: total.value, seconds: Date().timeIntervalSince(started), cpuSeconds: processCPUSeconds() - startedCPU)
        return true
    }

    // MARK: - Ingest

    /// Ingests the new samples of one batch (one transaction) and decodes those the model stages still need.
    /// Returns the samples with model work left, how many were done before (a resume), and the statuses of the
    /// samples that are done without the models (failed, duplicate, resumed).
    private func prepare(_ inputs: [(position: Int, sample: InputSample)]) throws
        -> (samples: [IngestedSample], skipped: Int, done: [SampleStatus]) {
        guard let first = inputs.first?.position, let last = inputs.last?.position else { return ([], 0, []) }
        let existing = Dictionary(uniqueKeysWithValues: try ledger.samples(in: first..<(last + 1)).map { ($0.ordinal, $0) })
        var out: [IngestedSample] = []
        var fresh: [SampleRecord] = []
        var skipped = 0
        var files: [InputFileIdentity] = []
        for (position, input) in inputs {
            if let record = existing[position] {
                try ingestor.checkUnchanged(record, input: input)
                if record.stage == .done { skipped += 1; out.append(IngestedSample(record: record)); continue }
                out.append(try ingestor.redecode(record, input: input))
                continue
            }
            files += InputIdentity.files(of: input)
            let sample = try ingestor.ingest(
                input, unit: unit, position: position,
                duplicateImage: { sha in
                    if let inBatch = fresh.first(where: { $0.imageSHA256 == sha && $0.status != .duplicate }) { return inBatch }
                    return try self.ledger.firstSample(withImage: sha, before: first)
                },
                duplicateKey: { source, key in
                    if let inBatch = fresh.first(where: { $0.source == source && $0.sourceKey == key }) { return inBatch.key }
                    return try self.ledger.firstSample(source: source, sourceKey: key, before: first)
                })
            fresh.append(sample.record)
            out.append(sample)
        }
        KillPoint.pass("before-ingest-commit")
        try folder.check(attempt)
        try ledger.commit(fresh, files: files)
        KillPoint.pass("after-ingest-commit")
        // Only samples with model work left go to the model thread.
        return (out.filter { $0.record.stage != .done }, skipped, out.filter { $0.record.stage == .done }.map(\.record.status))
    }

    // MARK: - Caption

    /// The stored record for each of `indices` when every one of them has one (a batch reuses whole or not at all).
    private func storedRecords(_ batch: [IngestedSample], _ indices: [Int]) -> [SampleRecord]? {
        guard let stored, !indices.isEmpty else { return nil }
        let found = indices.compactMap { StoredScores.match(stored[batch[$0].record.ordinal], for: batch[$0].record) }
        return found.count == indices.count ? found : nil
    }

    /// Captions the samples that need it; returns how many the model captioned (0 when stored captions stood in).
    private func captionStage(_ batch: inout [IngestedSample]) throws -> Int {
        let needs = batch.indices.filter { batch[$0].record.stage == .ingested && batch[$0].captionPixels != nil }
        guard !needs.isEmpty else { return 0 }
        if let records = storedRecords(batch, needs) {
            for (i, record) in zip(needs, records) {
                batch[i].record.captions = record.captions.map { SyntheticCaption(text: $0.text, tokenIDs: $0.tokenIDs) }
                batch[i].record.stage = .captioned
            }
            KillPoint.pass("before-caption-commit")
            try folder.check(attempt)
            try ledger.commit(needs.map { batch[$0].record })
            KillPoint.pass("after-caption-commit")
            return 0
        }
        let captioner = models.captioner, captionFolder = models.captionFolder
        // A duplicate image (duplicates: keep) reuses the first occurrence's captions.
        let originals = needs.filter { batch[$0].record.duplicateOf == nil }
        let side = captioner.config.vision.imageSize
        if !originals.isEmpty {
            var pixels: [Float] = []
            pixels.reserveCapacity(originals.count * 3 * side * side)
            for i in originals { pixels += batch[i].captionPixels ?? [] }
            let embeddings = pixels.withUnsafeBufferPointer {
                captioner.imageEmbeddings(pixels: $0.baseAddress!, batch: originals.count)
            }
            for (n, i) in originals.enumerated() where !Self.allFinite(embeddings, item: n) {
                Self.invalidOutput(&batch[i].record, "the captioner's image embeddings")
            }
            let prompt = captioner.decoderPrompt(encoded: spec.captioner.prompt.map { captionFolder.tokenizer.encode($0) })
            for j in 0..<spec.captioner.captionsPerImage {
                let seeds = originals.map { RandomSource.derive(spec.captioner.seed, seedIndex(position: batch[$0].record.ordinal, caption: j)) }
                let outputs = try captioner.generate(imageEmbeddings: embeddings, prompt: prompt,
                                                     options: spec.generationOptions, seeds: seeds)
                for (i, ids) in zip(originals, outputs) where batch[i].record.stage == .ingested {
                    batch[i].record.captions.append(SyntheticCaption(text: captionText(ids), tokenIDs: ids))
                }
            }
        }
        for i in needs where batch[i].record.duplicateOf != nil {
            let first = batch[i].record.duplicateOf ?? -1
            if let inBatch = batch.first(where: { $0.record.ordinal == first }) {
                batch[i].record.captions = inBatch.record.captions.map { SyntheticCaption(text: $0.text, tokenIDs: $0.tokenIDs) }
            } else if let stored = try ledger.samples(in: first..<(first + 1)).first {
                batch[i].record.captions = stored.captions.map { SyntheticCaption(text: $0.text, tokenIDs: $0.tokenIDs) }
            }
        }
        for i in needs where batch[i].record.stage == .ingested { batch[i].record.stage = .captioned }
        KillPoint.pass("before-caption-commit")
        try folder.check(attempt)
        try ledger.commit(needs.map { batch[$0].record })
        KillPoint.pass("after-caption-commit")
        return needs.count
    }

    /// The sampling seed's index for caption `caption` of the sample at `position`: unit, position and caption
    /// index in disjoint bits (positions below 2^32, units below 2^28).
    func seedIndex(position: Int, caption: Int) -> UInt64 {
        UInt64(unit) << 36 | UInt64(position) << 4 | UInt64(caption)
    }

    /// The caption text: decoded without special tokens, the prompt stripped as BLIP's own code does.
    func captionText(_ ids: [Int]) -> String {
        let tokenizer = models.captionFolder.tokenizer
        var text = tokenizer.decode(ids, skipSpecialTokens: true)
        if let prompt = spec.captioner.prompt {
            let promptText = tokenizer.decode(tokenizer.encode(prompt), skipSpecialTokens: true)
            if text.hasPrefix(promptText) { text = String(text.dropFirst(promptText.count)) }
        }
        return text.trimmingCharacters(in: .whitespaces)
    }

    // MARK: - Filter

    /// Scores and decides the samples that need it; returns how many took stored scores instead of the model.
    private func filterStage(_ batch: inout [IngestedSample]) throws -> Int {
        let needs = batch.indices.filter { batch[$0].record.stage == .captioned && batch[$0].filterPixels != nil }
        guard !needs.isEmpty else { return 0 }
        let threshold = spec.filter.threshold
        let finiteImages: [Bool]
        let allScores: [[(itm: Float, itc: Float)]]
        var reused = 0
        // Stored scores stand in when every sample has them for exactly its texts (its web text scored as this
        // run scores it, its captions the stored ones).
        if let records = storedRecords(batch, needs), zip(needs, records).allSatisfy({ i, stored in
            stored.captions.map(\.text) == batch[i].record.captions.map(\.text)
                && (batch[i].record.webText == nil) == (stored.webScore == nil)
                && stored.captions.allSatisfy { $0.itm != nil && $0.itc != nil }
        }) {
            reused = needs.count
            finiteImages = needs.map { _ in true }
            allScores = records.map { stored in
                (stored.webScore.map { [(itm: $0.itm, itc: $0.itc)] } ?? []) + stored.captions.map { (itm: $0.itm ?? 0, itc: $0.itc ?? 0) }
            }
        } else {
            let retriever = models.retriever, filterFolder = models.filterFolder
            let side = retriever.config.vision.imageSize
            var pixels: [Float] = []
            pixels.reserveCapacity(needs.count * 3 * side * side)
            for i in needs { pixels += batch[i].filterPixels ?? [] }
            let embeddings = pixels.withUnsafeBufferPointer { retriever.imageEmbeddings(pixels: $0.baseAddress!, batch: needs.count) }
            finiteImages = needs.indices.map { Self.allFinite(embeddings, item: $0) }
            // Every text of every image of the batch in one pass: the web text (if usable) and each synthetic caption.
            let texts: [[[Int]]] = needs.map { i in
                let record = batch[i].record
                return ((record.webText.map { [$0] } ?? []) + record.captions.map(\.text))
                    .map { filterFolder.tokenizer.encode($0, maxLength: spec.filter.maxTextTokens) }
            }
            allScores = try retriever.scores(imageEmbeddings: embeddings, texts: texts).map { $0.map { (itm: $0.itm, itc: $0.itc) } }
        }
        for (n, i) in needs.enumerated() {
            var record = batch[i].record
            let scores = allScores[n]
            guard finiteImages[n], scores.allSatisfy({ $0.itm.isFinite && $0.itc.isFinite }) else {
                Self.invalidOutput(&record, finiteImages[n] ? "the filter's ITM/ITC scores" : "the filter's image embeddings")
                batch[i].record = record
                continue
            }
            var offset = 0
            if record.webText != nil {
                let s = scores[0]
                record.webScore = WebTextScore(itm: s.itm, itc: s.itc, kept: s.itm >= threshold)
                offset = 1
            }
            for c in record.captions.indices {
                let s = scores[offset + c]
                record.captions[c].itm = s.itm
                record.captions[c].itc = s.itc
                record.captions[c].kept = s.itm >= threshold && !record.captions[c].text.isEmpty
            }
            decide(&record)
            record.stage = .done
            batch[i].record = record
        }
        // The kept samples' images go into the ledger with their rows: a unit's output needs no second read.
        let kept = needs.compactMap { i -> (ordinal: Int, fileExtension: String, bytes: [UInt8])? in
            guard batch[i].record.status == .kept, let image = batch[i].image else { return nil }
            return (batch[i].record.ordinal, Merge.imageExtension(batch[i].record), image.bytes)
        }
        KillPoint.pass("before-filter-commit")
        try folder.check(attempt)
        try ledger.commit(needs.map { batch[$0].record }, keptImages: kept)
        KillPoint.pass("after-filter-commit")
        return reused
    }

    /// Whether item `n` of a `(B, N, D)` tensor holds only finite values.
    static func allFinite(_ t: Tensor, item n: Int) -> Bool {
        let size = t.count / max(t.shape[0], 1)
        return UnsafeBufferPointer(start: t.data + n * size, count: size).allSatisfy { $0.isFinite }
    }

    /// A model produced NaN or infinity for this sample: a per-sample failure, never a silent empty caption.
    static func invalidOutput(_ record: inout SampleRecord, _ what: String) {
        record.stage = .done
        record.status = .failed
        record.reason = Reason.modelOutputInvalid
        record.detail = "\(what) are not finite (NaN or infinity) for this image; the model's weights or numerics are broken for it"
        record.captions = []
        record.webScore = nil
    }

    /// Kept if any text survived; the main caption follows `filter.main_caption`.
    func decide(_ record: inout SampleRecord) {
        let web = record.webScore?.kept == true ? record.webText.map { (text: $0, itm: record.webScore?.itm ?? 0, source: "web") } : nil
        let synthetic = record.captions.filter { $0.kept == true }
            .map { (text: $0.text, itm: $0.itm ?? 0, source: "synthetic") }
            .max { $0.itm < $1.itm }
        let chosen: (text: String, itm: Float, source: String)?
        switch spec.filter.mainCaption {
        case .webFirst: chosen = web ?? synthetic
        case .syntheticFirst: chosen = synthetic ?? web
        case .bestITM: chosen = [web, synthetic].compactMap { $0 }.max { $0.itm < $1.itm }
        }
        if let chosen {
            record.status = .kept
            record.mainCaption = chosen.text
            record.mainCaptionSource = chosen.source
        } else {
            record.status = .filtered
            record.reason = Reason.noTextMatched
            record.detail = "no text reached P(match) ≥ \(spec.filter.threshold)"
        }
    }

    // MARK: - The unit's output

    /// Writes the kept images and every row out of the ledger, then `done.json`; removes the ledger after.
    private func finish(samples: Int, seconds: Double, cpuSeconds: Double) throws {
        let histogram = try ledger.histogram()
        let unfinished = histogram.filter { $0.stage != SampleStage.done.rawValue }.reduce(0) { $0 + $1.count }
        let rows = histogram.reduce(0) { $0 + $1.count }
        guard unfinished == 0, rows == samples else {
            throw PipelineError("unit \(JobPlan.unitName(unit)) ended with \(rows) rows for \(samples) samples (\(unfinished) unfinished): the input changed while it was read. Restore it and run again.")
        }
        // 1. The kept images, in position order, as a tar.
        let imagesURL = folder.imagesURL(attempt)
        let imagesTemp = folder.url.appendingPathComponent(".images.\(attempt).tar.partial")
        let writer = try TarWriter(url: imagesTemp, mtime: 0)
        var kept = 0
        try ledger.forEachKeptImage { ordinal, ext, bytes in
            try writer.add(name: "\(ordinal).\(ext)", bytes: bytes)
            kept += 1
        }
        try writer.finish()
        KillPoint.pass("unit-images-written")
        try folder.check(attempt)
        try Durable.rename(imagesTemp, to: imagesURL)

        // 2. Every row, in position order, one JSON object a line.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var records: [UInt8] = []
        var statuses: [String: Int] = [:], reasons: [String: Int] = [:], problems: [String: Int] = [:], filter: [String: Int] = [:]
        try ledger.forEachSample { record in
            records += Array(try encoder.encode(record)) + [0x0A]
            statuses[record.status.rawValue, default: 0] += 1
            if let reason = record.reason { reasons[reason, default: 0] += 1 }
            if let problem = record.webTextProblem { problems[problem, default: 0] += 1 }
            if let web = record.webScore { filter["web_scored", default: 0] += 1; if web.kept { filter["web_kept", default: 0] += 1 } }
            for c in record.captions where c.itm != nil {
                filter["synthetic_scored", default: 0] += 1
                if c.kept == true { filter["synthetic_kept", default: 0] += 1 }
            }
        }
        try Durable.write(records, to: folder.recordsURL(attempt), unique: true)
        KillPoint.pass("unit-records-written")

        // 3. The result, last: its presence means the unit is done.
        let result = UnitResult(
            unit: unit, attempt: attempt, specFingerprint: plan.specFingerprint, captionerSHA256: plan.captionerSHA256,
            filterSHA256: plan.filterSHA256, samples: samples, kept: kept,
            records: folder.recordsURL(attempt).lastPathComponent, recordsSHA256: SHA256.hex(SHA256.hash(records)),
            images: imagesURL.lastPathComponent, imagesSHA256: try SHA256.hash(file: imagesURL), imagesBytes: Int(writer.bytesWritten),
            statuses: statuses, reasons: reasons, webTextProblems: problems, filter: filter, worker: holder.worker, host: holder.host, seconds: seconds,
            cpuSeconds: cpuSeconds, finished: Date().timeIntervalSince1970)
        let resultEncoder = JSONEncoder()
        resultEncoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try folder.check(attempt)
        try Durable.write(Array(try resultEncoder.encode(result)) + [0x0A], to: folder.resultURL, unique: true)
        KillPoint.pass("unit-done-written")
        for suffix in ["", "-journal"] { unlink(folder.ledgerURL(attempt).path + suffix) }
    }
}

/// User + system CPU seconds of this process so far (every thread).
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
