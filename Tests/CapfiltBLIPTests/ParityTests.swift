// The engine against transformers 5.24 on the tiny random checkpoints of Scripts/fixtures/blip.py:
// identical token ids, identical pixel tensors, scores and embeddings within 1e-4.
import Foundation
import XCTest
@testable import CapfiltBLIP
import CapfiltTensor

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/blip")

/// goldens.json, loaded once.
struct Goldens: @unchecked Sendable {
    let images: [String: [String: Any]]
    let texts: [String]
    let prompt: String
    let warpers: [String: Any]

    static let shared: Goldens = {
        let data = try! Data(contentsOf: fixtures.appendingPathComponent("goldens.json"))
        let root = try! JSONSerialization.jsonObject(with: data) as! [String: Any]
        return Goldens(images: root["images"] as! [String: [String: Any]], texts: root["texts"] as! [String],
                       prompt: root["prompt"] as! String, warpers: root["warpers"] as! [String: Any])
    }()

    var imageNames: [String] { images.keys.sorted() }
    func ints(_ image: String, _ key: String) -> [Int] { (images[image]![key] as! [NSNumber]).map(\.intValue) }
    func floats(_ image: String, _ key: String) -> [Float] { Goldens.flatten(images[image]![key]!) }

    static func flatten(_ value: Any) -> [Float] {
        if let n = value as? NSNumber { return [n.floatValue] }
        return (value as! [Any]).flatMap(flatten)
    }
}

/// transformers' pixel_values for a fixture image, as float32 written by the generator.
func goldenPixels(_ name: String) throws -> [Float] {
    let data = try Data(contentsOf: fixtures.appendingPathComponent("pixels/\(name).f32"))
    return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
}

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "\(a.count) vs \(b.count)")
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// Models are loaded once per folder for the whole test run.
final class LoadedModels: @unchecked Sendable {
    static let shared = LoadedModels()
    private var captioners: [String: (ModelFolder, BLIPCaptioner)] = [:]
    private var retrievers: [String: (ModelFolder, BLIPRetriever)] = [:]
    private let lock = NSLock()

    func captioner(_ name: String) throws -> (ModelFolder, BLIPCaptioner) {
        lock.lock(); defer { lock.unlock() }
        if let c = captioners[name] { return c }
        let folder = try ModelFolder(url: fixtures.appendingPathComponent(name))
        let c = (folder, try folder.loadCaptioner())
        captioners[name] = c
        return c
    }

    func retriever(_ name: String) throws -> (ModelFolder, BLIPRetriever) {
        lock.lock(); defer { lock.unlock() }
        if let r = retrievers[name] { return r }
        let folder = try ModelFolder(url: fixtures.appendingPathComponent(name))
        let r = (folder, try folder.loadRetriever())
        retrievers[name] = r
        return r
    }
}

final class ParityTests: XCTestCase {
    let goldens = Goldens.shared

