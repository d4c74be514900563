// The arguments of transformers' `generate()` that capfilt supports, with transformers 5's defaults for
// BLIP (greedy, 20 new tokens, top_k 50 when sampling).

/// transformers' `early_stopping`: `false` (a heuristic), `true` (stop once num_beams hypotheses are
/// finished) or `"never"` (canonical beam search).
public enum EarlyStopping: String, Sendable, CaseIterable {
    case heuristic = "false"
    case always = "true"
    case never
}

public struct GenerationOptions: Sendable, Equatable {
    public var maxNewTokens = 20
    public var minNewTokens = 0
    public var numBeams = 1
    public var doSample = false
    public var temperature: Float = 1
    /// 0 disables; transformers applies 50 when sampling even if unset.
    public var topK = 50
    public var topP: Float = 1
    public var repetitionPenalty: Float = 1
    public var lengthPenalty: Float = 1
    public var earlyStopping = EarlyStopping.heuristic

    public init() {}

    /// Checks the combination, with messages that name the flag.
    public func validate() throws {
        func fail(_ m: String) -> BLIPError { .invalidArgument(m) }
        if maxNewTokens < 1 { throw fail("--max-new-tokens must be at least 1 (got \(maxNewTokens))") }
        if minNewTokens < 0 || minNewTokens > maxNewTokens {
            throw fail("--min-new-tokens must be between 0 and --max-new-tokens \(maxNewTokens) (got \(minNewTokens))")
        }
        if numBeams < 1 { throw fail("--num-beams must be at least 1 (got \(numBeams))") }
        if !(temperature > 0) || !temperature.isFinite { throw fail("--temperature must be a positive number (got \(temperature))") }
        if topK < 0 { throw fail("--top-k must be 0 (off) or positive (got \(topK))") }
        if !(topP > 0 && topP <= 1) { throw fail("--top-p must be in (0, 1] (got \(topP))") }
        if !(repetitionPenalty > 0) || !repetitionPenalty.isFinite {
            throw fail("--repetition-penalty must be a positive number (got \(repetitionPenalty))")
        }
        if !lengthPenalty.isFinite { throw fail("--length-penalty must be a finite number") }
        if doSample && numBeams > 1 {
            throw fail("sampling with --num-beams > 1 (beam sampling) is not supported; use --sample or --num-beams, not both")
        }
    }
}
