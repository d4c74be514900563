// Deterministic ustar writer for output shards: the same calls give the same bytes, so a resumed run is
// byte-identical to an uninterrupted one. Crash safety (temp name, fsync, rename) is the caller's job.

import Foundation

/// Writes a ustar archive: mode 0644, uid/gid 0, empty owner names, one fixed mtime. Names over 100 bytes use the
/// ustar prefix field when they split at a slash, otherwise a PAX header (so do non-ASCII names and sizes of
/// 8 GiB and over). ``finish()`` appends two zero blocks and pads to a whole 10240-byte record, as tar does.
/// The bytes equal Python's `TarInfo.tobuf` output for the same member (ustar format where it fits, PAX
/// otherwise), which the tests check.
///
/// Not thread-safe: one writer per shard, used from one task. After any thrown write error the file is
/// incomplete: discard it (it is the caller's temp file) rather than calling ``finish()``.
public final class TarWriter {
    /// PAX header block name. Python's tarfile uses the same fixed name; GNU tar's default embeds a process id,
    /// which would break determinism.
    static let paxHeaderName = "././@PaxHeader"
    /// Writes are gathered into chunks of this size.
    static let chunkSize = 1 << 20
    /// Largest value an 11-digit octal field holds (8 GiB - 1).
    static let maxOctal11: Int64 = 0o77777777777

    /// Bytes of archive produced so far, buffered ones included; after ``finish()``, the file's size.
    public private(set) var bytesWritten: Int64 = 0
    /// Output path (or a description of the handle), for messages.
    public let path: String

    private let handle: FileHandle
    private let ownsHandle: Bool
    private let mtime: Int64
    private var buffer: [UInt8] = []
    private var finished = false

