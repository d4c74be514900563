// Crash-safe file replacement: write a temporary file, fsync it, rename it over the target, fsync the folder. A
// reader sees the old file or the new one, never a part.
import Foundation

enum Durable {
    /// Replaces `url` with `bytes`. `unique` gives the temporary file a name of this process's own, for files
    /// that two processes may write at once (a stale worker and the one that took its unit over).
    static func write(_ bytes: [UInt8], to url: URL, unique: Bool = false) throws {
        let suffix = unique ? ".\(getpid()).\(UInt32.random(in: 0...UInt32.max))" : ""
        let temp = url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + suffix + ".partial")
        try writeFile(bytes, to: temp)
        try rename(temp, to: url)
    }

    /// Writes and fsyncs a new file (replacing any there).
    static func writeFile(_ bytes: [UInt8], to url: URL) throws {
        let handle = try create(url)
        try handle.write(contentsOf: bytes)
        try handle.synchronize()
        try handle.close()
    }

    /// Creates (or truncates) `url` for writing. open(2), not FileManager.createFile, which writes a temporary
    /// `.dat.nosync*` file and renames it: a kill in between would leave that file in the output folder.
    static func create(_ url: URL) throws -> FileHandle {
        // A link in its place is replaced, never written through.
        unlink(url.path)
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw PipelineError("cannot create \(url.path) (\(String(cString: strerror(errno)))): check that the output folder is writable")
        }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    static func rename(_ from: URL, to: URL) throws {
        guard Foundation.rename(from.path, to.path) == 0 else {
            throw PipelineError("cannot rename \(from.path) to \(to.path) (errno \(errno)): check the output folder")
        }
        syncFolder(to.deletingLastPathComponent())
    }

    static func syncFolder(_ folder: URL) {
        let dir = open(folder.path, O_RDONLY)
        if dir >= 0 { fsync(dir); close(dir) }
    }
}
