// port of transformers' BlipForConditionalGeneration.generate with GenerationMixin's greedy, sampling and
// beam-search loops (transformers 5.24, generation/utils.py), specialised to BLIP: the vision tower runs once
// per image, cross-attention K/V once per image for all beams, self-attention K/V are cached.
//
// Dimensions: B images, K beams, R = B·K rows, V vocabulary, C text width, N image tokens, Dv vision width.
import Foundation
import CapfiltTensor
import CapfiltWeights

/// BLIP's image captioner: ViT + BERT decoder with cross-attention + LM head.
public final class BLIPCaptioner: Sendable {
    public let config: BLIPConfig
    public let vision: VisionTransformer
    let decoder: TextTransformer
    let head: LanguageModelHead

    /// The arithmetic of the linear layers (`Precision`), chosen at load.
    public let precision: Precision

    /// Reads every tensor of a `BlipForConditionalGeneration` state dict, strictly, and converts the linear
    /// layers' weights once if `precision` is not fp32.
    public init(config: BLIPConfig, weights: StrictWeightReader, precision: Precision = .fp32) throws {
        try precision.requireSupport()
        self.config = config
        self.precision = precision
        vision = try VisionTransformer(config: config.vision, weights: weights)
        decoder = try TextTransformer(config: config.text, weights: weights, prefix: "text_decoder.bert.")
        head = try LanguageModelHead(config: config.text, weights: weights, prefix: "text_decoder.cls.predictions.",
                                     wordEmbeddings: decoder.wordEmbeddings)
        guard decoder.hasCrossAttention else {
            throw BLIPError.invalidConfig(path: "text_decoder", reason: "the decoder has no cross-attention weights")
        }
        try weights.finish(ignoring: { $0.hasSuffix(".position_ids") })
        if precision != .fp32 {
            vision.reduce(to: precision)
            decoder.reduce(to: precision)
            head.reduce(to: precision)
        }
    }

    /// The decoder prompt transformers builds from the processor's ids: `[CLS] prompt [SEP]` with position 0
    /// overwritten by [DEC] (bos) and the last token dropped. No prompt gives `[DEC]`.
    public func decoderPrompt(encoded: [Int]?) -> [Int] {
        guard let encoded, encoded.count >= 2 else { return [config.text.bosTokenId] }
        var ids = Array(encoded.dropLast())
        ids[0] = config.text.bosTokenId
        return ids
    }

    /// Image embeddings `(B, N, Dv)` for `(B, 3, S, S)` pixel values.
    public func imageEmbeddings(pixels: UnsafePointer<Float>, batch: Int) -> Tensor {
        vision.forward(pixels: pixels, batch: batch)
    }

    /// Teacher-forced logits `(T, V)` for one image and a token sequence (forward() semantics: ids as given).
    /// - imageEmbeds: `(N, Dv)` of one image.
    public func logits(imageEmbeds: UnsafePointer<Float>, ids: [Int]) -> Tensor {
        let image = decoder.imageKeyValues(imageEmbeds, tokens: config.vision.sequenceLength)
        let cache = decoder.makeCache(rows: 1, capacity: ids.count), workspace = Text.Workspace()
        let hidden = decoder.forward(ids: ids, rows: 1, tokens: ids.count, cache: cache, images: [image], causal: true,
                                     workspace: workspace)
        let logits = head.logits(hidden, rows: ids.count, ld: config.text.hiddenSize, workspace: workspace)
        return Tensor(shape: [ids.count, head.vocabularySize]) { $0.baseAddress!.update(from: logits, count: $0.count) }
    }

