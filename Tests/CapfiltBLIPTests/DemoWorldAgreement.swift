// A reduced precision against fp32 on the demo world (Pipelines/demo: a synthetic scrape and two tiny models
// trained on it, so captions and matches are real): identical greedy and beam-3 captions and where they first
// differ, ITM and ITC differences on the same texts, identical keep decisions, and the demo's quality bar
// (Tests/CapfiltPipelineTests/DemoQualityTests) in each precision. Used by PrecisionTests (asserted) and
// EnginePrecisionBenchmarks (printed for BENCHMARKS.md).
import Foundation
import CapfiltBLIP
import CapfiltTensor

let demoFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Pipelines/demo")

struct DemoWorldAgreement: CustomStringConvertible {
    var samples = 0
    var greedyIdentical = 0, beamIdentical = 0
    /// Per caption that differs: the number of leading ids both have.
    var firstDivergence: [Int] = []
    var itmMaxDiff: Float = 0, itcMaxDiff: Float = 0
    /// Keep decisions (web text and synthetic caption, each P(match) ≥ 0.5 with that precision's own caption).
    var keepDecisions = 0, keepIdentical = 0
    /// The demo bar, per precision: synthetic captions equal to the truth, correct web texts kept, wrong dropped.
    var exactCaptions = [0, 0], correctWebKept = [0, 0], correctWeb = 0, wrongWebDropped = [0, 0], wrongWeb = 0

    var description: String {
        func share(_ a: Int, _ b: Int) -> String { String(format: "%d/%d (%.1f%%)", a, b, 100 * Double(a) / Double(max(b, 1))) }
        let meanDivergence = firstDivergence.isEmpty ? "-" : String(format: "%.1f", Double(firstDivergence.reduce(0, +)) / Double(firstDivergence.count))
        return "\(samples) samples: greedy identical \(share(greedyIdentical, samples)), beam-3 \(share(beamIdentical, samples)), "
            + "first divergence after \(meanDivergence) ids on average (min \(firstDivergence.min().map(String.init) ?? "-")); "
            + "max |ΔITM| \(itmMaxDiff), max |ΔITC| \(itcMaxDiff); keep decisions identical \(share(keepIdentical, keepDecisions)); "
            + "demo bar fp32 / reduced: exact synthetic captions \(share(exactCaptions[0], samples)) / \(share(exactCaptions[1], samples)), "
            + "correct web texts kept \(share(correctWebKept[0], correctWeb)) / \(share(correctWebKept[1], correctWeb)), "
            + "wrong dropped \(share(wrongWebDropped[0], wrongWeb)) / \(share(wrongWebDropped[1], wrongWeb))"
    }

    /// Compares `precision` with fp32 on the first `limit` decodable samples of the demo list, in batches of 8.
    static func measure(_ precision: Precision, limit: Int = .max) throws -> DemoWorldAgreement {
        let corpus = demoFolder.appendingPathComponent("corpus")
        func lines(_ name: String) throws -> [[String: Any]] {
            try String(contentsOf: corpus.appendingPathComponent(name), encoding: .utf8).split(separator: "\n")
                .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        }
        let labels = Dictionary(uniqueKeysWithValues: try lines("labels.jsonl").map { ($0["key"] as! String, $0) })
        let list = try lines("list.jsonl").map { (corpus.appendingPathComponent($0["image"] as! String), $0["caption"] as? String ?? "", labels[$0["key"] as! String] ?? [:]) }
        return try measure(precision, captioner: demoFolder.appendingPathComponent("models/captioner"),
                           filter: demoFolder.appendingPathComponent("models/filter"), samples: list, limit: limit)
    }

