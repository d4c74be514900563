// port of transformers/models/blip/modeling_blip_text.py: BlipTextEmbeddings, BlipTextLayer (post-LN BERT
// with optional cross-attention), BlipTextLMPredictionHead. One type serves the captioner's decoder
// (causal, KV cache) and the ITM/ITC encoder (bidirectional, padding mask).
//
// Dimensions: R rows (texts or beams), T new tokens per row, L cached tokens, C text width (768),
// H heads, hd = C/H, I FFN width (3072), V vocabulary (30524), N image tokens (577), Dv vision width.
import CapfiltTensor
import CapfiltWeights

public enum Text {
    struct AttentionBlock {
        let queryWeight: Tensor, queryBias: Tensor   // (C, C), (C)
        let keyWeight: Tensor, keyBias: Tensor       // (C, C) for self-attention, (C, Dv) for cross-attention; (C)
        let valueWeight: Tensor, valueBias: Tensor   // same as key
        let outputWeight: Tensor, outputBias: Tensor // (C, C), (C)
        let normWeight: Tensor, normBias: Tensor     // (C)

        init(_ weights: StrictWeightReader, _ prefix: String, width c: Int, keyWidth: Int) throws {
            func t(_ name: String, _ shape: [Int]) throws -> Tensor { try weights.tensor(prefix + name, shape: shape) }
            queryWeight = try t("self.query.weight", [c, c]); queryBias = try t("self.query.bias", [c])
            keyWeight = try t("self.key.weight", [c, keyWidth]); keyBias = try t("self.key.bias", [c])
            valueWeight = try t("self.value.weight", [c, keyWidth]); valueBias = try t("self.value.bias", [c])
            outputWeight = try t("output.dense.weight", [c, c]); outputBias = try t("output.dense.bias", [c])
            normWeight = try t("output.LayerNorm.weight", [c]); normBias = try t("output.LayerNorm.bias", [c])
        }
    }

    struct Layer {
        let selfAttention: AttentionBlock
        let crossAttention: AttentionBlock?
        let intermediateWeight: Tensor, intermediateBias: Tensor  // (I, C), (I)
        let outputWeight: Tensor, outputBias: Tensor              // (C, I), (C)
        let normWeight: Tensor, normBias: Tensor                  // (C)
    }

    /// Cross-attention keys and values of one image for every layer: computed once per image, shared by
    /// every text and beam that looks at it.
    public final class ImageKeyValues: @unchecked Sendable {
        let keys: [Tensor]    // per layer (N, C)
        let values: [Tensor]  // per layer (N, C)
        public var tokens: Int { keys.first?.dim(0) ?? 0 }
        init(keys: [Tensor], values: [Tensor]) { self.keys = keys; self.values = values }
    }

    /// Self-attention keys and values of R rows, up to `capacity` positions each.
    public final class KeyValueCache {
        let rows: Int, capacity: Int, width: Int
        var keys: [Tensor]     // per layer (R, capacity, C)
        var values: [Tensor]   // per layer (R, capacity, C)
        private var spareKeys: [Tensor], spareValues: [Tensor]  // double buffers for reordering
        /// Positions filled, the same for every row.
        public internal(set) var length = 0

        init(layers: Int, rows: Int, capacity: Int, width: Int) {
            self.rows = rows; self.capacity = capacity; self.width = width
            keys = (0..<layers).map { _ in Tensor(zeros: [rows, capacity, width]) }
            values = (0..<layers).map { _ in Tensor(zeros: [rows, capacity, width]) }
            spareKeys = (0..<layers).map { _ in Tensor(zeros: [rows, capacity, width]) }
            spareValues = (0..<layers).map { _ in Tensor(zeros: [rows, capacity, width]) }
        }

        /// Row `r` of the cache becomes the old row `sources[r]` (beam search keeps the best continuations).
        func reorder(_ sources: [Int]) {
            precondition(sources.count == rows)
            if sources == Array(0..<rows) { return }
            let span = length * width
            for l in 0..<keys.count {
                for (r, src) in sources.enumerated() {
                    (spareKeys[l].data + r * capacity * width).update(from: keys[l].data + src * capacity * width, count: span)
                    (spareValues[l].data + r * capacity * width).update(from: values[l].data + src * capacity * width, count: span)
                }
            }
            swap(&keys, &spareKeys)
            swap(&values, &spareValues)
        }
    }

