// Row-parallel loops for the non-GEMM ops, so both cores work between GEMMs. Each row is computed exactly as
// on one thread (no reductions across chunks), so results do not depend on the thread count.
import Dispatch
import Synchronization

public enum Parallel {
    /// Rows below this many elements in total run on the calling thread: dispatch costs more than it saves.
    public static let minimumWork = 1 << 15

    /// Calls `body` on disjoint consecutive ranges covering `0..<count`, on up to `BLAS.threads` threads.
    /// `work` is the total number of scalar operations, used to skip threading for small inputs.
    @inlinable
    public static func rows(_ count: Int, work: Int, _ body: (Range<Int>) -> Void) {
        let workers = min(BLAS.threads, count)
        if workers <= 1 || work < minimumWork {
            body(0..<count)
            return
        }
        let chunk = (count + workers - 1) / workers
        // The body writes disjoint rows through raw pointers: safe to share, though the compiler can't prove it.
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let start = w * chunk
                let end = min(count, start + chunk)
                if start < end { shared.value(start..<end) }
            }
        }
    }
}

extension Parallel {
    /// Calls `body(piece, worker)` for every piece in `0..<count`, on up to `workers` threads (`worker` in
    /// `0..<workers`, for per-thread scratch). Each worker takes the next piece until none is left, so a worker
    /// slowed down by another process on its core does fewer; a piece must compute the same whoever runs it.
    static func forEachPiece(_ count: Int, workers: Int, _ body: (_ piece: Int, _ worker: Int) -> Void) {
        let workers = min(workers, count)
        if workers <= 1 {
            for p in 0..<count { body(p, 0) }
            return
        }
        let next = Atomic<Int>(0)
        // The body writes disjoint outputs through raw pointers: safe to share, though the compiler can't prove it.
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                while true {
                    let p = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    if p >= count { break }
                    shared.value(p, w)
                }
            }
        }
    }
}

@usableFromInline
struct UncheckedSendable<Value>: @unchecked Sendable {
    @usableFromInline let value: Value
    @usableFromInline init(_ value: Value) { self.value = value }
}
