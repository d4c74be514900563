// port of transformers/generation/logits_process.py: each transform of the next-token scores is its own
// small type, applied in transformers' order (penalties and length constraints, then the sampling warpers).
import Foundation

/// What a processor may look at: the row's tokens so far (BOS and prompt included).
public struct DecodingContext {
    public let tokens: [Int]
    public let promptLength: Int
}

public protocol LogitsProcessor: Sendable {
    /// Transforms one row of `(V)` scores in place.
    func process(_ scores: UnsafeMutableBufferPointer<Float>, context: DecodingContext)
}

/// `RepetitionPenaltyLogitsProcessor`: every id already in the sequence gets `s / p` if positive, `s · p` if not.
public struct RepetitionPenalty: LogitsProcessor {
    public let penalty: Float
    public func process(_ scores: UnsafeMutableBufferPointer<Float>, context: DecodingContext) {
        // transformers gathers, transforms and scatters: a repeated id is penalised once.
        for id in Set(context.tokens) where id >= 0 && id < scores.count {
            let s = scores[id]
            scores[id] = s < 0 ? s * penalty : s / penalty
        }
    }
}

/// `MinLengthLogitsProcessor` / `MinNewTokensLengthLogitsProcessor`: no EOS before `minNewTokens` new tokens.
public struct MinNewTokens: LogitsProcessor {
    public let minNewTokens: Int
    public let eosTokenID: Int
    public func process(_ scores: UnsafeMutableBufferPointer<Float>, context: DecodingContext) {
        if context.tokens.count - context.promptLength < minNewTokens, eosTokenID < scores.count {
            scores[eosTokenID] = -.infinity
        }
    }
}

/// `TemperatureLogitsWarper`: `s / T`.
public struct Temperature: LogitsProcessor {
    public let temperature: Float
    public func process(_ scores: UnsafeMutableBufferPointer<Float>, context: DecodingContext) {
        for i in scores.indices { scores[i] /= temperature }
    }
}

/// `TopKLogitsWarper`: scores below the k-th largest become −∞ (ties with the k-th are kept).
public struct TopK: LogitsProcessor {
    public let k: Int
    public var minTokensToKeep = 1
    public func process(_ scores: UnsafeMutableBufferPointer<Float>, context: DecodingContext) {
        let k = min(max(self.k, minTokensToKeep), scores.count)
        guard k > 0, k < scores.count else { return }
        let threshold = kthLargest(Array(scores), k)
        for i in scores.indices where scores[i] < threshold { scores[i] = -.infinity }
    }
}

/// `TopPLogitsWarper`: sort ascending, drop the tokens whose cumulative probability is ≤ 1 − p, always
/// keeping the most likely one.
public struct TopP: LogitsProcessor {
    public let p: Float
    public var minTokensToKeep = 1
    public func process(_ scores: UnsafeMutableBufferPointer<Float>, context: DecodingContext) {
        // Tokens already at −∞ (after top-k, usually all but 50) sort first, have probability 0 and leave the
        // cumulative sum unchanged, so only the others need sorting: the same result at a fraction of the work.
        let excluded = scores.reduce(0) { $1 == -.infinity ? $0 + 1 : $0 }
        let order = scores.indices.filter { scores[$0] != -.infinity }
            .sorted { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        var probabilities = order.map { scores[$0] }
        probabilities.withUnsafeMutableBufferPointer { Softmax.inPlace($0) }
        // torch.cumsum accumulates float32 input in double on the CPU.
        let cutoff = Float(1 - Double(p))
        var cumulative = 0.0
        let keepFrom = scores.count - minTokensToKeep
        for (rank, index) in order.enumerated() {
            cumulative += Double(probabilities[rank])
            if Float(cumulative) <= cutoff && excluded + rank < keepFrom { scores[index] = -.infinity }
        }
    }
}

/// The k-th largest value (1-based) of `values`.
func kthLargest(_ values: [Float], _ k: Int) -> Float {
    var v = values
    // Quickselect for index (count - k) in ascending order.
    var lo = 0, hi = v.count - 1
    let target = v.count - k
    while lo < hi {
        let pivot = v[(lo + hi) / 2]
        var i = lo, j = hi
        while i <= j {
            while v[i] < pivot { i += 1 }
            while v[j] > pivot { j -= 1 }
            if i <= j { v.swapAt(i, j); i += 1; j -= 1 }
        }
        if target <= j { hi = j } else if target >= i { lo = i } else { break }
    }
    return v[target]
}

/// Softmax of one row in place; −∞ entries get exactly 0.
enum Softmax {
    static func inPlace(_ x: UnsafeMutableBufferPointer<Float>) {
        var maxV = -Float.infinity
        for v in x where v > maxV { maxV = v }
        var sum: Float = 0
        for i in x.indices { let e = expf(x[i] - maxV); x[i] = e; sum += e }
        let inv = 1 / sum
        for i in x.indices { x[i] *= inv }
    }
}