    /// The activations of a text forward and the LM head's output, kept between calls. A decoding loop passes
    /// the same workspace to every step, so after the first step (the prompt, the largest) a step allocates no
    /// buffers. What `forward` and `logits` return points into it and stays valid until its next use.
    public final class Workspace: @unchecked Sendable {
        enum Slot: Int, CaseIterable {
            case hidden, query, key, value, context, delta, feedForward, scores, transform, logits
        }
        private var storage: [UnsafeMutablePointer<Float>?] = Array(repeating: nil, count: Slot.allCases.count)
        private var capacity = [Int](repeating: 0, count: Slot.allCases.count)
        /// Buffers allocated so far (a buffer grows only when a call needs more than any earlier one).
        public private(set) var allocations = 0

        public init() {}

        /// At least `count` floats for `slot`; the contents are whatever the last user left.
        func buffer(_ slot: Slot, _ count: Int) -> UnsafeMutablePointer<Float> {
            let i = slot.rawValue
            if let p = storage[i], capacity[i] >= count { return p }
            storage[i]?.deallocate()
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            storage[i] = p
            capacity[i] = count
            allocations += 1
            return p
        }

        deinit { for p in storage { p?.deallocate() } }
    }
}

/// BLIP's BERT: embeddings, post-LN layers with optional cross-attention, and (for the decoder) the LM head.
public final class TextTransformer: Sendable {
    public let config: BLIPTextConfig
    let wordEmbeddings: Tensor       // (V, C)
    let positionEmbeddings: Tensor   // (P, C)
    let embeddingNormWeight, embeddingNormBias: Tensor  // (C)
    let layers: [Text.Layer]
    /// True when the layers have cross-attention weights (is_decoder models, which all BLIP text towers are).
    public var hasCrossAttention: Bool { layers.first?.crossAttention != nil }

    /// Reads `<prefix>embeddings.*` and `<prefix>encoder.layer.N.*`, e.g. prefix `text_decoder.bert.`.
    init(config: BLIPTextConfig, weights: StrictWeightReader, prefix: String) throws {
        self.config = config
        let c = config.hiddenSize, i = config.intermediateSize
        func t(_ name: String, _ shape: [Int]) throws -> Tensor { try weights.tensor(prefix + name, shape: shape) }
        wordEmbeddings = try t("embeddings.word_embeddings.weight", [config.vocabSize, c])
        positionEmbeddings = try t("embeddings.position_embeddings.weight", [config.maxPositionEmbeddings, c])
        embeddingNormWeight = try t("embeddings.LayerNorm.weight", [c])
        embeddingNormBias = try t("embeddings.LayerNorm.bias", [c])
        weights.markUsed(prefix + "embeddings.position_ids")  // legacy int64 buffer in 2022-era files
        layers = try (0..<config.numHiddenLayers).map { l in
            let q = prefix + "encoder.layer.\(l)."
            let cross = weights.contains(q + "crossattention.self.query.weight")
                ? try Text.AttentionBlock(weights, q + "crossattention.", width: c, keyWidth: config.encoderHiddenSize) : nil
            return Text.Layer(
                selfAttention: try Text.AttentionBlock(weights, q + "attention.", width: c, keyWidth: c),
                crossAttention: cross,
                intermediateWeight: try weights.tensor(q + "intermediate.dense.weight", shape: [i, c]),
                intermediateBias: try weights.tensor(q + "intermediate.dense.bias", shape: [i]),
                outputWeight: try weights.tensor(q + "output.dense.weight", shape: [c, i]),
                outputBias: try weights.tensor(q + "output.dense.bias", shape: [c]),
                normWeight: try weights.tensor(q + "output.LayerNorm.weight", shape: [c]),
                normBias: try weights.tensor(q + "output.LayerNorm.bias", shape: [c]))
        }
        if layers.contains(where: { ($0.crossAttention != nil) != hasCrossAttention }) {
            throw BLIPError.invalidConfig(path: prefix, reason: "some layers have cross-attention weights and some do not")
        }
    }

