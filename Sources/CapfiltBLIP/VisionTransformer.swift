// port of transformers/models/blip/modeling_blip.py: BlipVisionEmbeddings, BlipEncoderLayer (pre-LN ViT),
// BlipVisionModel. The output is `last_hidden_state` after post_layernorm: the image embeddings that
// cross-attention and ITC read.
//
// Dimensions: B images, S image side (384), P patch side (16), G = S/P patches per side, N = G² + 1 tokens
// (577), D vision width (768 / 1024), H heads, hd = D/H, I MLP width (3072 / 4096).
import CapfiltTensor
import CapfiltWeights

public enum Vision {
    /// One pre-LN encoder block.
    struct Layer {
        let norm1Weight, norm1Bias: Tensor        // (D)
        let qkvWeight: Tensor                     // (3D, D): Q | K | V stacked on the output axis
        let qkvBias: Tensor                       // (3D)
        let projectionWeight: Tensor              // (D, D)
        let projectionBias: Tensor                // (D)
        let norm2Weight, norm2Bias: Tensor        // (D)
        let fc1Weight: Tensor                     // (I, D)
        let fc1Bias: Tensor                       // (I)
        let fc2Weight: Tensor                     // (D, I)
        let fc2Bias: Tensor                       // (D)
    }
}

/// BLIP's ViT image encoder.
public final class VisionTransformer: Sendable {
    public let config: BLIPVisionConfig
    let patchWeight: Tensor        // (D, 3·P·P), the conv kernel flattened in (c, ky, kx) order
    let patchBias: Tensor          // (D)
    let classEmbedding: Tensor     // (D)
    let positionEmbedding: Tensor  // (N, D)
    let layers: [Vision.Layer]
    let postNormWeight, postNormBias: Tensor  // (D)

    /// Reads `vision_model.*` tensors.
    public init(config: BLIPVisionConfig, weights: StrictWeightReader, prefix: String = "vision_model.") throws {
        self.config = config
        let d = config.hiddenSize, p = config.patchSize, n = config.sequenceLength, i = config.intermediateSize
        func t(_ name: String, _ shape: [Int]) throws -> Tensor { try weights.tensor(prefix + name, shape: shape) }
        patchWeight = try t("embeddings.patch_embedding.weight", [d, 3, p, p]).reshaped([d, 3 * p * p])
        patchBias = try t("embeddings.patch_embedding.bias", [d])
        classEmbedding = try t("embeddings.class_embedding", [1, 1, d]).reshaped([d])
        positionEmbedding = try t("embeddings.position_embedding", [1, n, d]).reshaped([n, d])
        layers = try (0..<config.numHiddenLayers).map { l in
            let q = "encoder.layers.\(l)."
            return Vision.Layer(
                norm1Weight: try t(q + "layer_norm1.weight", [d]), norm1Bias: try t(q + "layer_norm1.bias", [d]),
                qkvWeight: try t(q + "self_attn.qkv.weight", [3 * d, d]), qkvBias: try t(q + "self_attn.qkv.bias", [3 * d]),
                projectionWeight: try t(q + "self_attn.projection.weight", [d, d]),
                projectionBias: try t(q + "self_attn.projection.bias", [d]),
                norm2Weight: try t(q + "layer_norm2.weight", [d]), norm2Bias: try t(q + "layer_norm2.bias", [d]),
                fc1Weight: try t(q + "mlp.fc1.weight", [i, d]), fc1Bias: try t(q + "mlp.fc1.bias", [i]),
                fc2Weight: try t(q + "mlp.fc2.weight", [d, i]), fc2Bias: try t(q + "mlp.fc2.bias", [d]))
        }
        postNormWeight = try t("post_layernorm.weight", [d])
        postNormBias = try t("post_layernorm.bias", [d])
    }

    /// Gives the encoder layers' linear weights a copy in `precision` (at load, before the model is shared).
    /// The patch embedding stays fp32: it reads the pixels, and it is 3% of the tower's arithmetic.
    func reduce(to precision: Precision) {
        for layer in layers {
            for weight in [layer.qkvWeight, layer.projectionWeight, layer.fc1Weight, layer.fc2Weight] { weight.reduce(to: precision) }
        }
    }