    /// Captions for a batch of images, each exactly what `generate()` returns for that image alone:
    /// the prompt ids, then the generated ids, with [SEP] when it was emitted.
    ///
    /// - imageEmbeddings: `(B, N, Dv)`.
    /// - prompt: decoder prompt from `decoderPrompt(encoded:)`, shared by every image.
    /// - seeds: one per image, used when sampling.
    public func generate(imageEmbeddings: Tensor, prompt: [Int], options: GenerationOptions,
                         seeds: [UInt64] = []) throws -> [[Int]] {
        try options.validate()
        let b = imageEmbeddings.dim(0), n = imageEmbeddings.dim(1), dv = imageEmbeddings.dim(2)
        precondition(n == config.vision.sequenceLength && dv == config.vision.hiddenSize, "imageEmbeddings \(imageEmbeddings.shape)")
        guard !prompt.isEmpty, prompt.allSatisfy({ $0 >= 0 && $0 < config.text.vocabSize }) else {
            throw BLIPError.invalidArgument("the decoder prompt must be non-empty token ids below \(config.text.vocabSize)")
        }
        let maxLength = prompt.count + options.maxNewTokens
        guard maxLength <= config.text.maxPositionEmbeddings else {
            throw BLIPError.sequenceTooLong(length: maxLength, limit: config.text.maxPositionEmbeddings)
        }
        let images = decoder.imageKeyValues(imageEmbeddings.data, images: b, tokens: n)
        if options.numBeams > 1 {
            return beamSearch(images: images, prompt: prompt, maxLength: maxLength, options: options)
        }
        let seeds = seeds.count == b ? seeds : (0..<b).map { UInt64($0) }
        return sampleOrGreedy(images: images, prompt: prompt, maxLength: maxLength, options: options, seeds: seeds)
    }

    // MARK: - Decoding loops

    private var eos: Int { config.text.sepTokenId }

    /// Penalties and length constraints (`_get_logits_processor`, first part), then the sampling warpers.
    private func processors(_ options: GenerationOptions, sampling: Bool, minTokensToKeep: Int) -> [any LogitsProcessor] {
        var list: [any LogitsProcessor] = []
        if options.repetitionPenalty != 1 { list.append(RepetitionPenalty(penalty: options.repetitionPenalty)) }
        if options.minNewTokens > 0 { list.append(MinNewTokens(minNewTokens: options.minNewTokens, eosTokenID: eos)) }
        if sampling {
            if options.temperature != 1 { list.append(Temperature(temperature: options.temperature)) }
            if options.topK != 0 { list.append(TopK(k: options.topK, minTokensToKeep: minTokensToKeep)) }
            if options.topP < 1 { list.append(TopP(p: options.topP, minTokensToKeep: minTokensToKeep)) }
        }
        return list
    }

    /// `_sample`: greedy argmax (first maximum) or a draw from the warped distribution, one row per image.
    private func sampleOrGreedy(images: [Text.ImageKeyValues], prompt: [Int], maxLength: Int,
                                options: GenerationOptions, seeds: [UInt64]) -> [[Int]] {
        let r = images.count, v = config.text.vocabSize, c = config.text.hiddenSize
        let procs = processors(options, sampling: options.doSample, minTokensToKeep: 1)
        var rngs = seeds.map { RandomSource(seed: $0) }
        var sequences = Array(repeating: prompt, count: r)
        var finished = Array(repeating: false, count: r)
        let cache = decoder.makeCache(rows: r, capacity: maxLength), workspace = Text.Workspace()
        var input = Array(repeating: prompt, count: r).flatMap { $0 }
        var tokens = prompt.count
        while true {
            let hidden = decoder.forward(ids: input, rows: r, tokens: tokens, cache: cache, images: images, causal: true,
                                         workspace: workspace)
            // Only the last position of each row predicts the next token.
            let logits = head.logits(hidden + (tokens - 1) * c, rows: r, ld: tokens * c, workspace: workspace)
            input.removeAll(keepingCapacity: true)
            for row in 0..<r {
                if finished[row] { input.append(config.text.padTokenId); continue }
                let scores = UnsafeMutableBufferPointer(start: logits + row * v, count: v)
                let context = DecodingContext(tokens: sequences[row], promptLength: prompt.count)
                for p in procs { p.process(scores, context: context) }
                let next = options.doSample ? draw(scores, &rngs[row]) : argmax(scores)
                sequences[row].append(next)
                input.append(next)
                if next == eos { finished[row] = true }
            }
            tokens = 1
            if finished.allSatisfy({ $0 }) || cache.length + 1 >= maxLength { break }
        }
        return sequences
    }

