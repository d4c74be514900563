// Reduced-precision linear layers (issue 11): a weight `(N, K)` converted once at load, used by `Ops.linear` in
// place of its fp32 values. int8: per-output-channel symmetric weights, per-row symmetric activations quantized
// on the fly (dynamic quantization, as ONNX Runtime and torch do it, with a scale per row instead of per
// tensor), int32 sums (oneDNN, AVX-512 VNNI), then scales, bias, activation and residual in fp32.
// LayerNorm, softmax, GELU and attention stay fp32 in every mode.
import Foundation

/// The arithmetic a model's linear layers run in.
public enum Precision: String, Sendable, CaseIterable, Codable {
    /// fp32 everywhere: the exact mode, token-identical to transformers.
    case fp32
    /// int8 weights and activations with int32 sums; needs AVX-512 VNNI.
    case int8

    /// Throws when this CPU lacks the instructions the mode needs (there is no slow fallback).
    public func requireSupport() throws {
        switch self {
        case .fp32: return
        case .int8:
            guard OneDNN.hasInt8DotProducts else {
                throw PrecisionError.unsupported(self, need: "AVX-512 VNNI (vpdpbusd)", have: OneDNN.isaName)
            }
        }
    }
}

public enum PrecisionError: Error, CustomStringConvertible, Equatable {
    case unsupported(Precision, need: String, have: String)

    public var description: String {
        switch self {
        case .unsupported(let p, let need, let have):
            return "precision \(p.rawValue) needs \(need), which this CPU does not have (oneDNN finds \(have)); use precision fp32"
        }
    }
}

/// A linear layer's weight in a reduced precision, made once from the fp32 tensor at load.
public final class ReducedWeight: @unchecked Sendable {
    public let precision: Precision
    /// (N, K) row-major.
    let values: UnsafeMutablePointer<Int8>
    /// (N): weight `j` is `values[j, :] · scales[j]`.
    let scales: UnsafeMutablePointer<Float>
    let rows: Int, columns: Int

    /// Per-row (output channel) symmetric int8: `scale = max|w| / 127`, values rounded to nearest, ties to even.
    init(int8 weight: Tensor) {
        precondition(weight.shape.count == 2, "a linear weight is (N, K), not \(weight.shape)")
        precision = .int8
        rows = weight.dim(0); columns = weight.dim(1)
        values = .allocate(capacity: max(rows * columns, 1))
        scales = .allocate(capacity: max(rows, 1))
        let (values, scales, k) = (values, scales, columns)
        Parallel.rows(rows, work: rows * k) { range in
            for j in range { scales[j] = Quantize.row(weight.row(j), count: k, into: values + j * k) }
        }
    }

    deinit { values.deallocate(); scales.deallocate() }
}

extension Tensor {
    /// Gives this `(N, K)` weight a reduced-precision copy that `Ops.linear` uses from now on. Call it while
    /// loading, before the model is shared between threads; fp32 leaves the tensor as it is.
    public func reduce(to precision: Precision) {
        switch precision {
        case .fp32: reduced = nil
        case .int8: reduced = ReducedWeight(int8: self)
        }
    }
}

enum Quantize {
    /// Symmetric int8 of one row: returns the scale `max|x| / 127` (1 for a zero row) and writes
    /// `round(x / scale)` (nearest, ties to even), 16 lanes at a time.
    @inline(__always)
    static func row(_ x: UnsafePointer<Float>, count: Int, into q: UnsafeMutablePointer<Int8>) -> Float {
        var peak = VectorMath.Lanes()
        var j = 0
        while j < count {
            let lanes = min(VectorMath.width, count - j)
            let v = VectorMath.abs(VectorMath.load(x + j, count: lanes))
            peak.replace(with: v, where: v .> peak)
            j += lanes
        }
        let amax = peak.max()
        guard amax > 0, amax.isFinite else {
            q.update(repeating: 0, count: count)
            return 1
        }
        let scale = amax / 127, inverse = VectorMath.Lanes(repeating: 127 / amax)
        // Adding 1.5·2²³ rounds to the nearest integer, ties to even, in plain SSE2 (|v| ≤ 127), and leaves that
        // integer in the low bits of the float (0x4B400000 + n): its low byte is n as an Int8. No Float-to-Int
        // conversion, which Swift checks lane by lane.
        let magic = VectorMath.Lanes(repeating: 12_582_912)
        j = 0
        while j < count {
            let lanes = min(VectorMath.width, count - j)
            let v = VectorMath.load(x + j, count: lanes) * inverse
            let clamped = v.replacing(with: 127, where: v .> 127).replacing(with: -127, where: v .< -127)
            let bits = unsafeBitCast(clamped + magic, to: SIMD16<UInt32>.self)
            let n = unsafeBitCast(SIMD16<UInt8>(truncatingIfNeeded: bits), to: SIMD16<Int8>.self)
            if lanes == VectorMath.width {
                UnsafeMutableRawPointer(q + j).storeBytes(of: n, as: SIMD16<Int8>.self)
            } else {
                for l in 0..<lanes { q[j + l] = n[l] }
            }
            j += lanes
        }
        return scale
    }
}

/// Reusable scratch memory for the activations of reduced-precision products, so a forward pass does not map
/// and fault in fresh pages for every layer. Products running at the same time take different buffers.
final class Scratch: @unchecked Sendable {
    static let shared = Scratch()
    private let lock = NSLock()
    private var free: [(pointer: UnsafeMutableRawPointer, bytes: Int)] = []

    func with<T>(bytes: Int, _ body: (UnsafeMutableRawPointer) throws -> T) rethrows -> T {
        lock.lock()
        var buffer: (pointer: UnsafeMutableRawPointer, bytes: Int)
        if let i = free.firstIndex(where: { $0.bytes >= bytes }) {
            buffer = free.remove(at: i)
        } else {
            if let smaller = free.popLast() { smaller.pointer.deallocate() }
            buffer = (UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64), max(bytes, 64))
        }
        lock.unlock()
        defer { lock.lock(); free.append(buffer); lock.unlock() }
        return try body(buffer.pointer)
    }
}
