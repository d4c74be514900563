// Logits processors against transformers' warpers on a real first-step distribution, and the properties
// sampling must have: reproducible per seed, independent of batching, top_k=1 equal to greedy.
import XCTest
@testable import CapfiltBLIP
import CapfiltTensor

final class GenerationTests: XCTestCase {
    let goldens = Goldens.shared

    func testWarpersKeepTheSameTokensWithTheSameValues() {
        let input = Goldens.flatten(goldens.warpers["input"]!)
        let cases: [(String, [any LogitsProcessor])] = [
            ("t0.7_k50_p0.9", [Temperature(temperature: 0.7), TopK(k: 50), TopP(p: 0.9)]),
            ("k50_p0.9", [TopK(k: 50), TopP(p: 0.9)]),
            ("k5", [TopK(k: 5)]),
            ("k0_p0.5", [TopP(p: 0.5)]),
            ("t1.3_k50", [Temperature(temperature: 1.3), TopK(k: 50)]),
        ]
        for (label, processors) in cases {
            var scores = input
            scores.withUnsafeMutableBufferPointer { buffer in
                for p in processors { p.process(buffer, context: DecodingContext(tokens: [4000], promptLength: 1)) }
            }
            let expected = goldens.warpers[label] as! [String: Any]
            let keptExpected = (expected["kept"] as! [NSNumber]).map(\.intValue)
            let kept = scores.indices.filter { scores[$0].isFinite }
            XCTAssertEqual(kept, keptExpected, label)
            XCTAssertLessThan(maxAbsDiff(kept.map { scores[$0] }, Goldens.flatten(expected["values"]!)), 1e-6, label)
        }
    }

    func testRepetitionPenaltyMatches() {
        var scores = Goldens.flatten(goldens.warpers["input"]!)
        let ids = (goldens.warpers["rep_ids"] as! [NSNumber]).map(\.intValue)
        scores.withUnsafeMutableBufferPointer {
            RepetitionPenalty(penalty: 1.1).process($0, context: DecodingContext(tokens: ids, promptLength: 1))
        }
        XCTAssertEqual(maxAbsDiff(scores, Goldens.flatten(goldens.warpers["rep1.1"]!)), 0)
    }

    func testKthLargestAgreesWithSorting() {
        var g = RandomSource(seed: 7)
        for _ in 0..<50 {
            let n = Int(g.next() % 200) + 1
            let values = (0..<n).map { _ in Float(Int(g.next() % 21) - 10) }  // many ties
            let k = Int(g.next() % UInt64(n)) + 1
            XCTAssertEqual(kthLargest(values, k), values.sorted(by: >)[k - 1])
        }
    }

    func testSamplingIsReproducibleAndBatchIndependent() throws {
        let (_, model) = try LoadedModels.shared.captioner("caption-st")
        let names = goldens.imageNames
        let pixels = try names.flatMap { try goldenPixels($0) }
        let embeds = pixels.withUnsafeBufferPointer { model.imageEmbeddings(pixels: $0.baseAddress!, batch: names.count) }
        var options = GenerationOptions()
        options.doSample = true
        options.topP = 0.9
        let seeds = names.indices.map { RandomSource.derive(42, UInt64($0)) }
        let prompt = model.decoderPrompt(encoded: nil)
        let first = try model.generate(imageEmbeddings: embeds, prompt: prompt, options: options, seeds: seeds)
        let again = try model.generate(imageEmbeddings: embeds, prompt: prompt, options: options, seeds: seeds)
        XCTAssertEqual(first, again, "same seeds, same captions")
        let otherSeeds = names.indices.map { RandomSource.derive(43, UInt64($0)) }
        let other = try model.generate(imageEmbeddings: embeds, prompt: prompt, options: options, seeds: otherSeeds)
        XCTAssertNotEqual(first, other, "another seed gives other captions")
        // One image alone, with its own seed, gets the caption it got in the batch.
        let single = embeds.data + 2 * embeds.dim(1) * embeds.dim(2)
        let alone = Tensor(shape: [1, embeds.dim(1), embeds.dim(2)], values: Array(UnsafeBufferPointer(start: single, count: embeds.dim(1) * embeds.dim(2))))
        XCTAssertEqual(try model.generate(imageEmbeddings: alone, prompt: prompt, options: options, seeds: [seeds[2]])[0], first[2])
    }

