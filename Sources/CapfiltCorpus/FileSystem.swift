// The module's only POSIX calls: directory listings with raw names and no link following, lstat/stat, realpath,
// bounded whole-file reads, and a buffered line reader. Raw calls keep errno, so messages name the exact cause,
// and let listings see names that are not valid UTF-8 instead of silently mangling them.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What a directory entry or path is.
enum FileKind: Equatable, Sendable {
    case regular(size: Int64)
    case directory
    case symlink
    /// A fifo, socket or device, named for messages.
    case other(String)

    init(mode: mode_t, size: Int64) {
        switch mode & S_IFMT {
        case S_IFREG: self = .regular(size: size)
        case S_IFDIR: self = .directory
        case S_IFLNK: self = .symlink
        case S_IFIFO: self = .other("fifo")
        case S_IFSOCK: self = .other("socket")
        case S_IFCHR: self = .other("character device")
        case S_IFBLK: self = .other("block device")
        default: self = .other("file of unknown type")
        }
    }

    var isRegular: Bool {
        if case .regular = self { return true }
        return false
    }
}

/// An operating-system error: errno and its text.
struct SystemFailure: Error, Equatable, Sendable, CustomStringConvertible {
    let code: Int32
    let message: String

    static func current() -> SystemFailure {
        let code = errno
        return SystemFailure(code: code, message: String(cString: strerror(code)))
    }

    var isNotFound: Bool { code == ENOENT || code == ENOTDIR }
    var isPermission: Bool { code == EACCES || code == EPERM }
    var description: String { message.lowercased() }
}

/// One directory entry, by raw name bytes, not following links.
struct DirectoryEntry: Sendable {
    let name: [UInt8]
    let kind: FileKind

    /// The name as a string, or nil when it is not valid UTF-8 (such a file cannot be named in a URL or a list).
    var text: String? { String(validating: name, as: UTF8.self) }

    /// Byte-order sort key under which a depth-first walk visits paths in byte order of their full relative path:
    /// a directory sorts as `name/`, so `a/x` comes after `a-b` exactly as the full paths compare.
    var walkSortKey: [UInt8] { kind == .directory ? name + [UInt8(ascii: "/")] : name }
}

enum FileSystem {
    /// `stat` (following links) or `lstat` (not).
    static func kind(of path: String, followingLinks: Bool) -> Result<FileKind, SystemFailure> {
        var info = stat()
        let result = followingLinks ? stat(path, &info) : lstat(path, &info)
        if result != 0 { return .failure(.current()) }
        return .success(FileKind(mode: info.st_mode, size: Int64(info.st_size)))
    }

    /// The canonical absolute path with every link resolved, or nil when it cannot be resolved (dangling link,
    /// permission). Used to check that a link stays inside a folder.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Whether `path` (canonical) is `root` (canonical) or lies below it.
    static func isInside(_ path: String, root: String) -> Bool {
        if path == root { return true }
        let prefix = root.hasSuffix("/") ? root : root + "/"
        return path.hasPrefix(prefix)
    }

    /// A directory's entries except `.` and `..`, unsorted, each `lstat`ed (links are reported as links).
    static func list(_ path: String) -> Result<[DirectoryEntry], SystemFailure> {
        guard let directory = opendir(path) else { return .failure(.current()) }
        defer { closedir(directory) }
        let descriptor = dirfd(directory)
        var entries: [DirectoryEntry] = []
        while true {
            errno = 0
            guard let entry = readdir(directory) else {
                if errno != 0 { return .failure(.current()) }
                break
            }
            var info = stat()
            let (name, statResult): ([UInt8], Int32) = withUnsafeMutablePointer(to: &entry.pointee.d_name) { field in
                let capacity = MemoryLayout.size(ofValue: field.pointee)
                return field.withMemoryRebound(to: CChar.self, capacity: capacity) { cName in
                    let length = strnlen(cName, capacity)
                    let bytes = UnsafeRawBufferPointer(start: cName, count: length)
                    return (Array(bytes), fstatat(descriptor, cName, &info, AT_SYMLINK_NOFOLLOW))
                }
            }
            if name == [UInt8(ascii: ".")] || name == [UInt8(ascii: "."), UInt8(ascii: ".")] { continue }
            // An entry removed between readdir and fstatat is simply gone.
            if statResult != 0 { continue }
            entries.append(DirectoryEntry(name: name, kind: FileKind(mode: info.st_mode, size: Int64(info.st_size))))
        }
        return .success(entries)
    }

    /// Why a whole-file read failed.
    enum ReadFailure: Error, Equatable {
        case notFound
        case permissionDenied
        case notRegular(String)
        case empty
        case tooLarge(size: Int64)
        case failed(SystemFailure)
    }

