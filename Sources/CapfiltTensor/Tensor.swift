// A dense, row-major fp32 array that owns its memory. It is the one currency between the weight loader,
// the ops and the models: nothing clever (no views, no strides), so every op can hand its pointer to BLAS.
#if canImport(Glibc)
import Glibc
#endif

/// Row-major fp32 storage with a shape. The last dimension is contiguous.
///
/// A `Tensor` is a reference type: ops write into preallocated outputs so the hot loops never allocate.
/// It is `@unchecked Sendable` because the models share read-only weights across threads; code that writes
/// a tensor owns it exclusively for the duration.
public final class Tensor: @unchecked Sendable {
    /// Dimensions, outermost first, e.g. `(B, T, C)`.
    public let shape: [Int]
    /// Number of elements, the product of `shape`.
    public let count: Int
    /// `count` floats, row-major.
    public let data: UnsafeMutablePointer<Float>
    /// For a tensor viewing memory it does not own (a memory-mapped checkpoint): what keeps that memory alive.
    /// Such memory may be read-only; weights are never written after loading.
    private let owner: AnyObject?
    /// True when `data` lies in a read-only private mapping of a file: its pages can be given back to the
    /// kernel and are read from the file again if touched (`releaseFP32Pages`).
    private let isFileMapping: Bool
    /// For a linear layer's weight `(N, K)`: the reduced-precision copy `Ops.linear` uses instead, set once at
    /// load by `reduce(to:)` (nil: fp32).
    public internal(set) var reduced: ReducedWeight?

    /// A zero-filled tensor.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.data = .allocate(capacity: max(count, 1))
        self.data.initialize(repeating: 0, count: max(count, 1))
        self.owner = nil
        self.isFileMapping = false
    }

    /// A tensor viewing `count` floats at `pointer`, kept valid by `owner` (e.g. a memory-mapped file).
    /// Nothing is copied: a 1 GB checkpoint used in place costs its pages once, shared with the page cache.
    /// `fileMapping`: the memory is a read-only `MAP_PRIVATE` mapping of a file (what `owner` keeps mapped).
    public init(borrowing pointer: UnsafePointer<Float>, shape: [Int], owner: AnyObject, fileMapping: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.data = UnsafeMutablePointer(mutating: pointer)
        self.owner = owner
        self.isFileMapping = fileMapping
    }

    /// Gives the pages of a file-mapped tensor back to the kernel (`MADV_DONTNEED`): they leave this process's
    /// resident memory and are read from the file again if touched, so the values never change. Called once a
    /// weight has its reduced-precision copy, which `Ops.linear` uses instead: a bf16 model then holds about
    /// half the memory of an fp32 one. Owned memory (weights converted from fp16/bf16 files) is kept.
    func releaseFP32Pages() {
        guard isFileMapping, count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: data) + page - 1) / page * page  // whole pages inside the tensor only
        let end = (Int(bitPattern: data + count)) / page * page
        guard end > start else { return }
        _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, Int32(MADV_DONTNEED))
    }

    /// True when the storage belongs to someone else (see `init(borrowing:shape:owner:)`).
    public var isBorrowed: Bool { owner != nil }

    /// A tensor holding a copy of `values`, which must have `shape.product` elements.
    public convenience init(shape: [Int], values: [Float]) {
        self.init(zeros: shape)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { data.update(from: base, count: count) }
        }
    }

    /// A tensor filled by `body`, which receives the uninitialised-but-zeroed buffer.
    public convenience init(shape: [Int], fill body: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        self.init(zeros: shape)
        try body(UnsafeMutableBufferPointer(start: data, count: count))
    }

    deinit { if owner == nil { data.deallocate() } }

    /// The elements as a Swift array (a copy).
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// The buffer, for loops that want bounds-checked access in debug builds.
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }

    /// Pointer to row `i` of the tensor seen as `(count / lastDim, lastDim)`.
    @inlinable
    public func row(_ i: Int) -> UnsafeMutablePointer<Float> { data + i * (shape.last ?? 1) }

    /// Size of dimension `i`; negative indices count from the end.
    @inlinable
    public func dim(_ i: Int) -> Int { i < 0 ? shape[shape.count + i] : shape[i] }

    /// The same elements with a new shape of equal count: a view sharing this tensor's storage.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(borrowing: data, shape: newShape, owner: self)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor\(shape)" }
}