    /// Creates (or truncates) the file at `url`. `mtime` is stamped on every member: 0...8589934591.
    public init(url: URL, mtime: Int = 0) throws {
        path = url.path
        try Self.check(mtime: mtime, path: url.path)
        // open(2), not FileManager.createFile, which writes a temporary `.dat.nosync*` file and renames it (a
        // kill in between leaves that file behind).
        // A link in its place is replaced, never written through.
        unlink(url.path)
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw TarError(.cannotOpen, path: url.path, detail: "cannot create the output file (\(String(cString: strerror(errno))))")
        }
        handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        ownsHandle = true
        self.mtime = Int64(mtime)
        buffer.reserveCapacity(Self.chunkSize)
    }

    /// Writes to an open handle from its current position. ``finish()`` syncs it but leaves it open.
    public init(fileHandle: FileHandle, path: String = "<file handle>", mtime: Int = 0) throws {
        self.path = path
        try Self.check(mtime: mtime, path: path)
        handle = fileHandle
        ownsHandle = false
        self.mtime = Int64(mtime)
        buffer.reserveCapacity(Self.chunkSize)
    }

    deinit {
        // An unfinished archive is the caller's temp file to discard; just release the descriptor.
        if ownsHandle && !finished { try? handle.close() }
    }

    private static func check(mtime: Int, path: String) throws {
        guard mtime >= 0, Int64(mtime) <= maxOctal11 else {
            throw TarError(.invalidArgument, path: path,
                           detail: "mtime \(mtime) is outside 0...\(maxOctal11), the range a ustar header holds")
        }
    }

    /// Appends one regular-file member. Throws ``TarError`` for names readers would refuse
    /// (see ``MemberName/unsafeReason(_:)``) and for I/O errors.
    public func add(name: String, bytes: [UInt8]) throws {
        guard !finished else {
            throw TarError(.writerFinished, path: path, detail: "cannot add '\(name)' after finish()")
        }
        if let reason = MemberName.unsafeReason(name) {
            throw TarError(.invalidMemberName, path: path, offset: bytesWritten,
                           detail: "cannot add \(name.debugDescription): \(reason)")
        }
        if name.hasSuffix("/") {
            throw TarError(.invalidMemberName, path: path, offset: bytesWritten,
                           detail: "cannot add '\(name)': a trailing slash marks a directory, not a file")
        }

        let nameBytes = Array(name.utf8)
        let size = Int64(bytes.count)
        var header = Self.blankHeader(mode: 0o644, mtime: mtime)
        var paxRecords: [(String, [UInt8])] = []

        if nameBytes.allSatisfy({ $0 < 0x80 }), let (prefix, rest) = Self.ustarSplit(nameBytes) {
            TarHeader.putBytes(rest, into: &header, at: TarHeader.name)
            TarHeader.putBytes(prefix, into: &header, at: TarHeader.prefix)
        } else {
            // PAX path is UTF-8 by definition; the header keeps an ASCII stand-in for readers without PAX, made
            // the way Python's tarfile makes it ('?' per non-ASCII character, cut at 100 bytes).
            paxRecords.append(("path", nameBytes))
            let standIn = name.unicodeScalars.map { $0.isASCII ? UInt8($0.value) : UInt8(ascii: "?") }
            TarHeader.putBytes(standIn.prefix(TarHeader.name.count), into: &header, at: TarHeader.name)
        }
        if !TarHeader.putOctal(size, into: &header, at: TarHeader.size) {
            paxRecords.append(("size", Array(String(size).utf8)))
            TarHeader.putOctal(0, into: &header, at: TarHeader.size)
        }
        header[TarHeader.typeflag] = UInt8(ascii: "0")
        TarHeader.seal(&header)

        if !paxRecords.isEmpty {
            let body = Self.paxBody(paxRecords)
            // The extended header's own fields are fixed (mode 0, mtime 0), as in Python's tarfile.
            var paxHeader = Self.blankHeader(mode: 0, mtime: 0)
            TarHeader.putBytes(Self.paxHeaderName.utf8, into: &paxHeader, at: TarHeader.name)
            TarHeader.putOctal(Int64(body.count), into: &paxHeader, at: TarHeader.size)
            paxHeader[TarHeader.typeflag] = UInt8(ascii: "x")
            TarHeader.seal(&paxHeader)
            try write(paxHeader)
            try write(body)
            try writeZeros(Int(TarHeader.padded(Int64(body.count))) - body.count)
        }
        try write(header)
        try write(bytes)
        try writeZeros(Int(TarHeader.padded(size) - size))
    }

    /// Ends the archive (two zero blocks, padding to a 10240-byte record), writes everything out and fsyncs.
    /// Closes the file if this writer opened it. Calling it again does nothing.
    public func finish() throws {
        guard !finished else { return }
        try writeZeros(2 * TarHeader.blockSize)
        let remainder = Int(bytesWritten % Int64(TarHeader.recordSize))
        if remainder > 0 { try writeZeros(TarHeader.recordSize - remainder) }
        try flush()
        do {
            try handle.synchronize()
            if ownsHandle { try handle.close() }
        } catch {
            throw TarError(.writeFailed, path: path, offset: bytesWritten, detail: "fsync/close failed (\(error))")
        }
        finished = true
    }

    // MARK: Header construction

    /// A ustar header with the fixed fields every member shares; name, size, type and checksum still to fill.
    /// Device numbers stay NUL, as Python's tarfile leaves them for non-device members.
    private static func blankHeader(mode: Int64, mtime: Int64) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: TarHeader.blockSize)
        TarHeader.putOctal(mode, into: &header, at: TarHeader.mode)
        TarHeader.putOctal(0, into: &header, at: TarHeader.uid)
        TarHeader.putOctal(0, into: &header, at: TarHeader.gid)
        TarHeader.putOctal(mtime, into: &header, at: TarHeader.mtime)
        TarHeader.putBytes("ustar\0".utf8, into: &header, at: TarHeader.magic)
        TarHeader.putBytes("00".utf8, into: &header, at: TarHeader.version)
        return header
    }

    /// Fits an ASCII name into ustar's name (100) and prefix (155) fields, splitting at a slash. Like Python's
    /// tarfile, the shortest prefix that works is chosen, so our bytes match its ustar output.
    static func ustarSplit(_ name: [UInt8]) -> (prefix: ArraySlice<UInt8>, name: ArraySlice<UInt8>)? {
        if name.count <= TarHeader.name.count { return (name[0..<0], name[...]) }
        for slash in name.indices where name[slash] == UInt8(ascii: "/") {
            if slash > TarHeader.prefix.count { return nil }
            if name.count - slash - 1 <= TarHeader.name.count { return (name[..<slash], name[(slash + 1)...]) }
        }
        return nil
    }

    /// "LENGTH KEY=VALUE\n" records; LENGTH counts its own digits, so it is found by iterating to a fixed point.
    static func paxBody(_ records: [(String, [UInt8])]) -> [UInt8] {
        var body: [UInt8] = []
        for (key, value) in records {
            let payload = 1 + key.utf8.count + 1 + value.count + 1  // " " key "=" value "\n"
            var length = payload + 1
            while payload + String(length).count != length { length = payload + String(length).count }
            body.append(contentsOf: String(length).utf8)
            body.append(UInt8(ascii: " "))
            body.append(contentsOf: key.utf8)
            body.append(UInt8(ascii: "="))
            body.append(contentsOf: value)
            body.append(UInt8(ascii: "\n"))
        }
        return body
    }

    // MARK: Output

    private func write(_ bytes: [UInt8]) throws {
        if buffer.count + bytes.count > Self.chunkSize {
            try flush()
            if bytes.count >= Self.chunkSize {
                try writeToHandle(bytes)
                bytesWritten += Int64(bytes.count)
                return
            }
        }
        buffer.append(contentsOf: bytes)
        bytesWritten += Int64(bytes.count)
    }

    private func writeZeros(_ count: Int) throws {
        guard count > 0 else { return }
        try write([UInt8](repeating: 0, count: count))
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try writeToHandle(buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeToHandle(_ bytes: [UInt8]) throws {
        do {
            try bytes.withUnsafeBytes { raw in
                guard let base = raw.baseAddress, raw.count > 0 else { return }
                // No copy: the Data only lives for this call, while `bytes` is pinned.
                try handle.write(contentsOf: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base),
                                                  count: raw.count, deallocator: .none))
            }
        } catch {
            throw TarError(.writeFailed, path: path, offset: bytesWritten, detail: "write failed (\(error))")
        }
    }
}
