// Strict loading, as llama.cpp does it: every tensor the model asks for must exist with exactly the shape
// it expects, and every tensor in the checkpoint must be consumed (or deliberately ignored) by the end.
// Silent partial loads are how a port ends up running on half-random weights.
import CapfiltTensor

/// Hands out fp32 tensors by name and shape, and remembers which ones were used.
///
/// Not thread-safe: a model is loaded from one thread.
public final class StrictWeightReader {
    /// The checkpoint.
    public let source: TensorSource
    private var used = Set<String>()
    /// Refuse tensors holding NaN or infinity (models set this; format tests read such values on purpose).
    public let requireFinite: Bool

    /// Wraps `source`.
    public init(source: TensorSource, requireFinite: Bool = false) {
        self.source = source
        self.requireFinite = requireFinite
    }

    /// Tensor `name` as fp32, which must exist and have exactly `shape`.
    ///
    /// Missing: a `.missingTensor` error naming it and the closest names present. Other shape: a
    /// `.shapeMismatch` error with both shapes. Integer types: `.unsupportedConversion`.
    public func tensor(_ name: String, shape: [Int]) throws -> Tensor {
        guard let descriptor = source.descriptors[name] else {
            let near = nearNames(to: name)
            let hint = near.isEmpty ? "" : "; nearest names present: \(near.joined(separator: ", "))"
            throw WeightsError(.missingTensor, path: source.path, tensor: name,
                               problem: "the model needs this tensor (shape \(shape)) but the checkpoint lacks it\(hint)",
                               fix: "Use a checkpoint of the model this config describes, or fix the tensor name table")
        }
        used.insert(name)
        guard descriptor.shape == shape else {
            throw WeightsError(.shapeMismatch, path: source.path, tensor: name,
                               problem: "the checkpoint has shape \(descriptor.shape) but the model needs \(shape)",
                               fix: "Check that config.json matches the weights (e.g. base vs large)")
        }
        let tensor = try source.float32Tensor(named: name)
        // A NaN or infinity in the weights makes every output NaN, which decoding turns into empty captions:
        // refuse the checkpoint now rather than run on it (one pass over the weights, ~0.1 s per GB).
        var nonFinite = 0
        if requireFinite { for value in tensor.buffer where !value.isFinite { nonFinite += 1 } }
        if nonFinite > 0 {
            throw WeightsError(.nonFiniteValues, path: source.path, tensor: name,
                               problem: "\(nonFinite) of its \(tensor.count) values are NaN or infinite",
                               fix: "The checkpoint is damaged or was saved from a diverged training run; download or export it again")
        }
        return tensor
    }

    /// Like `tensor(_:shape:)`, but nil when the checkpoint lacks `name`.
    public func optionalTensor(_ name: String, shape: [Int]) throws -> Tensor? {
        guard source.descriptors[name] != nil else { return nil }
        return try tensor(name, shape: shape)
    }

    /// Whether the checkpoint has a tensor `name`.
    public func contains(_ name: String) -> Bool {
        source.descriptors[name] != nil
    }

    /// Counts `name` as used without loading it (for tensors ignored on purpose, e.g. legacy buffers).
    public func markUsed(_ name: String) {
        used.insert(name)
    }

    /// Throws `.unusedTensors` if the checkpoint holds tensors that were neither loaded, marked used, nor
    /// matched by `ignoring`; the message lists the first 10 (sorted) and the count.
    public func finish(ignoring: (String) -> Bool) throws {
        let unused = source.descriptors.keys.filter { !used.contains($0) && !ignoring($0) }.sorted()
        guard !unused.isEmpty else { return }
        let listed = unused.prefix(10).joined(separator: ", ")
        let more = unused.count > 10 ? ", ... (\(unused.count - 10) more)" : ""
        throw WeightsError(.unusedTensors, path: source.path,
                           problem: "\(unused.count) \(unused.count == 1 ? "tensor" : "tensors") in the checkpoint \(unused.count == 1 ? "was" : "were") not used: \(listed)\(more)",
                           fix: "Use a checkpoint of the model this config describes, or load or explicitly ignore these tensors")
    }

    /// Up to three present names closest to `name` by edit distance.
    private func nearNames(to name: String) -> [String] {
        let target = Array(name.utf8)
        let scored = source.descriptors.keys.map { ($0, Self.editDistance(target, Array($0.utf8))) }
        return scored.sorted { ($0.1, $0.0) < ($1.1, $1.0) }.prefix(3).map(\.0)
    }

    /// Levenshtein distance over bytes, two rows at a time.
    static func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(substitution, previous[j] + 1, current[j - 1] + 1)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