    /// `_beam_search` state of one image: transformers keeps exactly this per batch item, and every mask and
    /// stop condition is per item, so images can share one batched forward without changing any result.
    private struct BeamState {
        var running: [[Int]]
        var runningScores: [Float]
        var finished: [[Int]]
        var finishedScores: [Float]
        var isFinished: [Bool]
        var heuristicUnsatisfied = true
        var done = false

        init(prompt: [Int], beams k: Int) {
            running = Array(repeating: prompt, count: k)
            runningScores = [Float](repeating: -1e9, count: k)
            runningScores[0] = 0
            finished = Array(repeating: [], count: k)
            finishedScores = [Float](repeating: -1e9, count: k)
            isFinished = [Bool](repeating: false, count: k)
        }
    }

    /// `_beam_search` for a batch of images: B·K rows through one forward per step, the selection logic
    /// per image as transformers does it.
    private func beamSearch(images: [Text.ImageKeyValues], prompt: [Int], maxLength: Int, options: GenerationOptions) -> [[Int]] {
        let k = options.numBeams, v = config.text.vocabSize, c = config.text.hiddenSize, b = images.count
        let rows = b * k
        let keep = 2 * k  // beams_to_keep: one EOS id, so (1 + 1) · num_beams candidates
        let promptLength = prompt.count
        let procs = processors(options, sampling: false, minTokensToKeep: 1)
        let lp = Double(options.lengthPenalty)

        var states = Array(repeating: BeamState(prompt: prompt, beams: k), count: b)
        let cache = decoder.makeCache(rows: rows, capacity: maxLength), workspace = Text.Workspace()
        let rowImages = images.flatMap { Array(repeating: $0, count: k) }
        var input = Array(repeating: prompt, count: rows).flatMap { $0 }
        var tokens = promptLength
        var curLen = promptLength
        let logProbs = Tensor(zeros: [k, v])
        while true {
            let hidden = decoder.forward(ids: input, rows: rows, tokens: tokens, cache: cache, images: rowImages, causal: true,
                                         workspace: workspace)
            let logits = head.logits(hidden + (tokens - 1) * c, rows: rows, ld: tokens * c, workspace: workspace)
            var parents = Array(0..<rows)
            for img in 0..<b where !states[img].done {
                let chosen = step(&states[img], logits: logits, firstRow: img * k, logProbs: logProbs, beams: k, keep: keep,
                                  curLen: curLen, promptLength: promptLength, maxLength: maxLength, processors: procs,
                                  lengthPenalty: lp, earlyStopping: options.earlyStopping)
                for (j, parent) in chosen.enumerated() { parents[img * k + j] = img * k + parent }
            }
            cache.reorder(parents)
            curLen += 1
            if states.allSatisfy(\.done) { break }
            input.removeAll(keepingCapacity: true)
            for state in states { for beam in state.running { input.append(state.done ? config.text.padTokenId : (beam.last ?? config.text.padTokenId)) } }
            tokens = 1
        }
        return states.map { $0.finished[0] }
    }

