// Buffered sequential reads from a file: the reader's only I/O. Memory stays at one chunk plus the member being
// returned, whatever the shard size; large members bypass the chunk buffer and large skips become seeks.

import Foundation

/// Reads a file front to back through a fixed-size buffer, tracking the absolute offset.
final class ByteSource {
    /// Large enough that syscalls do not dominate, small enough to be noise next to a decoded image.
    static let chunkSize = 1 << 20

    let path: String
    private let handle: FileHandle
    /// File size, re-measured when a skip would pass it; only used to clamp seeks, since reads report the real end.
    private var fileSize: Int64
    private var buffer: [UInt8] = []
    private var bufferIndex = 0
    /// Absolute offset of the next byte `read` or `skip` will consume.
    private(set) var position: Int64 = 0

    init(url: URL) throws {
        path = url.path
        do {
            handle = try FileHandle(forReadingFrom: url)
        } catch {
            throw TarError(.cannotOpen, path: url.path, detail: "cannot open for reading (\(error.localizedDescription))")
        }
        do {
            fileSize = Int64(try handle.seekToEnd())
            try handle.seek(toOffset: 0)
        } catch {
            try? handle.close()
            throw TarError(.readFailed, path: url.path, detail: "cannot seek; shards must be regular files (\(error))")
        }
    }

    deinit {
        try? handle.close()
    }

    /// Appends up to `count` bytes to `output`; returns how many were appended (fewer only at end of file).
    func read(into output: inout [UInt8], count: Int) throws -> Int {
        var needed = count
        while needed > 0 {
            let available = buffer.count - bufferIndex
            if available > 0 {
                let taken = min(available, needed)
                output.append(contentsOf: buffer[bufferIndex..<(bufferIndex + taken)])
                bufferIndex += taken
                needed -= taken
                position += Int64(taken)
                continue
            }
            if needed >= Self.chunkSize {
                // Read big members straight into the output instead of through the chunk buffer.
                let data = try readFromHandle(upTo: needed)
                if data.isEmpty { break }
                output.append(contentsOf: data)
                needed -= data.count
                position += Int64(data.count)
                continue
            }
            let data = try readFromHandle(upTo: Self.chunkSize)
            if data.isEmpty { break }
            buffer = [UInt8](data)
            bufferIndex = 0
        }
        return count - needed
    }

    /// Advances `count` bytes without reading them; returns how many were skipped (fewer only at end of file).
    func skip(_ count: Int64) throws -> Int64 {
        guard count > 0 else { return 0 }
        let available = Int64(buffer.count - bufferIndex)
        if count <= available {
            bufferIndex += Int(count)
            position += count
            return count
        }
        buffer = []
        bufferIndex = 0
        do {
            // Seeking past the end succeeds silently, so clamp to the size; re-measure first in case it grew.
            let wanted = position > Int64.max - count ? Int64.max : position + count
            if wanted > fileSize {
                fileSize = Int64(try handle.seekToEnd())
            }
            let target = max(position, min(wanted, fileSize))
            try handle.seek(toOffset: UInt64(target))
            let skipped = target - position
            position = target
            return skipped
        } catch {
            throw TarError(.readFailed, path: path, offset: position, detail: "seek failed (\(error))")
        }
    }

    private func readFromHandle(upTo count: Int) throws -> Data {
        do {
            return try handle.read(upToCount: count) ?? Data()
        } catch {
            throw TarError(.readFailed, path: path, offset: position, detail: "read failed (\(error))")
        }
    }
}
