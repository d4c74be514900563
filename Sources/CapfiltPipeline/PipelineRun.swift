// The CapFilt run: a reader thread ingests and decodes batches of input samples, a bounded queue hands them
// to the model thread, which captions and filters them; each stage commits a batch in one transaction. A
// killed run started again with the same spec skips committed work and reproduces the same bytes.
//
// Determinism: batch b is always input ordinals [b·B, (b+1)·B) (B = captioner.batch_size), so a resumed run
// forms the same model batches; sampling seeds derive from (seed, ordinal, caption index).
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

/// Counters for progress lines.
public struct RunProgress: Sendable {
    public var read = 0
    public var captioned = 0
    public var finished = 0
    public var kept = 0
    public var failed = 0
    public var skipped = 0
    public var stage = "ingest"
    /// Input sources (shards, lists, folders) read completely, of `sourceCount`.
    public var sourcesDone = 0
    public var sourceCount = 0
    public let started = Date()

    /// Seconds left, estimated from the share of input sources read (nil until one is done).
    public var estimatedSecondsLeft: Double? {
        guard sourceCount > 0, sourcesDone > 0, finished > 0 else { return nil }
        let estimatedTotal = Double(read) * Double(sourceCount) / Double(sourcesDone)
        let rate = Double(finished + skipped) / max(Date().timeIntervalSince(started), 0.001)
        return max(0, estimatedTotal - Double(finished + skipped)) / rate
    }
}

public enum RunOutcome: Sendable, Equatable {
    case completed
    case interrupted
}

public struct PipelineError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public final class PipelineRun: @unchecked Sendable {
    public let spec: PipelineSpec
    public let outputFolder: URL
    public let ledger: Ledger
    let captionFolder: ModelFolder
    let filterFolder: ModelFolder
    let captioner: BLIPCaptioner
    let retriever: BLIPRetriever
    /// Held for the run's lifetime: one process per run folder.
    let folderLock: RunFolderLock
    var log: (String) -> Void

    /// Files capfilt owns in an output folder (a new run removes exactly these).
    public static let ledgerName = "capfilt.sqlite"
    public static let shardFolderName = "shards"
    public static let runManifestName = "capfilt_run.json"

    /// Opens or creates the run in `spec.output.folder`. An existing run with another spec or other weights is
    /// refused unless `newRun`, which discards it; so is a folder another process is using, and an input that
    /// changed since the run read it. `stop` is checked between the slow steps (hashing, loading).
    public init(spec: PipelineSpec, specYAML: String, specPath: String, newRun: Bool, stop: StopFlag = StopFlag(),
                log: @escaping (String) -> Void = { _ in }) throws {
        self.spec = spec
        self.log = log
        outputFolder = spec.resolve(spec.output.folder)
        let fm = FileManager.default
        let ledgerURL = outputFolder.appendingPathComponent(Self.ledgerName)
        try OutputFolder.create(outputFolder)
        // The lock comes before anything in the folder is touched, --new-run's removal included.
        folderLock = try RunFolderLock(folder: outputFolder, purpose: "capfilt run \(specPath)")
        if newRun {
            for name in [Self.ledgerName, Self.ledgerName + "-wal", Self.ledgerName + "-shm", Self.shardFolderName, Self.runManifestName] {
                try? fm.removeItem(at: outputFolder.appendingPathComponent(name))
            }
        }

        captionFolder = try ModelFolder(url: spec.resolve(spec.captioner.model))
        filterFolder = try ModelFolder(url: spec.resolve(spec.filter.model))
        log("hashing model weights")
        let identity = Ledger.RunIdentity(specFingerprint: spec.fingerprint, specYAML: specYAML,
                                          specPath: URL(fileURLWithPath: specPath).standardizedFileURL.path,
                                          captionerSHA256: try captionFolder.weightsDigest(),
                                          filterSHA256: try filterFolder.weightsDigest())
        ledger = try Ledger(path: ledgerURL.path)
        if let recorded = try ledger.identity() {
            var changed: [String] = []
            if recorded.specFingerprint != identity.specFingerprint { changed.append("the spec") }
            if recorded.captionerSHA256 != identity.captionerSHA256 { changed.append("the captioner weights") }
            if recorded.filterSHA256 != identity.filterSHA256 { changed.append("the filter weights") }
            if !changed.isEmpty {
                throw PipelineError("\(outputFolder.path) holds a run made with other settings (\(changed.joined(separator: " and ")) changed). Resuming would mix outputs. Restore the original, choose another output folder, or pass --new-run to discard that run and start over.")
            }
        } else {
            try ledger.recordIdentity(identity)
        }
        try InputIdentity.verifyOrRecord(ledger: ledger, spec: spec)
        KillPoint.pass("before-model-load")
        if stop.isSet { throw CancellationError() }
        log("loading models")
        captioner = try captionFolder.loadCaptioner()
        if stop.isSet { throw CancellationError() }
        retriever = try filterFolder.loadRetriever()
    }