    /// Gives every layer's linear weights (attention, cross-attention, feed-forward) a copy in `precision`, at
    /// load. The embeddings stay fp32 (they are looked up, not multiplied).
    func reduce(to precision: Precision) {
        for layer in layers {
            var weights = [layer.intermediateWeight, layer.outputWeight]
            for block in [layer.selfAttention] + (layer.crossAttention.map { [$0] } ?? []) {
                weights += [block.queryWeight, block.keyWeight, block.valueWeight, block.outputWeight]
            }
            for weight in weights { weight.reduce(to: precision) }
        }
    }

    /// Cross-attention keys and values of one image, for every layer.
    /// - imageEmbeds: `(N, Dv)` rows of one image's embeddings.
    public func imageKeyValues(_ imageEmbeds: UnsafePointer<Float>, tokens n: Int) -> Text.ImageKeyValues {
        imageKeyValues(imageEmbeds, images: 1, tokens: n)[0]
    }

    /// Cross-attention keys and values of B images, for every layer: one product of all their tokens per layer
    /// and projection (B·N rows), each image's keys and values a view of its rows.
    /// - imageEmbeds: `(B, N, Dv)`.
    public func imageKeyValues(_ imageEmbeds: UnsafePointer<Float>, images b: Int, tokens n: Int) -> [Text.ImageKeyValues] {
        let c = config.hiddenSize, dv = config.encoderHiddenSize
        var keys: [[Tensor]] = Array(repeating: [], count: b), values: [[Tensor]] = Array(repeating: [], count: b)
        for layer in layers {
            guard let cross = layer.crossAttention else { break }
            let k = Tensor(zeros: [b * n, c]), v = Tensor(zeros: [b * n, c])
            Ops.linear(imageEmbeds, rows: b * n, ldx: dv, weight: cross.keyWeight, bias: cross.keyBias, into: k.data, ldy: c)
            Ops.linear(imageEmbeds, rows: b * n, ldx: dv, weight: cross.valueWeight, bias: cross.valueBias, into: v.data, ldy: c)
            for img in 0..<b {
                keys[img].append(Tensor(borrowing: k.data + img * n * c, shape: [n, c], owner: k))
                values[img].append(Tensor(borrowing: v.data + img * n * c, shape: [n, c], owner: v))
            }
        }
        return (0..<b).map { Text.ImageKeyValues(keys: keys[$0], values: values[$0]) }
    }

    /// A cache for `rows` sequences of up to `capacity` tokens.
    public func makeCache(rows: Int, capacity: Int) -> Text.KeyValueCache {
        Text.KeyValueCache(layers: layers.count, rows: rows, capacity: capacity, width: config.hiddenSize)
    }

