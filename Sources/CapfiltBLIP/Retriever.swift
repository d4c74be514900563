// port of transformers' BlipForImageTextRetrieval: the ITM head (text encoder with cross-attention to the
// image, 2-way classifier on [CLS]) and ITC (text encoder alone, cosine of the normalized projections).
// The vision tower runs once per image for all of its texts.
//
// Dimensions: B images, R texts, T tokens, C text width, N image tokens, Dv vision width, E ITC width (256).
import Foundation
import CapfiltTensor
import CapfiltWeights

/// Scores of one image–text pair.
public struct MatchScore: Sendable, Equatable {
    /// P(match): softmax of the ITM logits, index 1.
    public let itm: Float
    /// Cosine similarity of the ITC projections (no temperature).
    public let itc: Float
}

/// BLIP's image–text matching model.
public final class BLIPRetriever: Sendable {
    public let config: BLIPConfig
    public let vision: VisionTransformer
    let encoder: TextTransformer
    let visionProjectionWeight: Tensor, visionProjectionBias: Tensor  // (E, Dv), (E)
    let textProjectionWeight: Tensor, textProjectionBias: Tensor      // (E, C), (E)
    let itmWeight: Tensor, itmBias: Tensor                            // (2, C), (2)

    /// The arithmetic of the towers' linear layers (`Precision`), chosen at load. The ITC projections and the
    /// ITM head (a few products of a few rows) stay fp32.
    public let precision: Precision

    /// Reads every tensor of a `BlipForImageTextRetrieval` state dict, strictly, and converts the towers'
    /// linear weights once if `precision` is not fp32.
    public init(config: BLIPConfig, weights: StrictWeightReader, precision: Precision = .fp32) throws {
        try precision.requireSupport()
        self.config = config
        self.precision = precision
        let e = config.imageTextHiddenSize, c = config.text.hiddenSize
        vision = try VisionTransformer(config: config.vision, weights: weights)
        encoder = try TextTransformer(config: config.text, weights: weights, prefix: "text_encoder.")
        visionProjectionWeight = try weights.tensor("vision_proj.weight", shape: [e, config.vision.hiddenSize])
        visionProjectionBias = try weights.tensor("vision_proj.bias", shape: [e])
        textProjectionWeight = try weights.tensor("text_proj.weight", shape: [e, c])
        textProjectionBias = try weights.tensor("text_proj.bias", shape: [e])
        itmWeight = try weights.tensor("itm_head.weight", shape: [2, c])
        itmBias = try weights.tensor("itm_head.bias", shape: [2])
        guard encoder.hasCrossAttention else {
            throw BLIPError.invalidConfig(path: "text_encoder", reason: "the text encoder has no cross-attention weights, so ITM cannot run")
        }
        try weights.finish(ignoring: { $0.hasSuffix(".position_ids") })
        if precision != .fp32 {
            vision.reduce(to: precision)
            encoder.reduce(to: precision)
        }
    }

    /// Image embeddings `(B, N, Dv)` for `(B, 3, S, S)` pixel values.
    public func imageEmbeddings(pixels: UnsafePointer<Float>, batch: Int) -> Tensor {
        vision.forward(pixels: pixels, batch: batch)
    }

    /// ITM and ITC scores of one image against several texts.
    /// - imageEmbeds: `(N, Dv)` of one image.
    /// - texts: token ids as the processor gives them (`[CLS] … [SEP]`, used as-is).
    public func scores(imageEmbeds: UnsafePointer<Float>, texts: [[Int]]) throws -> [MatchScore] {
        let n = config.vision.sequenceLength, dv = config.vision.hiddenSize
        let one = Tensor(zeros: [1, n, dv])
        one.data.update(from: imageEmbeds, count: n * dv)
        return try scores(imageEmbeddings: one, texts: [texts])[0]
    }