    /// Releases the run folder for another process (or another PipelineRun). The object must not run again.
    public func close() {
        folderLock.release()
    }

    /// Runs (or resumes) every stage, then exports. Returns `.interrupted` if `stop` was set.
    public func run(stop: StopFlag, verification: Exporter.ShardVerification = .automatic,
                    progress: @escaping (RunProgress) -> Void = { _ in }) throws -> RunOutcome {
        let counters = Locked(RunProgress())
        let queue = BoundedQueue<[IngestedSample]>(capacity: 2)
        let readerError = Locked<Error?>(nil)
        let ingestor = Ingestor(spec: spec, captionFolder: captionFolder, filterFolder: filterFolder)
        let batchSize = spec.captioner.batchSize
        let readerDone = DispatchSemaphore(value: 0)

        let reader = Thread { [self] in
            defer { readerDone.signal() }
            do {
                let corpus = try CorpusReader(spec: spec.input, baseDirectory: spec.baseDirectory, maxMemberSize: spec.maxMemberBytes)
                var batch: [InputSample] = []
                func flush() throws {
                    defer { batch = [] }
                    guard !batch.isEmpty else { return }
                    let work = try prepare(batch, ingestor: ingestor)
                    counters.update {
                        $0.read += batch.count
                        $0.skipped += work.skipped
                        $0.sourcesDone = corpus.sourcesDone
                        $0.sourceCount = corpus.sourceCount
                    }
                    if !work.samples.isEmpty && !queue.push(work.samples) { throw CancellationError() }
                }
                while !stop.isSet, let sample = try corpus.next() {
                    batch.append(sample)
                    if (sample.ordinal + 1) % batchSize == 0 { try flush() }
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
                try captionStage(&batch)
                counters.update { $0.captioned += batch.filter { $0.captionPixels != nil }.count; $0.stage = "filter" }
                try filterStage(&batch)
                let snapshot = counters.update { c in
                    c.finished += batch.count
                    c.kept += batch.filter { $0.record.status == .kept }.count
                    c.failed += batch.filter { $0.record.status == .failed }.count
                }
                progress(snapshot)
            }
        }
        if let error = readerError.value { throw error }
        if stop.isSet { return .interrupted }

        progress(counters.update { $0.stage = "export" })
        let exporter = Exporter(spec: spec, ledger: ledger, outputFolder: outputFolder)
        return try exporter.export(stop: stop, verification: verification) ? .completed : .interrupted
    }

    // MARK: - Ingest

    /// Ingests the new samples of one batch (one transaction) and decodes those the model stages still need.
    private func prepare(_ inputs: [InputSample], ingestor: Ingestor) throws -> (samples: [IngestedSample], skipped: Int) {
        guard let first = inputs.first?.ordinal, let last = inputs.last?.ordinal else { return ([], 0) }
        let existing = Dictionary(uniqueKeysWithValues: try ledger.samples(in: first..<(last + 1)).map { ($0.ordinal, $0) })
        var out: [IngestedSample] = []
        var fresh: [SampleRecord] = []
        var skipped = 0
        var files: [InputFileIdentity] = []
        for input in inputs {
            if let record = existing[input.ordinal] {
                try ingestor.checkUnchanged(record, input: input)
                if record.stage == .done { skipped += 1; out.append(IngestedSample(record: record)); continue }
                out.append(try ingestor.redecode(record, input: input))
                continue
            }
            files += InputIdentity.files(of: input)
            let sample = try ingestor.ingest(
                input,
                duplicateImage: { sha in
                    if let inBatch = fresh.first(where: { $0.imageSHA256 == sha && $0.status != .duplicate }) { return inBatch }
                    return try self.ledger.firstSample(withImage: sha, before: first)
                },
                duplicateKey: { source, key in
                    if let inBatch = fresh.first(where: { $0.source == source && $0.sourceKey == key }) { return inBatch.ordinal }
                    return try self.ledger.firstSample(source: source, sourceKey: key, before: first)
                })
            fresh.append(sample.record)
            out.append(sample)
        }
        KillPoint.pass("before-ingest-commit")
        try ledger.commit(fresh, files: files)
        KillPoint.pass("after-ingest-commit")
        // Only samples with model work left go to the model thread.
        let work = out.filter { $0.record.stage != .done }
        return (work, skipped)
    }

    // MARK: - Caption

    private func captionStage(_ batch: inout [IngestedSample]) throws {
        let needs = batch.indices.filter { batch[$0].record.stage == .ingested && batch[$0].captionPixels != nil }
        guard !needs.isEmpty else { return }
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
                let seeds = originals.map { RandomSource.derive(spec.captioner.seed, UInt64(batch[$0].record.ordinal) << 4 | UInt64(j)) }
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
        try ledger.commit(needs.map { batch[$0].record })
        KillPoint.pass("after-caption-commit")
    }

    /// The caption text: decoded without special tokens, the prompt stripped as BLIP's own code does.
    func captionText(_ ids: [Int]) -> String {
        var text = captionFolder.tokenizer.decode(ids, skipSpecialTokens: true)
        if let prompt = spec.captioner.prompt {
            let promptText = captionFolder.tokenizer.decode(captionFolder.tokenizer.encode(prompt), skipSpecialTokens: true)
            if text.hasPrefix(promptText) { text = String(text.dropFirst(promptText.count)) }
        }
        return text.trimmingCharacters(in: .whitespaces)
    }

    // MARK: - Filter

    private func filterStage(_ batch: inout [IngestedSample]) throws {
        let needs = batch.indices.filter { batch[$0].record.stage == .captioned && batch[$0].filterPixels != nil }
        guard !needs.isEmpty else { return }
        let side = retriever.config.vision.imageSize
        var pixels: [Float] = []
        pixels.reserveCapacity(needs.count * 3 * side * side)
        for i in needs { pixels += batch[i].filterPixels ?? [] }
        let embeddings = pixels.withUnsafeBufferPointer { retriever.imageEmbeddings(pixels: $0.baseAddress!, batch: needs.count) }
        let finiteImages = needs.indices.map { Self.allFinite(embeddings, item: $0) }
        let threshold = spec.filter.threshold
        // Every text of every image of the batch in one pass: the web text (if usable) and each synthetic caption.
        let texts: [[[Int]]] = needs.map { i in
            let record = batch[i].record
            return ((record.webText.map { [$0] } ?? []) + record.captions.map(\.text))
                .map { filterFolder.tokenizer.encode($0, maxLength: spec.filter.maxTextTokens) }
        }
        let allScores = try retriever.scores(imageEmbeddings: embeddings, texts: texts)
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
        KillPoint.pass("before-filter-commit")
        try ledger.commit(needs.map { batch[$0].record })
        KillPoint.pass("after-filter-commit")
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
}