    /// One beam-search step of one image: scores its K rows of logits, updates running and finished
    /// hypotheses and the stop conditions, and returns each new running beam's parent (0..<K).
    private func step(_ s: inout BeamState, logits: UnsafePointer<Float>, firstRow: Int, logProbs: Tensor, beams k: Int, keep: Int,
                      curLen: Int, promptLength: Int, maxLength: Int, processors procs: [any LogitsProcessor],
                      lengthPenalty lp: Double, earlyStopping: EarlyStopping) -> [Int] {
        let v = config.text.vocabSize
        // Accumulated log-probabilities of every (beam, token) continuation.
        for beam in 0..<k {
            let row = logProbs.row(beam)
            Ops.logSoftmax(logits + (firstRow + beam) * v, count: v, into: row)
            let buffer = UnsafeMutableBufferPointer(start: row, count: v)
            let context = DecodingContext(tokens: s.running[beam], promptLength: promptLength)
            for p in procs { p.process(buffer, context: context) }
            let base = s.runningScores[beam]
            for j in 0..<v { row[j] += base }
        }
        let top = topCandidates(logProbs.data, count: k * v, keep: keep)  // (score, flat index), descending
        let hits: [Bool] = top.map { $0.index % v == eos || curLen + 1 >= maxLength }

        // Running beams: the best K candidates that did not stop (a stop costs -1e9, as in transformers).
        let penalized: [Float] = (0..<keep).map { top[$0].score + (hits[$0] ? -1e9 : 0) }
        var parents: [Int] = [], nextRunning: [[Int]] = [], nextScores: [Float] = []
        for i in descendingOrder(penalized).prefix(k) {
            let beam = top[i].index / v
            parents.append(beam)
            nextRunning.append(s.running[beam] + [top[i].index % v])
            nextScores.append(penalized[i])
        }

        // Finished hypotheses: candidates among the top K that hit a stop, scored by length.
        let generated = Float(pow(Double(curLen + 1 - promptLength), lp))
        let full = s.isFinished.allSatisfy { $0 } && earlyStopping == .always
        var merged: [(score: Float, seq: [Int], done: Bool)] = (0..<k).map { (s.finishedScores[$0], s.finished[$0], s.isFinished[$0]) }
        for i in 0..<keep {
            var score = top[i].score / generated
            if full { score += -1e9 }
            if !s.heuristicUnsatisfied { score += -1e9 }
            let justFinished = hits[i] && i < k
            if !justFinished { score += -1e9 }
            merged.append((score, s.running[top[i].index / v] + [top[i].index % v], justFinished))
        }
        let best = descendingOrder(merged.map(\.score)).prefix(k)
        s.finished = best.map { merged[$0].seq }
        s.finishedScores = best.map { merged[$0].score }
        s.isFinished = best.map { merged[$0].done }
        s.running = nextRunning
        s.runningScores = nextScores

        // _check_early_stop_heuristic (with the length after this step), then the loop conditions.
        let length = curLen + 1
        let hypothetical = earlyStopping == .never && lp > 0 ? maxLength - promptLength : length - promptLength
        let bestPossible = s.runningScores[0] / Float(pow(Double(hypothetical), lp))
        let worstFinished = s.finishedScores.min() ?? -1e9
        s.heuristicUnsatisfied = s.heuristicUnsatisfied && s.isFinished.contains { bestPossible > ($0 ? worstFinished : -1e9) }
        let openBeam = !(s.isFinished.allSatisfy { $0 } && earlyStopping == .always)
        let validContinuations = !hits.allSatisfy { $0 }
        s.done = !(s.heuristicUnsatisfied && openBeam && validContinuations)
        return parents
    }

    /// Indices of `values` from largest to smallest, ties by lower index (torch.topk's order on the CPU).
    private func descendingOrder(_ values: [Float]) -> [Int] {
        values.indices.sorted { (a: Int, b: Int) -> Bool in
            values[a] > values[b] || (values[a] == values[b] && a < b)
        }
    }

    private func argmax(_ scores: UnsafeMutableBufferPointer<Float>) -> Int {
        var best = 0
        for i in 1..<scores.count where scores[i] > scores[best] { best = i }
        return best
    }

    /// One draw from softmax(scores) (what `torch.multinomial` does, with our own seeded generator).
    private func draw(_ scores: UnsafeMutableBufferPointer<Float>, _ rng: inout RandomSource) -> Int {
        Softmax.inPlace(scores)
        let u = rng.nextUnit()
        var cumulative = 0.0, last = 0
        for i in scores.indices where scores[i] > 0 {
            cumulative += Double(scores[i])
            last = i
            if u < cumulative { return i }
        }
        return last
    }

    /// The `keep` largest of `count` scores, descending, ties broken by lower index (as torch.topk on CPU).
    private func topCandidates(_ scores: UnsafePointer<Float>, count: Int, keep: Int) -> [(score: Float, index: Int)] {
        var top: [(score: Float, index: Int)] = []
        top.reserveCapacity(keep + 1)
        for i in 0..<count {
            let s = scores[i]
            if top.count == keep, let last = top.last, !(s > last.score) { continue }
            var pos = top.count
            while pos > 0 && top[pos - 1].score < s { pos -= 1 }
            top.insert((s, i), at: pos)
            if top.count > keep { top.removeLast() }
        }
        return top
    }
}