    /// Image embeddings for a batch of preprocessed images.
    /// - pixels: `(B, 3, S, S)` normalized pixel values, channel-major per image.
    /// - Returns: `(B, N, D)` after post_layernorm.
    public func forward(pixels: UnsafePointer<Float>, batch b: Int) -> Tensor {
        let d = config.hiddenSize, n = config.sequenceLength, g = config.patchesPerSide
        let p = config.patchSize, s = config.imageSize, hd = config.headDim, rows = b * n
        let patchLen = 3 * p * p

        // Patch embedding as a GEMM: im2col into (B·G², 3·P·P), then · Wᵀ. Row order is patch-major
        // (row = py·G + px), column order (c, ky, kx), matching the conv weight's flattening.
        let cols = Tensor(zeros: [b * g * g, patchLen])
        for img in 0..<b {
            let src = pixels + img * 3 * s * s
            for py in 0..<g { for px in 0..<g {
                let dst = cols.row(img * g * g + py * g + px)
                for c in 0..<3 { for ky in 0..<p {
                    let from = src + c * s * s + (py * p + ky) * s + px * p
                    (dst + c * p * p + ky * p).update(from: from, count: p)
                } }
            } }
        }
        let patches = Tensor(zeros: [b * g * g, d])
        Ops.linear(cols.data, rows: b * g * g, ldx: patchLen, weight: patchWeight, bias: patchBias, into: patches.data, ldy: d)

        // x (B·N, D): [CLS | patches] + position embeddings.
        let x = Tensor(zeros: [b, n, d])
        for img in 0..<b {
            let base = x.data + img * n * d
            for j in 0..<d { base[j] = classEmbedding.data[j] + positionEmbedding.data[j] }
            for t in 1..<n {
                let row = base + t * d, patch = patches.row(img * g * g + t - 1), pos = positionEmbedding.row(t)
                for j in 0..<d { row[j] = patch[j] + pos[j] }
            }
        }

        let h = Tensor(zeros: [rows, d])                           // normalized input of each sub-block
        let qkv = Tensor(zeros: [rows, 3 * d])
        let context = Tensor(zeros: [rows, d])
        let delta = Tensor(zeros: [rows, d])                       // sub-block output before the residual add
        let hidden = Tensor(zeros: [rows, config.intermediateSize])
        let scores = Tensor(zeros: [Attention.scoresCount(queries: n, keys: n)])
        let scaling = AttentionScaling.vision(headDim: hd)
        // Attention runs over images × heads: each image's Q | K | V rows of qkv and its rows of context.
        let images = (0..<b).map { img in
            let base = qkv.data + img * n * 3 * d
            return AttentionSequence(q: base, k: base + d, v: base + 2 * d, out: context.data + img * n * d)
        }
        for layer in layers {
            Ops.layerNorm(x.data, rows: rows, width: d, gamma: layer.norm1Weight, beta: layer.norm1Bias,
                          eps: config.layerNormEps, into: h.data)
            Ops.linear(h.data, rows: rows, ldx: d, weight: layer.qkvWeight, bias: layer.qkvBias, into: qkv.data, ldy: 3 * d)
            Attention.multiHead(images, ldq: 3 * d, ldk: 3 * d, ldv: 3 * d, ldo: d, queries: n, keys: n,
                                heads: config.numAttentionHeads, headDim: hd, scaling: scaling, scores: scores.data)
            // x += context · Wᵀ + b, the residual added per block as it is computed.
            Ops.linear(context.data, rows: rows, ldx: d, weight: layer.projectionWeight, bias: layer.projectionBias,
                       into: delta.data, ldy: d, then: .residual(x.data, ld: d))
            Ops.layerNorm(x.data, rows: rows, width: d, gamma: layer.norm2Weight, beta: layer.norm2Bias,
                          eps: config.layerNormEps, into: h.data)
            Ops.linear(h.data, rows: rows, ldx: d, weight: layer.fc1Weight, bias: layer.fc1Bias,
                       into: hidden.data, ldy: config.intermediateSize, then: .gelu)
            Ops.linear(hidden.data, rows: rows, ldx: config.intermediateSize, weight: layer.fc2Weight, bias: layer.fc2Bias,
                       into: delta.data, ldy: d, then: .residual(x.data, ld: d))
        }
        Ops.layerNorm(x.data, rows: rows, width: d, gamma: postNormWeight, beta: postNormBias,
                      eps: config.layerNormEps, into: x.data)
        return x
    }
}