    /// Compares `precision` with fp32 on `samples` (image file, web text, demo label or empty), in batches of 8;
    /// samples whose label has no reference caption (corrupt files) or whose image does not decode are skipped
    /// when labels are given.
    static func measure(_ precision: Precision, captioner captionerURL: URL, filter filterURL: URL,
                        samples list: [(URL, String, [String: Any])], limit: Int = .max) throws -> DemoWorldAgreement {
        let captionFolder = try ModelFolder(url: captionerURL)
        let filterFolder = try ModelFolder(url: filterURL)
        let captioners = [try captionFolder.loadCaptioner(), try captionFolder.loadCaptioner(precision: precision)]
        let filters = [try filterFolder.loadRetriever(), try filterFolder.loadRetriever(precision: precision)]

        // Decodable samples with a reference caption (corrupt files have none).
        var samples: [(pixels: [Float], filterPixels: [Float], web: String, label: [String: Any])] = []
        for (url, web, label) in list where samples.count < limit {
            guard label.isEmpty || !((label["reference_caption"] as? String) ?? "").isEmpty,
                  let bytes = try? [UInt8](Data(contentsOf: url)),
                  let pixels = try? captionFolder.pixelValues(imageBytes: bytes),
                  let filterPixels = try? filterFolder.pixelValues(imageBytes: bytes) else { continue }
            samples.append((pixels, filterPixels, web, label))
        }

        var result = DemoWorldAgreement()
        var beam = GenerationOptions()
        beam.numBeams = 3
        for start in stride(from: 0, to: samples.count, by: 8) {
            let batch = Array(samples[start..<min(samples.count, start + 8)])
            let pixels = batch.flatMap(\.pixels), filterPixels = batch.flatMap(\.filterPixels)
            var greedy: [[[Int]]] = [], beams: [[[Int]]] = [], scores: [[MatchScore]] = [], webScores: [[MatchScore]] = []
            for (captioner, filter) in zip(captioners, filters) {
                let embeds = pixels.withUnsafeBufferPointer { captioner.imageEmbeddings(pixels: $0.baseAddress!, batch: batch.count) }
                let prompt = captioner.decoderPrompt(encoded: nil)
                let captions = try captioner.generate(imageEmbeddings: embeds, prompt: prompt, options: GenerationOptions())
                greedy.append(captions)
                beams.append(try captioner.generate(imageEmbeddings: embeds, prompt: prompt, options: beam))
                let filterEmbeds = filterPixels.withUnsafeBufferPointer { filter.imageEmbeddings(pixels: $0.baseAddress!, batch: batch.count) }
                // Each precision scores the web text and its own caption; the web text alone compares the filters.
                let texts = zip(batch, captions).map { sample, ids in
                    [filterFolder.tokenizer.encode(sample.web, maxLength: 35),
                     filterFolder.tokenizer.encode(captionFolder.tokenizer.decode(ids, skipSpecialTokens: true), maxLength: 35)]
                }
                let s = try filter.scores(imageEmbeddings: filterEmbeds, texts: texts)
                scores.append(s.flatMap { $0 })
                webScores.append(s.map { $0[0] })
            }
            for (i, sample) in batch.enumerated() {
                result.samples += 1
                for (identical, lists) in [(\DemoWorldAgreement.greedyIdentical, greedy), (\.beamIdentical, beams)] {
                    if lists[0][i] == lists[1][i] { result[keyPath: identical] += 1 } else {
                        result.firstDivergence.append(zip(lists[0][i], lists[1][i]).prefix { $0 == $1 }.count)
                    }
                }
                let (a, b) = (webScores[0][i], webScores[1][i])
                result.itmMaxDiff = max(result.itmMaxDiff, abs(a.itm - b.itm))
                result.itcMaxDiff = max(result.itcMaxDiff, abs(a.itc - b.itc))
                for t in 0..<2 {
                    result.keepDecisions += 1
                    if (scores[0][2 * i + t].itm >= 0.5) == (scores[1][2 * i + t].itm >= 0.5) { result.keepIdentical += 1 }
                }
                if sample.label.isEmpty { continue }
                let matches = sample.label["web_text_matches"] as? Bool ?? false
                if matches { result.correctWeb += 1 } else { result.wrongWeb += 1 }
                for p in 0..<2 {
                    let keepWeb = scores[p][2 * i].itm >= 0.5
                    if matches && keepWeb { result.correctWebKept[p] += 1 }
                    if !matches && !keepWeb { result.wrongWebDropped[p] += 1 }
                    let caption = captionFolder.tokenizer.decode(greedy[p][i], skipSpecialTokens: true)
                    if caption == sample.label["reference_caption"] as? String { result.exactCaptions[p] += 1 }
                }
            }
        }
        return result
    }
}