    /// Runs `T` new tokens of `R` rows through every layer.
    ///
    /// - ids: `(R, T)` token ids, row-major.
    /// - cache: keys/values of earlier positions; the new ones are appended. Positions start at `cache.length`.
    /// - images: per row, the image it attends to, or nil for a text-only pass (ITC).
    /// - causal: decoder masking (query `t` sees cached positions and new positions `≤ t`).
    /// - validLengths: per row, tokens that are real (the rest is right padding, masked as keys).
    /// - workspace: where the activations live (reuse one across decoding steps).
    /// - Returns: `(R, T, C)` hidden states of the new tokens, inside `workspace`.
    public func forward(ids: [Int], rows r: Int, tokens t: Int, cache: Text.KeyValueCache,
                        images: [Text.ImageKeyValues]?, causal: Bool, validLengths: [Int]? = nil,
                        workspace ws: Text.Workspace) -> UnsafeMutablePointer<Float> {
        let c = config.hiddenSize, start = cache.length, hd = config.headDim, n = r * t
        precondition(ids.count == n && cache.rows == r && start + t <= cache.capacity, "text forward: bad shapes")
        precondition(start + t <= config.maxPositionEmbeddings, "text forward: position beyond the embeddings")
        precondition(images == nil || images?.count == r)

        // Embeddings: LN(word + position).
        let x = ws.buffer(.hidden, n * c)
        for row in 0..<r { for j in 0..<t {
            let dst = x + (row * t + j) * c
            let word = wordEmbeddings.row(ids[row * t + j]), pos = positionEmbeddings.row(start + j)
            for k in 0..<c { dst[k] = word[k] + pos[k] }
        } }
        Ops.layerNorm(x, rows: n, width: c, gamma: embeddingNormWeight, beta: embeddingNormBias,
                      eps: config.layerNormEps, into: x)

        let q = ws.buffer(.query, n * c), kNew = ws.buffer(.key, n * c), vNew = ws.buffer(.value, n * c)
        let context = ws.buffer(.context, n * c), delta = ws.buffer(.delta, n * c)
        let i = config.intermediateSize, hidden = ws.buffer(.feedForward, n * i)
        let imageTokens = images?.first?.tokens ?? 0
        precondition(images.map { list in list.allSatisfy { $0.tokens == imageTokens } } ?? true, "text forward: images of different lengths")
        let scores = ws.buffer(.scores, Attention.scoresCount(queries: t, keys: max(start + t, imageTokens)))
        let scaling = AttentionScaling.text(headDim: hd)
        let total = start + t
        for (l, layer) in layers.enumerated() {
            // Self-attention over the cache plus the new tokens.
            let sa = layer.selfAttention
            Ops.linear(x, rows: n, ldx: c, weight: sa.queryWeight, bias: sa.queryBias, into: q, ldy: c)
            Ops.linear(x, rows: n, ldx: c, weight: sa.keyWeight, bias: sa.keyBias, into: kNew, ldy: c)
            Ops.linear(x, rows: n, ldx: c, weight: sa.valueWeight, bias: sa.valueBias, into: vNew, ldy: c)
            let cacheK = cache.keys[l], cacheV = cache.values[l]
            for row in 0..<r {
                let slot = row * cache.capacity * c + start * c
                (cacheK.data + slot).update(from: kNew + row * t * c, count: t * c)
                (cacheV.data + slot).update(from: vNew + row * t * c, count: t * c)
            }
            // Attention over rows × heads: each row's queries against its cached keys and values.
            let selfSequences = (0..<r).map { row in
                AttentionSequence(q: q + row * t * c, k: cacheK.data + row * cache.capacity * c,
                                  v: cacheV.data + row * cache.capacity * c, out: context + row * t * c,
                                  validKeys: validLengths.map { start + $0[row] })
            }
            Attention.multiHead(selfSequences, ldq: c, ldk: c, ldv: c, ldo: c, queries: t, keys: total,
                                heads: config.numAttentionHeads, headDim: hd, scaling: scaling,
                                causalOffset: causal ? start : nil, scores: scores)
            residualBlock(context, width: c, weight: sa.outputWeight, bias: sa.outputBias, normWeight: sa.normWeight,
                          normBias: sa.normBias, x: x, delta: delta, rows: n)

            // Cross-attention to the row's image (no mask: every image token is visible).
            if let images, let ca = layer.crossAttention {
                Ops.linear(x, rows: n, ldx: c, weight: ca.queryWeight, bias: ca.queryBias, into: q, ldy: c)
                let crossSequences = (0..<r).map { row in
                    AttentionSequence(q: q + row * t * c, k: images[row].keys[l].data, v: images[row].values[l].data,
                                      out: context + row * t * c)
                }
                Attention.multiHead(crossSequences, ldq: c, ldk: c, ldv: c, ldo: c, queries: t, keys: imageTokens,
                                    heads: config.numAttentionHeads, headDim: hd, scaling: scaling, scores: scores)
                residualBlock(context, width: c, weight: ca.outputWeight, bias: ca.outputBias, normWeight: ca.normWeight,
                              normBias: ca.normBias, x: x, delta: delta, rows: n)
            }

            // Feed-forward.
            Ops.linear(x, rows: n, ldx: c, weight: layer.intermediateWeight, bias: layer.intermediateBias,
                       into: hidden, ldy: i, then: .gelu)
            residualBlock(hidden, width: i, weight: layer.outputWeight, bias: layer.outputBias, normWeight: layer.normWeight,
                          normBias: layer.normBias, x: x, delta: delta, rows: n)
        }
        cache.length = total
        return x
    }

