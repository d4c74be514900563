// Timings of the engine's hot paths, run by Scripts/bench_engine.sh in a release build; skipped unless
// CAPFILT_BENCH_CAPTIONER names a model folder. No assertions on time: the script prints the figures.
//
// Environment: CAPFILT_BENCH_CAPTIONER, CAPFILT_BENCH_FILTER (optional, adds the ITM text pass),
// CAPFILT_BENCH_THREADS (comma-separated, default "1,2"), CAPFILT_BENCH_REPEATS (default 5; the fastest run is reported),
// CAPFILT_BENCH_LABEL (printed with every line).
import Foundation
import XCTest
@testable import CapfiltBLIP
import CapfiltTensor

final class EngineBenchmarks: XCTestCase {
    private let environment = ProcessInfo.processInfo.environment

    /// The model folders to time, or a skip.
    func folders() throws -> (captioner: ModelFolder, filter: ModelFolder?) {
        guard let captionerPath = environment["CAPFILT_BENCH_CAPTIONER"] else {
            throw XCTSkip("set CAPFILT_BENCH_CAPTIONER (Scripts/bench_engine.sh does)")
        }
        return (try ModelFolder(url: URL(fileURLWithPath: captionerPath)),
                try environment["CAPFILT_BENCH_FILTER"].map { try ModelFolder(url: URL(fileURLWithPath: $0)) })
    }

    func testEngineTimings() throws {
        let (captioner, filter) = try folders()
        try measure(captioner: captioner.loadCaptioner(), retriever: filter?.loadRetriever(),
                    label: environment["CAPFILT_BENCH_LABEL"] ?? "current")
    }

    /// Prints one BENCH line per thread count.
    func measure(captioner: BLIPCaptioner, retriever: BLIPRetriever?, label: String) throws {
        let repeats = Int(environment["CAPFILT_BENCH_REPEATS"] ?? "") ?? 5
        let threadCounts = (environment["CAPFILT_BENCH_THREADS"] ?? "1,2").split(separator: ",").compactMap { Int($0) }
        let vision = captioner.config.vision, text = captioner.config.text
        let side = vision.imageSize
        // Deterministic pixel values in the normalized range: the timings do not depend on the values.
        let image = (0..<(3 * side * side)).map { Float(($0 * 7919) % 2001) / 1000 - 1 }
        let eight = Array([[Float]](repeating: image, count: 8).joined())

        // The fastest of `repeats` runs, in wall-clock and in CPU seconds of the whole process: on a shared
        // machine other work only ever adds time, and CPU time does not count the time the threads wait for a
        // core, so it shows a change in the work done even when the wall clock is noisy.
        var cpuSeconds: [String: Double] = [:]
        func cpuNow() -> Double {
            var t = timespec()
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
            return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
        }
        func best(_ name: String, per: Double = 1, _ body: () throws -> Void) rethrows -> (String, Double) {
            try body()  // warm-up: first-touch of the mapped weights, workspace growth
            var wall = Double.infinity, cpu = Double.infinity
            for _ in 0..<max(1, repeats) {
                let start = DispatchTime.now().uptimeNanoseconds, cpuStart = cpuNow()
                try body()
                wall = min(wall, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                cpu = min(cpu, cpuNow() - cpuStart)
            }
            cpuSeconds[name] = cpu / per
            return (name, wall / per)
        }

        let saved = BLAS.threads
        defer { BLAS.threads = saved }
        for threads in threadCounts {
            BLAS.threads = threads
            var rows: [(String, Double)] = []
            rows.append(best("vision_b1_s") {
                _ = image.withUnsafeBufferPointer { captioner.imageEmbeddings(pixels: $0.baseAddress!, batch: 1) }
            })
            rows.append(best("vision_b8_per_image_s", per: 8) {
                _ = eight.withUnsafeBufferPointer { captioner.imageEmbeddings(pixels: $0.baseAddress!, batch: 8) }
            })

            // One decoding step (one new token per row, 10 cached positions, cross-attention to the image, LM
            // head) for 1 row (batch 1 greedy), 8 rows (batch 8 greedy) and 24 rows (batch 8, beam 3).
            let embeds = image.withUnsafeBufferPointer { captioner.imageEmbeddings(pixels: $0.baseAddress!, batch: 1) }
            let keyValues = captioner.decoder.imageKeyValues(embeds.data, tokens: vision.sequenceLength)
            let cached = 10
            for r in [1, 8, 24] {
                let cache = captioner.decoder.makeCache(rows: r, capacity: cached + 1)
                let workspace = Text.Workspace(), images = Array(repeating: keyValues, count: r)
                let prompt = (0..<(r * cached)).map { ($0 * 31) % text.vocabSize }
                _ = captioner.decoder.forward(ids: prompt, rows: r, tokens: cached, cache: cache, images: images,
                                              causal: true, workspace: workspace)
                let next = (0..<r).map { ($0 * 17 + 5) % text.vocabSize }
                rows.append(best("decode_step_r\(r)_s") {
                    cache.length = cached
                    let hidden = captioner.decoder.forward(ids: next, rows: r, tokens: 1, cache: cache, images: images,
                                                           causal: true, workspace: workspace)
                    _ = captioner.head.logits(hidden, rows: r, ld: text.hiddenSize, workspace: workspace)
                })
            }
            rows.append(best("image_key_values_b1_s") {
                _ = captioner.decoder.imageKeyValues(embeds.data, tokens: vision.sequenceLength)
            })
            // generate() for 8 images up to the first new token: the images' cross-attention K/V and the prompt step.
            let e8 = eight.withUnsafeBufferPointer { captioner.imageEmbeddings(pixels: $0.baseAddress!, batch: 8) }
            var first = GenerationOptions()
            first.maxNewTokens = 1
            rows.append(try best("caption_b8_first_token_per_image_s", per: 8) {
                _ = try captioner.generate(imageEmbeddings: e8, prompt: [text.bosTokenId], options: first)
            })

            if let retriever {
                // The filter for 8 images × 2 texts of 35 tokens, image embeddings given: the images' K/V and the
                // ITM and ITC text passes.
                let f8 = eight.withUnsafeBufferPointer { retriever.imageEmbeddings(pixels: $0.baseAddress!, batch: 8) }
                let ids = (0..<35).map { 1 + ($0 * 13) % (retriever.config.text.vocabSize - 1) }
                let texts = (0..<8).map { _ in [Array(ids.prefix(12)), ids] }
                rows.append(try best("itm_text_b8_per_image_s", per: 8) { _ = try retriever.scores(imageEmbeddings: f8, texts: texts) })
            }
            let fields = rows.map { "\"\($0.0)\": \(String(format: "%.5f", $0.1)), \"\($0.0.dropLast(2))_cpu_s\": \(String(format: "%.5f", cpuSeconds[$0.0] ?? 0))" }
            print("BENCH {\"label\": \"\(label)\", \"threads\": \(threads), " + fields.joined(separator: ", ") + "}")
        }
    }
}
