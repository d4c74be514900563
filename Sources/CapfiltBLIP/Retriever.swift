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

    /// Reads every tensor of a `BlipForImageTextRetrieval` state dict, strictly.
    public init(config: BLIPConfig, weights: StrictWeightReader) throws {
        self.config = config
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
    }

    /// Image embeddings `(B, N, Dv)` for `(B, 3, S, S)` pixel values.
    public func imageEmbeddings(pixels: UnsafePointer<Float>, batch: Int) -> Tensor {
        vision.forward(pixels: pixels, batch: batch)
    }

    /// ITM and ITC scores of one image against several texts.
    /// - imageEmbeds: `(N, Dv)` of one image.
    /// - texts: token ids as the processor gives them (`[CLS] … [SEP]`, used as-is).
    public func scores(imageEmbeds: UnsafePointer<Float>, texts: [[Int]]) throws -> [MatchScore] {
        guard !texts.isEmpty else { return [] }
        let c = config.text.hiddenSize, n = config.vision.sequenceLength, r = texts.count
        let longest = texts.map(\.count).max() ?? 0
        guard texts.allSatisfy({ !$0.isEmpty }) else { throw BLIPError.invalidArgument("a text has no tokens") }
        guard longest <= config.text.maxPositionEmbeddings else {
            throw BLIPError.sequenceTooLong(length: longest, limit: config.text.maxPositionEmbeddings)
        }
        guard texts.allSatisfy({ $0.allSatisfy { $0 >= 0 && $0 < config.text.vocabSize } }) else {
            throw BLIPError.invalidArgument("a text token id is outside the vocabulary of \(config.text.vocabSize)")
        }
        // Right-pad to the longest text; padded keys are masked, so each row equals its unpadded run.
        var ids: [Int] = []
        for t in texts { ids += t + Array(repeating: config.text.padTokenId, count: longest - t.count) }
        let lengths = texts.map(\.count)

        // ITM: cross-attention to the image, classifier on [CLS].
        let image = encoder.imageKeyValues(imageEmbeds, tokens: n)
        let itmHidden = encoder.forward(ids: ids, rows: r, tokens: longest, cache: encoder.makeCache(rows: r, capacity: longest),
                                        images: Array(repeating: image, count: r), causal: false, validLengths: lengths)
        let itmLogits = Tensor(zeros: [r, 2])
        Ops.linear(itmHidden.data, rows: r, ldx: longest * c, weight: itmWeight, bias: itmBias, into: itmLogits.data, ldy: 2)

        // ITC: the text alone, projected and normalized, against the image's projected [CLS].
        let textHidden = encoder.forward(ids: ids, rows: r, tokens: longest, cache: encoder.makeCache(rows: r, capacity: longest),
                                         images: nil, causal: false, validLengths: lengths)
        let textProjection = Tensor(zeros: [r, config.imageTextHiddenSize])
        Ops.linear(textHidden.data, rows: r, ldx: longest * c, weight: textProjectionWeight, bias: textProjectionBias,
                   into: textProjection.data, ldy: config.imageTextHiddenSize)
        let imageProjection = Tensor(zeros: [1, config.imageTextHiddenSize])
        Ops.linear(imageEmbeds, rows: 1, ldx: config.vision.hiddenSize, weight: visionProjectionWeight,
                   bias: visionProjectionBias, into: imageProjection.data, ldy: config.imageTextHiddenSize)
        let imageVector = Ops.l2Normalize(imageProjection.scalars)

        return (0..<r).map { row in
            let a = itmLogits.data[row * 2], b = itmLogits.data[row * 2 + 1]
            let m = max(a, b)
            let ea = expf(a - m), eb = expf(b - m)
            let textVector = Ops.l2Normalize(Array(UnsafeBufferPointer(start: textProjection.row(row), count: config.imageTextHiddenSize)))
            var cosine: Float = 0
            for j in 0..<imageVector.count { cosine += imageVector[j] * textVector[j] }
            return MatchScore(itm: eb / (ea + eb), itc: cosine)
        }
    }
}