    /// `x = LN(input · Wᵀ + b + x)`: BERT's post-LN residual sub-block.
    /// - input: `(n, width)`; x, delta: `(n, C)`.
    private func residualBlock(_ input: UnsafePointer<Float>, width: Int, weight: Tensor, bias: Tensor,
                               normWeight: Tensor, normBias: Tensor,
                               x: UnsafeMutablePointer<Float>, delta: UnsafeMutablePointer<Float>, rows n: Int) {
        let c = config.hiddenSize
        Ops.linear(input, rows: n, ldx: width, weight: weight, bias: bias, into: delta, ldy: c, then: .residual(x, ld: c))
        Ops.layerNorm(x, rows: n, width: c, gamma: normWeight, beta: normBias, eps: config.layerNormEps, into: x)
    }
}

/// `cls.predictions`: transform (dense, GELU, LayerNorm) then the vocabulary projection.
public final class LanguageModelHead: Sendable {
    let transformWeight: Tensor, transformBias: Tensor  // (C, C), (C)
    let normWeight: Tensor, normBias: Tensor            // (C)
    let decoderWeight: Tensor                           // (V, C)
    let decoderBias: Tensor                             // (V)
    let eps: Float

    /// Applies transformers 5's tying rule: `decoder.weight` if stored, else the word embeddings;
    /// `decoder.bias` if stored, else `cls.predictions.bias`.
    init(config: BLIPTextConfig, weights: StrictWeightReader, prefix: String, wordEmbeddings: Tensor) throws {
        let c = config.hiddenSize, v = config.vocabSize
        transformWeight = try weights.tensor(prefix + "transform.dense.weight", shape: [c, c])
        transformBias = try weights.tensor(prefix + "transform.dense.bias", shape: [c])
        normWeight = try weights.tensor(prefix + "transform.LayerNorm.weight", shape: [c])
        normBias = try weights.tensor(prefix + "transform.LayerNorm.bias", shape: [c])
        decoderWeight = try weights.optionalTensor(prefix + "decoder.weight", shape: [v, c]) ?? wordEmbeddings
        let storedBias = try weights.optionalTensor(prefix + "decoder.bias", shape: [v])
        let sharedBias = try weights.optionalTensor(prefix + "bias", shape: [v])
        decoderBias = try storedBias ?? sharedBias ?? weights.tensor(prefix + "bias", shape: [v])  // throws, naming it
        eps = config.layerNormEps
    }

    /// Gives the transform a copy of its weight in `precision`, at load. The vocabulary projection stays fp32
    /// in int8: its logits pick the tokens, and an int8 error there moves near-ties directly.
    func reduce(to precision: Precision) {
        transformWeight.reduce(to: precision)
    }

    /// Logits for `m` hidden rows.
    /// - hidden: `(M, C)` rows with leading dimension `ld`.
    /// - Returns: `(M, V)`, inside `workspace`.
    public func logits(_ hidden: UnsafePointer<Float>, rows m: Int, ld: Int, workspace ws: Text.Workspace) -> UnsafeMutablePointer<Float> {
        let c = transformWeight.dim(0), v = decoderWeight.dim(0)
        let t = ws.buffer(.transform, m * c)
        Ops.linear(hidden, rows: m, ldx: ld, weight: transformWeight, bias: transformBias, into: t, ldy: c, then: .gelu)
        Ops.layerNorm(t, rows: m, width: c, gamma: normWeight, beta: normBias, eps: eps, into: t)
        let out = ws.buffer(.logits, m * v)
        Ops.linear(t, rows: m, ldx: c, weight: decoderWeight, bias: decoderBias, into: out, ldy: v)
        return out
    }

    /// The vocabulary size V.
    public var vocabularySize: Int { decoderWeight.dim(0) }
}