    /// A decoding loop reuses one workspace: buffers are allocated for the prompt step and never again, and
    /// reused buffers (holding the previous step's values) give exactly what fresh ones give.
    func testDecodingStepsReuseTheWorkspace() throws {
        let (folder, model) = try LoadedModels.shared.captioner("caption-st")
        let name = goldens.imageNames[0]
        let pixels = try goldenPixels(name)
        let embeds = pixels.withUnsafeBufferPointer { model.imageEmbeddings(pixels: $0.baseAddress!, batch: 1) }
        let image = model.decoder.imageKeyValues(embeds.data, tokens: embeds.dim(1))
        let c = model.config.text.hiddenSize, v = model.config.text.vocabSize
        let prompt = model.decoderPrompt(encoded: folder.tokenizer.encode(goldens.prompt))
        let steps = 12, rows = 3
        let shared = Text.Workspace()
        let cacheA = model.decoder.makeCache(rows: rows, capacity: prompt.count + steps)
        let cacheB = model.decoder.makeCache(rows: rows, capacity: prompt.count + steps)
        var input = Array(repeating: prompt, count: rows).flatMap { $0 }, tokens = prompt.count
        var allocationsAfterPrompt = 0
        for step in 0..<steps {
            let images = Array(repeating: image, count: rows)
            let hidden = model.decoder.forward(ids: input, rows: rows, tokens: tokens, cache: cacheA, images: images,
                                               causal: true, workspace: shared)
            let logits = model.head.logits(hidden + (tokens - 1) * c, rows: rows, ld: tokens * c, workspace: shared)
            let reused = Array(UnsafeBufferPointer(start: logits, count: rows * v))
            let fresh = Text.Workspace()
            let freshHidden = model.decoder.forward(ids: input, rows: rows, tokens: tokens, cache: cacheB, images: images,
                                                    causal: true, workspace: fresh)
            let freshLogits = model.head.logits(freshHidden + (tokens - 1) * c, rows: rows, ld: tokens * c, workspace: fresh)
            XCTAssertEqual(reused, Array(UnsafeBufferPointer(start: freshLogits, count: rows * v)), "step \(step)")
            if step == 0 { allocationsAfterPrompt = shared.allocations }
            // Next input: each row's argmax, so the rows differ from step to step.
            input = (0..<rows).map { r in (0..<v).max { reused[r * v + $0] < reused[r * v + $1] }! + r }.map { min($0, v - 1) }
            tokens = 1
        }
        XCTAssertGreaterThan(allocationsAfterPrompt, 0)
        XCTAssertEqual(shared.allocations, allocationsAfterPrompt, "no buffer allocated after the prompt step")
    }

    /// capfilt owns the threads and splits work into pieces that do not depend on their number, so the
    /// outputs do not either: a run resumed with another --threads computes the same bytes, on 2 cores or 64.
    func testResultsDoNotDependOnTheThreadCount() throws {
        let (_, model) = try LoadedModels.shared.captioner("caption-st")
        let (itmFolder, retriever) = try LoadedModels.shared.retriever("itm-st")
        let names = goldens.imageNames
        let pixels = try names.flatMap { try goldenPixels($0) }
        var options = GenerationOptions()
        options.numBeams = 3
        options.maxNewTokens = 12
        let texts = names.map { _ in goldens.texts.prefix(3).map { itmFolder.tokenizer.encode($0, maxLength: 35) } }
        func everything() throws -> ([Float], [[Int]], [[MatchScore]]) {
            let embeds = pixels.withUnsafeBufferPointer { model.imageEmbeddings(pixels: $0.baseAddress!, batch: names.count) }
            let captions = try model.generate(imageEmbeddings: embeds, prompt: model.decoderPrompt(encoded: nil), options: options)
            let itmEmbeds = pixels.withUnsafeBufferPointer { retriever.imageEmbeddings(pixels: $0.baseAddress!, batch: names.count) }
            return (embeds.scalars, captions, try retriever.scores(imageEmbeddings: itmEmbeds, texts: texts))
        }
        let saved = (BLAS.threads, BLAS.splitThreshold, Attention.parallelThreshold)
        defer { (BLAS.threads, BLAS.splitThreshold, Attention.parallelThreshold) = saved }
        BLAS.splitThreshold = 0          // split every product and spread every attention, even the tiny models'
        Attention.parallelThreshold = 0
        BLAS.threads = 1
        let one = try everything()
        for threads in [2, 3, 64] {
            BLAS.threads = threads
            let other = try everything()
            XCTAssertEqual(one.0, other.0, "image embeddings, \(threads) threads")
            XCTAssertEqual(one.1, other.1, "captions, \(threads) threads")
            XCTAssertEqual(one.2, other.2, "ITM/ITC scores, \(threads) threads")
        }
    }

    func testSamplingWithTopKOneIsGreedy() throws {
        let (_, model) = try LoadedModels.shared.captioner("caption-st")
        for name in goldens.imageNames.prefix(3) {
            let pixels = try goldenPixels(name)
            let embeds = pixels.withUnsafeBufferPointer { model.imageEmbeddings(pixels: $0.baseAddress!, batch: 1) }
            var options = GenerationOptions()
            options.doSample = true
            options.topK = 1
            let ids = try model.generate(imageEmbeddings: embeds, prompt: model.decoderPrompt(encoded: nil), options: options, seeds: [99])
            XCTAssertEqual(ids[0], goldens.ints(name, "greedy"), name)
        }
    }

    func testInvalidOptionsAreRefusedWithTheFlagName() {
        var o = GenerationOptions(); o.topP = 0
        XCTAssertThrowsError(try o.validate()) { XCTAssertTrue("\($0)".contains("--top-p")) }
        o = GenerationOptions(); o.minNewTokens = 30
        XCTAssertThrowsError(try o.validate()) { XCTAssertTrue("\($0)".contains("--min-new-tokens")) }
        o = GenerationOptions(); o.numBeams = 3; o.doSample = true
        XCTAssertThrowsError(try o.validate())
    }

    func testTooLongGenerationIsRefused() throws {
        let (_, model) = try LoadedModels.shared.captioner("caption-st")
        let pixels = try goldenPixels(goldens.imageNames[0])
        let embeds = pixels.withUnsafeBufferPointer { model.imageEmbeddings(pixels: $0.baseAddress!, batch: 1) }
        var options = GenerationOptions()
        options.maxNewTokens = model.config.text.maxPositionEmbeddings  // + [DEC] exceeds the position table
        XCTAssertThrowsError(try model.generate(imageEmbeddings: embeds, prompt: [model.config.text.bosTokenId], options: options)) {
            XCTAssertEqual($0 as? BLIPError, .sequenceTooLong(length: options.maxNewTokens + 1, limit: model.config.text.maxPositionEmbeddings))
        }
    }
}