    /// Decode + RGB conversion + Pillow BICUBIC + rescale + normalize: bit-identical to the PIL processor.
    func testPreprocessingIsBitIdentical() throws {
        let (folder, _) = try LoadedModels.shared.captioner("caption-st")
        for name in goldens.imageNames {
            let bytes = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("images/\(name)")))
            let ours = try folder.pixelValues(imageBytes: bytes)
            let theirs = try goldenPixels(name)
            XCTAssertEqual(ours.count, theirs.count, name)
            let differing = zip(ours, theirs).filter { $0.bitPattern != $1.bitPattern }.count
            XCTAssertEqual(differing, 0, "\(name): \(differing) of \(ours.count) pixel values differ")
        }
    }

    func testVisionEmbeddingsMatch() throws {
        for folderName in ["caption-st", "caption-bin"] {
            let (_, model) = try LoadedModels.shared.captioner(folderName)
            var worst: Float = 0
            for name in goldens.imageNames {
                let pixels = try goldenPixels(name)
                let embeds = pixels.withUnsafeBufferPointer { model.imageEmbeddings(pixels: $0.baseAddress!, batch: 1) }
                worst = max(worst, maxAbsDiff(embeds.scalars, goldens.floats(name, "caption_image_embeds")))
            }
            print("[parity] \(folderName) vision embeddings: max abs diff \(worst) over \(goldens.imageNames.count) images")
            XCTAssertLessThan(worst, 1e-4)
        }
    }

    func testTeacherForcedLogitsMatch() throws {
        let (_, model) = try LoadedModels.shared.captioner("caption-st")
        var worst: Float = 0, compared = 0
        for name in goldens.imageNames {
            let pixels = try goldenPixels(name)
            let embeds = pixels.withUnsafeBufferPointer { model.imageEmbeddings(pixels: $0.baseAddress!, batch: 1) }
            let ids = goldens.ints(name, "forced_ids")
            let logits = model.logits(imageEmbeds: embeds.data, ids: ids)
            let v = logits.dim(1)
            var argmaxes: [Int] = [], maxima: [Float] = []
            for t in 0..<ids.count {
                let row = Array(UnsafeBufferPointer(start: logits.row(t), count: v))
                let m = row.max()!
                maxima.append(m)
                argmaxes.append(row.firstIndex(of: m)!)
            }
            XCTAssertEqual(argmaxes, goldens.ints(name, "forced_logits_argmax"), name)
            worst = max(worst, maxAbsDiff(maxima, goldens.floats(name, "forced_logits_max")))
            if goldens.images[name]!["forced_logits_last"] != nil {
                let last = Array(UnsafeBufferPointer(start: logits.row(ids.count - 1), count: v))
                worst = max(worst, maxAbsDiff(last, goldens.floats(name, "forced_logits_last")))
                compared += 1
            }
        }
        print("[parity] LM logits: max abs diff \(worst) (\(compared) full rows of \(goldens.images.count) images)")
        XCTAssertGreaterThan(compared, 0)
        XCTAssertLessThan(worst, 1e-4)
    }

    /// Every generation setting the generator recorded, per image, from both checkpoint formats.
    func testGeneratedTokenIDsAreIdentical() throws {
        let settings: [(String, Bool, (inout GenerationOptions) -> Void)] = [
            ("greedy", false, { _ in }),
            ("greedy_prompt", true, { _ in }),
            ("beam3", false, { $0.numBeams = 3 }),
            ("beam3_prompt", true, { $0.numBeams = 3 }),
            ("beam4_lp06_early", false, { $0.numBeams = 4; $0.lengthPenalty = 0.6; $0.earlyStopping = .always; $0.maxNewTokens = 12 }),
            ("beam3_min5_max8", false, { $0.numBeams = 3; $0.minNewTokens = 5; $0.maxNewTokens = 8 }),
            ("greedy_rep15_min6", false, { $0.repetitionPenalty = 1.5; $0.minNewTokens = 6 }),
            ("greedy_max5", false, { $0.maxNewTokens = 5 }),
        ]
        for folderName in ["caption-st", "caption-bin"] {
            let (folder, model) = try LoadedModels.shared.captioner(folderName)
            let prompt = model.decoderPrompt(encoded: folder.tokenizer.encode(goldens.prompt))
            var identical = 0, total = 0
            for name in goldens.imageNames {
                let pixels = try goldenPixels(name)
                let embeds = pixels.withUnsafeBufferPointer { model.imageEmbeddings(pixels: $0.baseAddress!, batch: 1) }
                for (key, prompted, configure) in settings {
                    var options = GenerationOptions()
                    configure(&options)
                    let ids = try model.generate(imageEmbeddings: embeds, prompt: prompted ? prompt : model.decoderPrompt(encoded: nil),
                                                 options: options)[0]
                    total += 1
                    if ids == goldens.ints(name, key) { identical += 1 } else {
                        XCTFail("\(folderName) \(name) \(key):\n ours   \(ids)\n theirs \(goldens.ints(name, key))")
                    }
                }
            }
            print("[parity] \(folderName): \(identical)/\(total) generated sequences identical to transformers")
        }
    }

    /// Batching images must not change any image's caption.
    func testBatchedGenerationEqualsSingleImageGeneration() throws {
        let (_, model) = try LoadedModels.shared.captioner("caption-st")
        let names = goldens.imageNames
        let pixels = try names.flatMap { try goldenPixels($0) }
        let embeds = pixels.withUnsafeBufferPointer { model.imageEmbeddings(pixels: $0.baseAddress!, batch: names.count) }
        let greedy = try model.generate(imageEmbeddings: embeds, prompt: model.decoderPrompt(encoded: nil), options: GenerationOptions())
        var beam = GenerationOptions(); beam.numBeams = 3
        let beams = try model.generate(imageEmbeddings: embeds, prompt: model.decoderPrompt(encoded: nil), options: beam)
        for (i, name) in names.enumerated() {
            XCTAssertEqual(greedy[i], goldens.ints(name, "greedy"), name)
            XCTAssertEqual(beams[i], goldens.ints(name, "beam3"), name)
        }
    }

    func testCaptionTextDecodesLikeTransformers() throws {
        let (folder, _) = try LoadedModels.shared.captioner("caption-st")
        for name in goldens.imageNames {
            let expected = goldens.images[name]!["caption_text"] as! String
            XCTAssertEqual(folder.tokenizer.decode(goldens.ints(name, "greedy"), skipSpecialTokens: true), expected, name)
        }
    }

    func testITMAndITCMatch() throws {
        for folderName in ["itm-st", "itm-bin"] {
            let (folder, model) = try LoadedModels.shared.retriever(folderName)
            var worstITM: Float = 0, worstITC: Float = 0, worstEmbeds: Float = 0, pairs = 0
            for name in goldens.imageNames {
                let pixels = try goldenPixels(name)
                let embeds = pixels.withUnsafeBufferPointer { model.imageEmbeddings(pixels: $0.baseAddress!, batch: 1) }
                worstEmbeds = max(worstEmbeds, maxAbsDiff(embeds.scalars, goldens.floats(name, "itm_image_embeds")))
                // All texts in one padded batch: padding must not change any score.
                let scores = try model.scores(imageEmbeds: embeds.data, texts: goldens.texts.map { folder.tokenizer.encode($0) })
                worstITM = max(worstITM, maxAbsDiff(scores.map(\.itm), goldens.floats(name, "itm")))
                worstITC = max(worstITC, maxAbsDiff(scores.map(\.itc), goldens.floats(name, "itc")))
                pairs += scores.count
            }
            print("[parity] \(folderName): \(pairs) pairs, ITM max abs diff \(worstITM), ITC \(worstITC), image embeds \(worstEmbeds)")
            XCTAssertLessThan(worstITM, 1e-4)
            XCTAssertLessThan(worstITC, 1e-4)
            XCTAssertLessThan(worstEmbeds, 1e-4)
        }
    }

    /// All images with all their texts in one batched pass: the same scores as transformers per pair.
    func testScoresBatchedAcrossImagesMatch() throws {
        let (folder, model) = try LoadedModels.shared.retriever("itm-st")
        let names = goldens.imageNames
        let pixels = try names.flatMap { try goldenPixels($0) }
        let embeds = pixels.withUnsafeBufferPointer { model.imageEmbeddings(pixels: $0.baseAddress!, batch: names.count) }
        // Different numbers of texts per image, including none.
        let counts = names.indices.map { $0 % 3 == 2 ? 0 : goldens.texts.count - $0 % 3 }
        let texts = counts.map { Array(goldens.texts.prefix($0)).map { folder.tokenizer.encode($0) } }
        let scores = try model.scores(imageEmbeddings: embeds, texts: texts)
        var worst: Float = 0, pairs = 0
        for (i, name) in names.enumerated() {
            XCTAssertEqual(scores[i].count, counts[i])
            let itm = goldens.floats(name, "itm"), itc = goldens.floats(name, "itc")
            for (j, s) in scores[i].enumerated() {
                worst = max(worst, abs(s.itm - itm[j]), abs(s.itc - itc[j]))
                pairs += 1
            }
        }
        print("[parity] batched across images: \(pairs) pairs, max abs diff \(worst)")
        XCTAssertLessThan(worst, 1e-4)
    }
}
