// `capfilt bench`: per-component timings of the engine on real-size checkpoints, with the FLOPs of the vision
// tower and the sgemm throughput OpenBLAS reaches on the same shapes, so the report says how close to the
// machine's GEMM limit we are. Scripts/bench_vs_transformers.py runs transformers on the same work.
import ArgumentParser
import CapfiltBLIP
import CapfiltTensor
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the engine's components (JSON on stdout).")

    @Option(help: "A captioning model folder.")
    var caption: String
    @Option(help: "An ITM model folder.")
    var itm: String
    @Option(help: "Repetitions per measurement (the median is reported).")
    var repeats = 3
    @Option(help: "OpenBLAS threads (default: all cores).")
    var threads: Int?
    @Option(help: "Arithmetic of both models' linear layers: fp32, bf16 or int8.")
    var precision: Precision = .fp32
    @Option(help: "Only these components (comma-separated: decode_preprocess, vision_forward_batch8_per_image, beam3_caption_20_tokens, nucleus_caption_20_tokens, itm_per_text, capfilt_step, capfilt_step_batch8_per_image).")
    var only: String?
    @Argument(help: "Images (one is enough; several are cycled).")
    var images: [String]

    func run() throws {
        BLAS.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
        let captionFolder = try ModelFolder(url: URL(fileURLWithPath: caption))
        let itmFolder = try ModelFolder(url: URL(fileURLWithPath: itm))
        let captioner = try captionFolder.loadCaptioner(precision: precision)
        let retriever = try itmFolder.loadRetriever(precision: precision)
        let encoded = try images.map { try readFile($0) }
        var results: [(String, Double)] = []
        let selected = only.map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
        func wanted(_ name: String) -> Bool { selected?.contains(name) ?? true }

        func median(_ body: () throws -> Void) rethrows -> Double {
            var times: [Double] = []
            for _ in 0..<max(1, repeats) {
                let start = DispatchTime.now().uptimeNanoseconds
                try body()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            return times.sorted()[times.count / 2]
        }

        let pixels = try captionFolder.pixelValues(imageBytes: encoded[0])
        if wanted("decode_preprocess") { results.append(("decode_preprocess", try median { _ = try captionFolder.pixelValues(imageBytes: encoded[0]) })) }
        var embeds = pixels.withUnsafeBufferPointer { captioner.imageEmbeddings(pixels: $0.baseAddress!, batch: 1) }
        let vision = median { embeds = pixels.withUnsafeBufferPointer { captioner.imageEmbeddings(pixels: $0.baseAddress!, batch: 1) } }
        results.append(("vision_forward", vision))  // always: the GFLOP/s figures below need it
        if wanted("vision_forward_batch8_per_image") {
            let eight = Array([[Float]](repeating: pixels, count: 8).joined())
            results.append(("vision_forward_batch8_per_image", median {
                _ = eight.withUnsafeBufferPointer { captioner.imageEmbeddings(pixels: $0.baseAddress!, batch: 8) }
            } / 8))
        }

        var beam = GenerationOptions()
        beam.numBeams = 3
        beam.maxNewTokens = 20
        beam.minNewTokens = 20   // exactly 20 new tokens, as the transformers side does
        let start = [captioner.config.text.bosTokenId]
        // Captions and ITM from pixel values, ViT included, as transformers' generate() and forward() run them;
        // the *_decode_only / *_text_pass_only figures are the same work given the image embeddings.
        func embed() -> Tensor { pixels.withUnsafeBufferPointer { captioner.imageEmbeddings(pixels: $0.baseAddress!, batch: 1) } }
        if wanted("beam3_caption_20_tokens") {
            results.append(("beam3_caption_20_tokens", try median { _ = try captioner.generate(imageEmbeddings: embed(), prompt: start, options: beam) }))
            results.append(("beam3_decode_only", try median { _ = try captioner.generate(imageEmbeddings: embeds, prompt: start, options: beam) }))
        }
        var nucleus = GenerationOptions()
        nucleus.doSample = true
        nucleus.topP = 0.9
        nucleus.maxNewTokens = 20
        nucleus.minNewTokens = 20
        if wanted("nucleus_caption_20_tokens") {
            results.append(("nucleus_caption_20_tokens", try median { _ = try captioner.generate(imageEmbeddings: embed(), prompt: start, options: nucleus, seeds: [1]) }))
            results.append(("nucleus_decode_only", try median { _ = try captioner.generate(imageEmbeddings: embeds, prompt: start, options: nucleus, seeds: [1]) }))
        }

        let itmPixels = try itmFolder.pixelValues(imageBytes: encoded[0])
        let itmEmbeds = itmPixels.withUnsafeBufferPointer { retriever.imageEmbeddings(pixels: $0.baseAddress!, batch: 1) }
        let text = itmFolder.tokenizer.encode("a woman sitting on the beach with her dog", maxLength: 35)
        if wanted("itm_per_text") {
            results.append(("itm_per_text", try median {
                let f = itmPixels.withUnsafeBufferPointer { retriever.imageEmbeddings(pixels: $0.baseAddress!, batch: 1) }
                _ = try retriever.scores(imageEmbeds: f.data, texts: [text])
            }))
            results.append(("itm_text_pass_only", try median { _ = try retriever.scores(imageEmbeds: itmEmbeds.data, texts: [text]) }))
        }

        // The whole CapFilt step for one image: decode, preprocess, caption (nucleus), filter web text + caption.
        if wanted("capfilt_step") { results.append(("capfilt_step", try median {
            let p = try captionFolder.pixelValues(imageBytes: encoded[0])
            let e = p.withUnsafeBufferPointer { captioner.imageEmbeddings(pixels: $0.baseAddress!, batch: 1) }
            let ids = try captioner.generate(imageEmbeddings: e, prompt: start, options: nucleus, seeds: [1])[0]
            let caption = captionFolder.tokenizer.decode(ids, skipSpecialTokens: true)
            let q = try itmFolder.pixelValues(imageBytes: encoded[0])
            let f = q.withUnsafeBufferPointer { retriever.imageEmbeddings(pixels: $0.baseAddress!, batch: 1) }
            _ = try retriever.scores(imageEmbeds: f.data, texts: [text, itmFolder.tokenizer.encode(caption, maxLength: 35)])
        })) }

        // The same step as the pipeline runs it: a batch of images through each model together.
        let batch = 8
        if wanted("capfilt_step_batch8_per_image") {
            // Where the batched step's time goes, per image: the decoding of 8 captions and the filter's text
            // passes for 16 texts (web text + caption per image), image embeddings given.
            let eight = Array([[Float]](repeating: pixels, count: batch).joined())
            let e8 = eight.withUnsafeBufferPointer { captioner.imageEmbeddings(pixels: $0.baseAddress!, batch: batch) }
            var captions: [[Int]] = []
            results.append(("nucleus_batch8_decode_only_per_image", try median {
                captions = try captioner.generate(imageEmbeddings: e8, prompt: start, options: nucleus, seeds: (0..<batch).map(UInt64.init))
            } / Double(batch)))
            let f8 = Array([[Float]](repeating: itmPixels, count: batch).joined()).withUnsafeBufferPointer {
                retriever.imageEmbeddings(pixels: $0.baseAddress!, batch: batch)
            }
            let texts = captions.map { [text, itmFolder.tokenizer.encode(captionFolder.tokenizer.decode($0, skipSpecialTokens: true), maxLength: 35)] }
            results.append(("itm_batch8_text_pass_only_per_image", try median { _ = try retriever.scores(imageEmbeddings: f8, texts: texts) } / Double(batch)))
        }
        if wanted("capfilt_step_batch8_per_image") { results.append(("capfilt_step_batch8_per_image", try median {
            var p: [Float] = [], q: [Float] = []
            for i in 0..<batch {
                p += try captionFolder.pixelValues(imageBytes: encoded[i % encoded.count])
                q += try itmFolder.pixelValues(imageBytes: encoded[i % encoded.count])
            }
            let e = p.withUnsafeBufferPointer { captioner.imageEmbeddings(pixels: $0.baseAddress!, batch: batch) }
            let captions = try captioner.generate(imageEmbeddings: e, prompt: start, options: nucleus, seeds: (0..<batch).map(UInt64.init))
            let f = q.withUnsafeBufferPointer { retriever.imageEmbeddings(pixels: $0.baseAddress!, batch: batch) }
            let texts = captions.map { ids in
                [text, itmFolder.tokenizer.encode(captionFolder.tokenizer.decode(ids, skipSpecialTokens: true), maxLength: 35)]
            }
            _ = try retriever.scores(imageEmbeddings: f, texts: texts)
        } / Double(batch))) }

        let flops = Self.visionFLOPs(captioner.config.vision)
        let gemm = Self.sgemmThroughput(captioner.config.vision, repeats: repeats)
        var fields: [String] = results.map { "\"\($0.0)_s\": \(String(format: "%.4f", $0.1))" }
        fields.append("\"vision_gflop\": \(String(format: "%.2f", flops / 1e9))")
        fields.append("\"vision_gflops_per_s\": \(String(format: "%.1f", flops / 1e9 / vision))")
        fields.append("\"sgemm_gflops_per_s_same_shapes\": \(String(format: "%.1f", gemm))")
        fields.append("\"vision_share_of_sgemm\": \(String(format: "%.3f", flops / 1e9 / vision / gemm))")
        fields.append("\"peak_rss_mb\": \(Self.peakRSSMegabytes())")
        fields.append("\"blas_threads\": \(BLAS.threads)")
        fields.append("\"blas\": \"\(BLAS.configuration)\"")
        print("{" + fields.joined(separator: ", ") + "}")
    }

    /// FLOPs of one image through the vision tower: patch embedding, every layer's GEMMs and attention.
    static func visionFLOPs(_ c: BLIPVisionConfig) -> Double {
        let n = Double(c.sequenceLength), d = Double(c.hiddenSize), i = Double(c.intermediateSize)
        let patches = Double(c.patchesPerSide * c.patchesPerSide), patchLen = Double(3 * c.patchSize * c.patchSize)
        let perLayer = 2 * n * (3 * d * d + d * d + 2 * d * i) + 2 * 2 * n * n * d
        return 2 * patches * patchLen * d + Double(c.numHiddenLayers) * perLayer
    }

    /// sgemm GFLOP/s on the ViT's GEMM shapes, weighted as one image's forward weights them: the patch
    /// embedding, then per layer x·Wᵀ for QKV, projection, fc1 and fc2 (M = tokens) and, per head, the
    /// attention products Q·Kᵀ (N×N×hd) and P·V (N×hd×N). Plain OpenBLAS calls, OpenBLAS's own threading on
    /// the same number of threads, nothing else: what any program calling sgemm on these shapes gets.
    static func sgemmThroughput(_ c: BLIPVisionConfig, repeats: Int) -> Double {
        let m = c.sequenceLength, d = c.hiddenSize, i = c.intermediateSize, hd = c.headDim
        let patches = c.patchesPerSide * c.patchesPerSide, patchLen = 3 * c.patchSize * c.patchSize
        // (m, n, k, transB, how many per image)
        let shapes: [(Int, Int, Int, Bool, Int)] = [
            (patches, d, patchLen, true, 1),
            (m, 3 * d, d, true, c.numHiddenLayers), (m, d, d, true, c.numHiddenLayers),
            (m, i, d, true, c.numHiddenLayers), (m, d, i, true, c.numHiddenLayers),
            (m, m, hd, true, c.numHiddenLayers * c.numAttentionHeads), (m, hd, m, false, c.numHiddenLayers * c.numAttentionHeads),
        ]
        // Every operand sized from the shapes it serves (A is m×k, B k×n, C m×n), so no model shape overruns them.
        let a = [Float](repeating: 0.01, count: shapes.map { $0.0 * $0.2 }.max()!)
        let b = [Float](repeating: 0.01, count: shapes.map { $0.1 * $0.2 }.max()!)
        var out = [Float](repeating: 0, count: shapes.map { $0.0 * $0.1 }.max()!)
        var best = Double.infinity
        for _ in 0..<max(2, repeats) {
            let start = DispatchTime.now().uptimeNanoseconds
            BLAS.withOpenBLASThreading(BLAS.threads) {
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in out.withUnsafeMutableBufferPointer { op in
                    for (mm, n, k, transB, count) in shapes {
                        for _ in 0..<count {
                            BLAS.sgemmCall(transB: transB, m: mm, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!,
                                           ldb: transB ? k : n, c: op.baseAddress!, ldc: n)
                        }
                    }
                } } }
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return visionFLOPs(c) / best / 1e9
    }

    static func peakRSSMegabytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return -1 }
        return kb / 1024
    }
}
