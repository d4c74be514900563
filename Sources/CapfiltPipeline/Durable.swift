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
        try? FileManager.default.removeItem(at: url)
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw PipelineError("cannot create \(url.path): check that the output folder is writable")
        }
        let handle = try FileHandle(forWritingTo: url)
        try handle.write(contentsOf: bytes)
        try handle.synchronize()
        try handle.close()
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
