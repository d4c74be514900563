// Reduced-precision linear layers (issue 11): a weight `(N, K)` converted once at load, used by `Ops.linear` in
// place of its fp32 values. int8: per-output-channel symmetric weights, per-row symmetric activations quantized
// on the fly (dynamic quantization, as ONNX Runtime and torch do it, with a scale per row instead of per
// tensor), int32 sums (oneDNN, AVX-512 VNNI), then scales, bias, activation and residual in fp32. bf16:
// weights and activations rounded to bfloat16 (nearest, ties to even, as torch's `.to(torch.bfloat16)` and
// autocast do), fp32 sums (oneDNN, AVX-512 BF16), bias, activation and residual in fp32.
// LayerNorm, softmax, GELU and attention stay fp32 in every mode.
import Foundation

/// The arithmetic a model's linear layers run in.
public enum Precision: String, Sendable, CaseIterable, Codable {
    /// fp32 everywhere: the exact mode, token-identical to transformers.
    case fp32
    /// bf16 weights and activations with fp32 sums; needs AVX-512 BF16.
    case bf16
    /// int8 weights and activations with int32 sums; needs AVX-512 VNNI.
    case int8

    /// Throws when this CPU lacks the instructions the mode needs (there is no slow fallback).
    public func requireSupport() throws {
        switch self {
        case .fp32: return
        case .bf16:
            guard OneDNN.hasBF16DotProducts else {
                throw PrecisionError.unsupported(self, need: "AVX-512 BF16 (vdpbf16ps)", have: OneDNN.isaName)
            }
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
    /// (N, K) row-major: Int8 in int8, bfloat16 bit patterns (UInt16) in bf16.
    private let storage: UnsafeMutableRawPointer
    /// int8: (N), weight `j` is `values[j, :] · scales[j]`; bf16: nil.
    let scales: UnsafeMutablePointer<Float>?
    let rows: Int, columns: Int

    var values: UnsafeMutablePointer<Int8> { storage.assumingMemoryBound(to: Int8.self) }
    var bf16Values: UnsafeMutablePointer<UInt16> { storage.assumingMemoryBound(to: UInt16.self) }

    /// Per-row (output channel) symmetric int8: `scale = max|w| / 127`, values rounded to nearest, ties to even.
    init(int8 weight: Tensor) {
        precondition(weight.shape.count == 2, "a linear weight is (N, K), not \(weight.shape)")
        precision = .int8
        rows = weight.dim(0); columns = weight.dim(1)
        let values = UnsafeMutablePointer<Int8>.allocate(capacity: max(rows * columns, 1))
        let scales = UnsafeMutablePointer<Float>.allocate(capacity: max(rows, 1))
        storage = UnsafeMutableRawPointer(values); self.scales = scales
        let k = columns
        Parallel.rows(rows, work: rows * k) { range in
            for j in range { scales[j] = Quantize.row(weight.row(j), count: k, into: values + j * k) }
        }
    }

    /// bfloat16 of every weight, nearest with ties to even (`BFloat16.round`).
    init(bf16 weight: Tensor) {
        precondition(weight.shape.count == 2, "a linear weight is (N, K), not \(weight.shape)")
        precision = .bf16
        rows = weight.dim(0); columns = weight.dim(1)
        let values = UnsafeMutablePointer<UInt16>.allocate(capacity: max(rows * columns, 1))
        storage = UnsafeMutableRawPointer(values); scales = nil
        let k = columns
        Parallel.rows(rows, work: rows * k) { range in
            for j in range { BFloat16.round(weight.row(j), count: k, into: values + j * k) }
        }
    }

    deinit { storage.deallocate(); scales?.deallocate() }
}

extension Tensor {
    /// Gives this `(N, K)` weight a reduced-precision copy that `Ops.linear` uses from now on, and gives its
    /// fp32 pages back when they are a file mapping (`releaseFP32Pages`). Call it while loading, before the
    /// model is shared between threads; fp32 leaves the tensor as it is.
    public func reduce(to precision: Precision) {
        switch precision {
        case .fp32: reduced = nil; return
        case .bf16: reduced = ReducedWeight(bf16: self)
        case .int8: reduced = ReducedWeight(int8: self)
        }
        releaseFP32Pages()
    }
}

public enum BFloat16 {
    /// The bfloat16 nearest to `x` (ties to even), as torch rounds: the upper 16 bits of the fp32 after adding
    /// `0x7FFF` plus the lowest kept bit. NaN stays NaN (quiet); infinities and overflow to them as in torch.
    @inline(__always)
    public static func round(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }

    /// The fp32 value of a bfloat16 bit pattern (exact).
    @inline(__always)
    public static func float(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// `round` of `count` floats, 16 lanes at a time.
    @inline(__always)
    public static func round(_ x: UnsafePointer<Float>, count: Int, into h: UnsafeMutablePointer<UInt16>) {
        var j = 0
        let one = SIMD16<UInt32>(repeating: 1), bias = SIMD16<UInt32>(repeating: 0x7FFF)
        while j + 16 <= count {
            let v = UnsafeRawPointer(x + j).loadUnaligned(as: SIMD16<Float>.self)
            let bits = unsafeBitCast(v, to: SIMD16<UInt32>.self)
            var rounded = (bits &+ bias &+ ((bits &>> 16) & one)) &>> 16
            let nan = v .!= v
            if any(nan) { rounded.replace(with: (bits &>> 16) | SIMD16<UInt32>(repeating: 0x40), where: nan) }
            UnsafeMutableRawPointer(h + j).storeBytes(of: SIMD16<UInt16>(truncatingIfNeeded: rounded), as: SIMD16<UInt16>.self)
            j += 16
        }
        while j < count { h[j] = round(x[j]); j += 1 }
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
