// A read-only memory map of a whole checkpoint file: multi-GB weights are never copied into Swift arrays;
// tensors are copied out of the map one at a time, on request.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The bytes of a file, mapped read-only and private; unmapped when the last reference goes.
///
/// `@unchecked Sendable`: the mapping is never written, so sharing it across threads is safe.
final class MappedFile: @unchecked Sendable {
    /// The file, for messages.
    let path: String
    /// The whole file (count 0 for an empty file, which cannot be mapped).
    let bytes: UnsafeRawBufferPointer
    /// True for a heap copy (tests feed thousands of mutated files without touching the disk).
    private let isHeapCopy: Bool
    /// True when `bytes` is a mapping of the file (not a heap copy): pages may be given back and re-read.
    var isFileMapping: Bool { !isHeapCopy && bytes.baseAddress != nil }

    /// A heap copy of `contents` posing as the file `path`.
    init(contents: [UInt8], path: String) {
        self.path = path
        isHeapCopy = true
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(contents.count, 1), alignment: 16)
        contents.withUnsafeBytes { memory.copyMemory(from: $0) }
        bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(memory)[0..<contents.count])
    }

    init(url: URL) throws {
        path = url.path
        isHeapCopy = false
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw WeightsError(.fileUnreadable, path: path, problem: "cannot open: \(reason)",
                               fix: "Check that the file exists and is readable")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            throw WeightsError(.fileUnreadable, path: path, problem: "cannot stat: \(reason)",
                               fix: "Check that the file exists and is readable")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw WeightsError(.fileUnreadable, path: path, problem: "not a regular file",
                               fix: "Pass the weight file itself, or use CheckpointFolder for a folder")
        }
        let size = Int(info.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let address, address != UnsafeMutableRawPointer(bitPattern: -1) else {
            let reason = String(cString: strerror(errno))
            throw WeightsError(.fileUnreadable, path: path, problem: "cannot memory-map \(size) bytes: \(reason)",
                               fix: "Check free address space and that the file system supports mmap")
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        guard let base = bytes.baseAddress else { return }
        if isHeapCopy {
            base.deallocate()
        } else {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }

    /// Reads a little-endian integer at `offset`; the caller has checked the range.
    @inline(__always)
    func load<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