    /// ITM and ITC scores of a batch of images, each against its own texts, in one text pass for all of them
    /// (every row still cross-attends to its own image; padding is masked, so rows equal their unbatched runs).
    /// - imageEmbeddings: `(B, N, Dv)`.
    /// - texts: per image, token ids as the processor gives them.
    public func scores(imageEmbeddings: Tensor, texts: [[[Int]]]) throws -> [[MatchScore]] {
        let b = imageEmbeddings.dim(0), n = config.vision.sequenceLength, dv = config.vision.hiddenSize
        precondition(texts.count == b && imageEmbeddings.dim(1) == n && imageEmbeddings.dim(2) == dv, "scores: bad shapes")
        let all = texts.flatMap { $0 }
        guard !all.isEmpty else { return texts.map { _ in [] } }
        let c = config.text.hiddenSize, e = config.imageTextHiddenSize, r = all.count
        let longest = all.map(\.count).max() ?? 0
        guard all.allSatisfy({ !$0.isEmpty }) else { throw BLIPError.invalidArgument("a text has no tokens") }
        guard longest <= config.text.maxPositionEmbeddings else {
            throw BLIPError.sequenceTooLong(length: longest, limit: config.text.maxPositionEmbeddings)
        }
        guard all.allSatisfy({ $0.allSatisfy { $0 >= 0 && $0 < config.text.vocabSize } }) else {
            throw BLIPError.invalidArgument("a text token id is outside the vocabulary of \(config.text.vocabSize)")
        }
        // Right-pad to the longest text; padded keys are masked.
        var ids: [Int] = []
        for t in all { ids += t + Array(repeating: config.text.padTokenId, count: longest - t.count) }
        let lengths = all.map(\.count)

        // ITM: cross-attention to each row's image (K/V once per image), classifier on [CLS].
        // The images that have texts, side by side, so their K/V are one product per layer.
        let scored = texts.indices.filter { !texts[$0].isEmpty }
        let gathered = scored.count == b ? imageEmbeddings : Tensor(zeros: [scored.count, n, dv])
        if scored.count < b {
            for (slot, i) in scored.enumerated() {
                (gathered.data + slot * n * dv).update(from: imageEmbeddings.data + i * n * dv, count: n * dv)
            }
        }
        let keyValues = encoder.imageKeyValues(gathered.data, images: scored.count, tokens: n)
        var rowImages: [Text.ImageKeyValues] = []
        for (slot, i) in scored.enumerated() { rowImages += Array(repeating: keyValues[slot], count: texts[i].count) }
        let workspace = Text.Workspace()  // both passes: the ITM hidden states are used up before the ITC pass
        let itmHidden = encoder.forward(ids: ids, rows: r, tokens: longest, cache: encoder.makeCache(rows: r, capacity: longest),
                                        images: rowImages, causal: false, validLengths: lengths, workspace: workspace)
        let itmLogits = Tensor(zeros: [r, 2])
        Ops.linear(itmHidden, rows: r, ldx: longest * c, weight: itmWeight, bias: itmBias, into: itmLogits.data, ldy: 2)

        // ITC: the texts alone, projected and normalized, against each image's projected [CLS].
        let textHidden = encoder.forward(ids: ids, rows: r, tokens: longest, cache: encoder.makeCache(rows: r, capacity: longest),
                                         images: nil, causal: false, validLengths: lengths, workspace: workspace)
        let textProjection = Tensor(zeros: [r, e])
        Ops.linear(textHidden, rows: r, ldx: longest * c, weight: textProjectionWeight, bias: textProjectionBias,
                   into: textProjection.data, ldy: e)
        let imageProjection = Tensor(zeros: [b, e])
        Ops.linear(imageEmbeddings.data, rows: b, ldx: n * dv, weight: visionProjectionWeight, bias: visionProjectionBias,
                   into: imageProjection.data, ldy: e)

        var out: [[MatchScore]] = []
        var row = 0
        for (i, imageTexts) in texts.enumerated() {
            let imageVector = Ops.l2Normalize(Array(UnsafeBufferPointer(start: imageProjection.row(i), count: e)))
            var scores: [MatchScore] = []
            for _ in imageTexts {
                let a = itmLogits.data[row * 2], z = itmLogits.data[row * 2 + 1]
                let m = max(a, z)
                let ea = expf(a - m), ez = expf(z - m)
                let textVector = Ops.l2Normalize(Array(UnsafeBufferPointer(start: textProjection.row(row), count: e)))
                var cosine: Float = 0
                for j in 0..<e { cosine += imageVector[j] * textVector[j] }
                scores.append(MatchScore(itm: ez / (ea + ez), itc: cosine))
                row += 1
            }
            out.append(scores)
        }
        return out
    }
}
