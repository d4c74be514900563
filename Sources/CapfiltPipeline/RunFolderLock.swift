// One process owns a run folder at a time. Two runs (or a run and an export) on one folder interleave their
// shard writes and lose samples, so each takes an exclusive flock on OUTPUT/capfilt.lock first. The kernel
// releases it when the process ends however it ends (SIGKILL, power cut), so there is never a stale lock to
// remove by hand; the file itself stays and only says who holds it, for the message.
import Foundation

public final class RunFolderLock: @unchecked Sendable {
    public static let fileName = "capfilt.lock"

    private var descriptor: Int32
    private let lock = NSLock()
    public let folder: URL

    /// Takes the folder's lock without waiting. `purpose` (e.g. "capfilt run spec.yaml") is recorded for the
    /// message another process gets. Throws a PipelineError naming the holder when it is taken.
    /// Another process holds the lock; `description` names it and says what to do.
    public struct Busy: Error, CustomStringConvertible {
        public let description: String
        /// What the holder wrote: "pid 123: capfilt run spec.yaml, since ...".
        public let holder: String?
    }

    /// The lock on `folder/name`, or nil when another process holds it.
    public static func take(folder: URL, name: String, purpose: String) throws -> RunFolderLock? {
        do { return try RunFolderLock(folder: folder, name: name, purpose: purpose) } catch is Busy { return nil }
    }

    public init(folder: URL, name: String = RunFolderLock.fileName, purpose: String) throws {
        self.folder = folder
        let path = folder.appendingPathComponent(name).path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw PipelineError("cannot open \(path) (\(String(cString: strerror(errno)))): the output folder must be writable")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let busy = errno == EWOULDBLOCK
            let reason = String(cString: strerror(errno))
            let holder = Self.holder(fd)
            close(fd)
            if busy {
                throw Busy(description: "another capfilt process is using \(folder.path)\(holder.map { " (\($0))" } ?? ""). One process works on a run folder at a time: wait for it to finish (`capfilt status \(folder.path)` shows progress) or stop it, then run this again.", holder: holder)
            }
            throw PipelineError("cannot lock \(path) (\(reason)); the output folder's file system must support file locks")
        }
        descriptor = fd
        let note = "pid \(getpid()): \(purpose), since \(ISO8601DateFormatter().string(from: Date()))\n"
        _ = ftruncate(fd, 0)
        _ = note.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    deinit { release() }

    /// Gives the folder up now (the kernel does it anyway when the process ends).
    public func release() {
        lock.lock(); defer { lock.unlock() }
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
    }

    /// What the holder wrote into the lock file: "pid 123: capfilt run spec.yaml, since ...".
    private static func holder(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = pread(fd, &buffer, buffer.count, 0)
        guard n > 0 else { return nil }
        let text = String(decoding: buffer[..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }
}

/// The output folder, created with a message that says what is wrong instead of Foundation's error codes.
enum OutputFolder {
    static func create(_ url: URL) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            if isDirectory.boolValue { return }
            throw PipelineError("output.folder \(url.path) is a file, not a folder: choose another output.folder")
        }
        // Find the deepest part of the path that exists, to say exactly why it cannot be created.
        var ancestor = url.deletingLastPathComponent()
        while !fm.fileExists(atPath: ancestor.path, isDirectory: &isDirectory) && ancestor.path != "/" {
            ancestor = ancestor.deletingLastPathComponent()
        }
        if !isDirectory.boolValue {
            throw PipelineError("cannot create the output folder \(url.path): \(ancestor.path) is a file, not a folder")
        }
        if access(ancestor.path, W_OK) != 0 {
            throw PipelineError("cannot create the output folder \(url.path): \(ancestor.path) is not writable by this user (\(String(cString: strerror(errno)))). Choose another output.folder or fix the permissions.")
        }
        do {
            try fm.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError
            let reason = underlying.map { String(cString: strerror(Int32($0.code))) } ?? (error as NSError).localizedDescription
            throw PipelineError("cannot create the output folder \(url.path): \(reason). Check the disk and the path, or choose another output.folder.")
        }
    }
}
