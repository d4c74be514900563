// Buffered sequential reads from a file or a stream: the reader's only I/O. Memory stays at one chunk plus the
// member being returned, whatever the shard size; large members bypass the chunk buffer and, in files, large
// skips become seeks (a stream reads what it skips and drops it).

import Foundation

/// A forward-only byte stream a tar archive is read from when it is not a file: a command's output (`pipe:`
/// inputs). `read` blocks until bytes arrive and returns an empty array only at the stream's end; a stream whose
/// producer failed throws there instead (a ``TarError`` of kind `.streamFailed`), so a failure is never taken
/// for the archive's end.
public protocol ByteStream: AnyObject {
    /// Up to `count` (> 0) bytes, at least one unless the stream has ended.
    func read(upTo count: Int) throws -> [UInt8]
}

/// Reads a file or a stream front to back through a fixed-size buffer, tracking the absolute offset.
final class ByteSource {
    /// Large enough that syscalls do not dominate, small enough to be noise next to a decoded image.
    static let chunkSize = 1 << 20

    private enum Backing {
        case file(FileHandle)
        case stream(ByteStream)
    }

    let path: String
    private let backing: Backing
    /// File size, re-measured when a skip would pass it; only used to clamp seeks, since reads report the real end.
    private var fileSize: Int64
    private var buffer: [UInt8] = []
    private var bufferIndex = 0
    /// Absolute offset of the next byte `read` or `skip` will consume.
    private(set) var position: Int64 = 0

    init(url: URL) throws {
        path = url.path
        let handle: FileHandle
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
        backing = .file(handle)
    }

    /// Reads `stream`; `name` stands for it in errors.
    init(stream: ByteStream, name: String) {
        path = name
        backing = .stream(stream)
        fileSize = .max
    }

    deinit {
        if case .file(let handle) = backing { try? handle.close() }
    }

    /// Reads a stream to its end, so that a producer's failure after the archive's end-of-archive marker is
    /// seen (a command that wrote a whole archive and then exited with an error status). Nothing for files.
    func finish() throws {
        guard case .stream = backing else { return }
        while try skip(Int64(Self.chunkSize)) > 0 {}
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
                let data = try readChunk(upTo: needed)
                if data.isEmpty { break }
                output.append(contentsOf: data)
                needed -= data.count
                position += Int64(data.count)
                continue
            }
            let data = try readChunk(upTo: Self.chunkSize)
            if data.isEmpty { break }
            buffer = data
            bufferIndex = 0
        }
        return count - needed
    }

    /// Advances `count` bytes without reading them; returns how many were skipped (fewer only at the end).
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
        guard case .file(let handle) = backing else {
            // A stream cannot seek: read what is skipped, a chunk at a time, and drop it.
            var skipped = Int64(available)
            position += skipped
            while skipped < count {
                let data = try readChunk(upTo: Int(min(count - skipped, Int64(Self.chunkSize))))
                if data.isEmpty { break }
                skipped += Int64(data.count)
                position += Int64(data.count)
            }
            return skipped
        }
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

    /// Up to `count` bytes from the file or stream; empty at the end.
    private func readChunk(upTo count: Int) throws -> [UInt8] {
        switch backing {
        case .stream(let stream):
            return try stream.read(upTo: count)
        case .file(let handle):
            do {
                return [UInt8](try handle.read(upToCount: count) ?? Data())
            } catch {
                throw TarError(.readFailed, path: path, offset: position, detail: "read failed (\(error))")
            }
        }
    }
}