    /// Reads a whole regular file of at most `maxBytes` bytes. The size is checked on the opened descriptor before
    /// any byte is read, so an oversize file costs nothing and a path swapped for a fifo cannot block us.
    static func readFile(_ path: String, maxBytes: Int) -> Result<[UInt8], ReadFailure> {
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        if descriptor < 0 {
            let failure = SystemFailure.current()
            if failure.isNotFound { return .failure(.notFound) }
            if failure.isPermission { return .failure(.permissionDenied) }
            return .failure(.failed(failure))
        }
        defer { close(descriptor) }
        var info = stat()
        if fstat(descriptor, &info) != 0 { return .failure(.failed(.current())) }
        let kind = FileKind(mode: info.st_mode, size: Int64(info.st_size))
        guard case .regular(let size) = kind else {
            return .failure(.notRegular(kind == .directory ? "directory" : describe(kind)))
        }
        if size == 0 { return .failure(.empty) }
        if size > Int64(maxBytes) { return .failure(.tooLarge(size: size)) }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        var filled = 0
        let result: SystemFailure? = bytes.withUnsafeMutableBytes { buffer in
            while filled < buffer.count {
                guard let base = buffer.baseAddress else { return nil }
                let count = read(descriptor, base + filled, buffer.count - filled)
                if count < 0 {
                    if errno == EINTR { continue }
                    return .current()
                }
                if count == 0 { break }  // shrank since fstat: keep what is there
                filled += count
            }
            return nil
        }
        if let result { return .failure(.failed(result)) }
        if filled == 0 { return .failure(.empty) }
        if filled < bytes.count { bytes.removeSubrange(filled...) }
        return .success(bytes)
    }

    static func describe(_ kind: FileKind) -> String {
        switch kind {
        case .regular: return "regular file"
        case .directory: return "directory"
        case .symlink: return "symbolic link"
        case .other(let name): return name
        }
    }
}

/// Reads a file line by line through a fixed buffer: memory is one buffer plus the longest line allowed.
///
/// Lines end at `\n`; a `\r` right before it is dropped and reported in `terminator`, so CSV can keep a quoted
/// field's line breaks as written. A UTF-8 byte order mark at the start of the file is skipped.
final class LineReader {
    /// What `nextLine` found.
    enum Line: Equatable {
        /// A line without its terminator; `terminator` is `\n`, `\r\n`, or empty for a last line without one.
        case line([UInt8], terminator: [UInt8])
        /// A line longer than the limit, skipped without being buffered; `bytes` is its length.
        case tooLong(bytes: Int)
        /// End of file.
        case end
    }

    static let chunkSize = 1 << 16

    let path: String
    /// 1-based number of the line `nextLine` returned last; 0 before the first.
    private(set) var lineNumber = 0
    private let descriptor: Int32
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    private var atEOF = false
    private var checkedBOM = false

    init(path: String) throws(SystemFailure) {
        self.path = path
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 { throw SystemFailure.current() }
        buffer = [UInt8](repeating: 0, count: Self.chunkSize)
    }

    deinit {
        close(descriptor)
    }

    /// The next line, at most `maxBytes` long (longer ones are skipped and reported), or `.end`.
    func nextLine(maxBytes: Int) throws(SystemFailure) -> Line {
        if !checkedBOM {
            checkedBOM = true
            while end - start < 3 && !atEOF { try fill() }
            if end - start >= 3 && buffer[start] == 0xef && buffer[start + 1] == 0xbb && buffer[start + 2] == 0xbf {
                start += 3
            }
        }
        var scanned = start
        while true {
            if let newline = firstNewline(from: scanned) {
                lineNumber += 1
                let length = newline - start
                if length > maxBytes + 1 {
                    start = newline + 1
                    return .tooLong(bytes: length)
                }
                let crlf = newline > start && buffer[newline - 1] == UInt8(ascii: "\r")
                let line = Array(buffer[start..<(crlf ? newline - 1 : newline)])
                start = newline + 1
                if line.count > maxBytes { return .tooLong(bytes: line.count) }
                return .line(line, terminator: crlf ? [13, 10] : [10])
            }
            scanned = end
            if atEOF {
                guard end > start else { return .end }
                lineNumber += 1
                let line = Array(buffer[start..<end])
                start = end
                if line.count > maxBytes { return .tooLong(bytes: line.count) }
                return .line(line, terminator: [])
            }
            if end - start > maxBytes + 1 {
                // Too long to keep: drop what we have and skip to the next newline without buffering.
                let skipped = end - start
                start = end
                return .tooLong(bytes: skipped + (try skipRestOfLine()))
            }
            let before = start
            try fill()
            scanned -= before - start
        }
    }

    /// Index of the first `\n` in `buffer[from..<end]`.
    private func firstNewline(from: Int) -> Int? {
        guard from < end else { return nil }
        return buffer.withUnsafeBytes { raw -> Int? in
            guard let base = raw.baseAddress,
                  let found = memchr(base + from, Int32(UInt8(ascii: "\n")), end - from) else { return nil }
            return base.distance(to: UnsafeRawPointer(found))
        }
    }

    /// Consumes bytes up to and including the next newline; returns how many were consumed before it.
    private func skipRestOfLine() throws(SystemFailure) -> Int {
        var skipped = 0
        while true {
            if let newline = firstNewline(from: start) {
                skipped += newline - start
                start = newline + 1
                lineNumber += 1
                return skipped
            }
            skipped += end - start
            start = end
            if atEOF {
                lineNumber += 1
                return skipped
            }
            try fill()
        }
    }

    /// Moves unread bytes to the front, grows the buffer if it is full, and reads more.
    private func fill() throws(SystemFailure) {
        if start > 0 {
            let remaining = end - start
            if remaining > 0 {
                buffer.withUnsafeMutableBytes { raw in
                    guard let base = raw.baseAddress else { return }
                    memmove(base, base + start, remaining)
                }
            }
            start = 0
            end = remaining
        }
        if end == buffer.count {
            buffer.append(contentsOf: [UInt8](repeating: 0, count: buffer.count))
        }
        while true {
            let count = buffer.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return read(descriptor, base + end, raw.count - end)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemFailure.current()
            }
            if count == 0 { atEOF = true }
            end += count
            return
        }
    }
}
