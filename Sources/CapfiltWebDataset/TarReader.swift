// Streaming tar reader for untrusted shards: one member at a time, bounded memory, every format img2dataset,
// GNU tar, Python's tarfile and webdataset's writer produce (ustar, GNU, PAX, v7). Framing damage throws with the
// offset; per-member oddities (oversize, undecodable names) come back as a `problem` so the shard keeps going.

import Foundation

/// What a tar member is. Only `.file` members carry data the pipeline may use.
public enum TarEntryKind: Sendable, Equatable {
    case file, directory, symlink, hardlink, characterDevice, blockDevice, fifo
    /// Any other type flag (GNU sparse 'S', volume label 'V', vendor types...), with the raw flag byte.
    case other(UInt8)
}

/// One member's metadata after GNU and PAX extensions have been applied.
public struct TarEntry: Sendable, Equatable {
    /// Member path as stored (PAX `path`, else GNU long name, else ustar prefix + name); directories lose their
    /// trailing slash. Not sanitised: check it with ``MemberName/unsafeReason(_:)`` before using it as a path.
    public let name: String
    public let kind: TarEntryKind
    /// Size the header claims (PAX `size` overrides). Only `.file` and `.other` members have that many data bytes
    /// following; links, directories, devices and fifos never do, whatever the field says (as in Python's tarfile).
    public let size: Int
    /// Permission bits as stored.
    public let mode: Int
    /// Modification time, seconds since the epoch (PAX `mtime` truncated to whole seconds).
    public let mtime: Int
    /// Link target for symlinks and hardlinks; empty otherwise.
    public let linkName: String
    /// Offset of the member's first header block, its GNU long-name and PAX extended headers included (global PAX
    /// headers are not part of any member). Same as Python's `TarInfo.offset`.
    public let headerOffset: Int64

    public init(name: String, kind: TarEntryKind, size: Int, mode: Int, mtime: Int, linkName: String,
                headerOffset: Int64) {
        self.name = name
        self.kind = kind
        self.size = size
        self.mode = mode
        self.mtime = mtime
        self.linkName = linkName
        self.headerOffset = headerOffset
    }
}

/// Streaming reader: constant memory apart from the current member (one 1 MiB buffer plus the member's bytes).
///
/// Reads ustar (with the prefix field), GNU (long name 'L', long link 'K', base-256 numbers, old sparse headers
/// skipped), PAX ('x' per-file and 'g' global records: path, linkpath, size, mtime) and old v7 headers.
public final class TarReader {
    /// GNU long names and PAX records larger than this are skipped and the member refused: real ones are a few
    /// hundred bytes, and a hostile 8 GiB "long name" must not be loaded.
    public static let maxExtendedHeaderSize = 1 << 20
    /// Sizes beyond this are framing damage, not data (and would overflow offset arithmetic).
    static let maxPlausibleSize: Int64 = 1 << 60

    /// The archive's path, for messages.
    public let path: String
    /// Regular members larger than this are skipped (data not loaded) and reported with a problem.
    public let maxMemberSize: Int

    private let source: ByteSource
    /// PAX 'g' records in force; later 'g' headers update them, an empty value deletes a key.
    private var globalRecords: [String: [UInt8]] = [:]
    /// Data of the member returned last that was not loaded; skipped lazily so the caller sees the member's entry
    /// (say, an 8 GiB oversize claim) before any truncation error its missing data causes.
    private var pendingSkip: (bytes: Int64, memberOffset: Int64, name: String)?
    private var finished = false

    /// Opens `url` for reading. Throws ``TarError`` if it cannot be opened.
    public init(url: URL, maxMemberSize: Int = 512 << 20) throws {
        source = try ByteSource(url: url)
        path = url.path
        self.maxMemberSize = max(0, maxMemberSize)
    }

    /// Reads the archive `stream` produces, front to back (skipped data is read and dropped); `name` stands for
    /// it in errors. At the end-of-archive marker the stream is read to its end, so that its producer's failure
    /// (``TarError/Kind/streamFailed``) is thrown rather than taken for a clean end.
    public init(stream: ByteStream, name: String, maxMemberSize: Int = 512 << 20) {
        source = ByteSource(stream: stream, name: name)
        path = name
        self.maxMemberSize = max(0, maxMemberSize)
    }

    /// Next member, or nil at the end-of-archive marker (a zero block). A file that ends anywhere else, at a
    /// header boundary too, throws `.truncated`: it was cut short.
    ///
    /// Regular files come with their bytes; other kinds with empty data. A member larger than `maxMemberSize` is
    /// skipped (its data not loaded) and returned with a `problem` rather than thrown, as are members whose name is
    /// not valid UTF-8 or whose extended headers are refused. Truncation, bad checksums and unparseable size fields
    /// throw ``TarError`` naming the offset; after that the reader is finished.
    public func next() throws -> (entry: TarEntry, data: [UInt8], problem: String?)? {
        guard !finished else { return nil }
        do {
            return try readMember()
        } catch {
            finished = true
            throw error
        }
    }

    // MARK: Member assembly

    /// Extension headers seen since the last member.
    private struct Extensions {
        var firstOffset: Int64?
        var longName: [UInt8]?
        var longLink: [UInt8]?
        var records: [String: [UInt8]] = [:]
        var problems: [String] = []
    }

    private func readMember() throws -> (entry: TarEntry, data: [UInt8], problem: String?)? {
        if let skip = pendingSkip {
            pendingSkip = nil
            try skipData(skip.bytes, memberOffset: skip.memberOffset, name: skip.name)
        }
        var extensions = Extensions()
        while true {
            let headerOffset = source.position
            guard let block = try readHeaderBlock(extensionsPending: extensions.firstOffset) else {
                try source.finish()
                finished = true
                return nil
            }
            let typeflag = block[TarHeader.typeflag]
            guard let rawSize = TarHeader.number(block[TarHeader.size]) else {
                throw TarError(.badHeader, path: path, offset: headerOffset, detail: "the size field is not a number")
            }
            switch typeflag {
            case UInt8(ascii: "L"), UInt8(ascii: "K"):
                extensions.firstOffset = extensions.firstOffset ?? headerOffset
                try checkSize(rawSize, at: headerOffset)
                let what = typeflag == UInt8(ascii: "L") ? "GNU long name" : "GNU long link"
                if let data = try readExtensionData(size: rawSize, headerOffset: headerOffset, what: what,
                                                    problems: &extensions.problems) {
                    let value = Array(TarHeader.cString(data[...]))
                    if typeflag == UInt8(ascii: "L") { extensions.longName = value } else { extensions.longLink = value }
                }
            case UInt8(ascii: "x"), UInt8(ascii: "X"):
                // 'X' is Solaris's pre-POSIX spelling of the per-file extended header.
                extensions.firstOffset = extensions.firstOffset ?? headerOffset
                try checkSize(rawSize, at: headerOffset)
                if let data = try readExtensionData(size: rawSize, headerOffset: headerOffset, what: "PAX header",
                                                    problems: &extensions.problems) {
                    let (records, problem) = Self.parsePaxRecords(data)
                    extensions.records.merge(records) { _, new in new }
                    if let problem { extensions.problems.append(problem) }
                }
            case UInt8(ascii: "g"):
                try checkSize(rawSize, at: headerOffset)
                var ignored: [String] = []
                if let data = try readExtensionData(size: rawSize, headerOffset: headerOffset,
                                                    what: "PAX global header", problems: &ignored) {
                    // A malformed global header only loses its own records; members stay readable.
                    for (key, value) in Self.parsePaxRecords(data).records {
                        if value.isEmpty { globalRecords[key] = nil } else { globalRecords[key] = value }
                    }
                }
            default:
                return try finishMember(block: block, headerOffset: headerOffset, rawSize: rawSize,
                                        extensions: extensions)
            }
        }
    }

    private func finishMember(block: [UInt8], headerOffset: Int64, rawSize: Int64, extensions: Extensions) throws
        -> (entry: TarEntry, data: [UInt8], problem: String?) {
        var problems = extensions.problems
        let memberOffset = extensions.firstOffset ?? headerOffset
        let typeflag = block[TarHeader.typeflag]
        let dialect = TarHeader.dialect(of: block)

        // PAX values win over GNU long names, which win over the header; an empty per-file value means "use the
        // header", as POSIX says.
        func record(_ key: String) -> [UInt8]? {
            if let value = extensions.records[key] { return value.isEmpty ? nil : value }
            return globalRecords[key]
        }

        var nameBytes: [UInt8]
        if let sparseName = record("GNU.sparse.name") {
            nameBytes = sparseName
        } else if let paxPath = record("path") {
            nameBytes = paxPath
        } else if let longName = extensions.longName {
            nameBytes = longName
        } else {
            nameBytes = Array(TarHeader.cString(block[TarHeader.name]))
            let prefix = TarHeader.cString(block[TarHeader.prefix])
            if dialect == .posix && !prefix.isEmpty {
                nameBytes = Array(prefix) + [UInt8(ascii: "/")] + nameBytes
            }
        }
        let linkBytes = record("linkpath") ?? extensions.longLink ?? Array(TarHeader.cString(block[TarHeader.linkName]))

        var size = rawSize
        if let paxSize = record("size") {
            guard let parsed = Self.decimal(paxSize), parsed >= 0 else {
                throw TarError(.badHeader, path: path, offset: memberOffset,
                               detail: "the PAX size record '\(String(decoding: paxSize, as: UTF8.self))' is not a size")
            }
            size = parsed
        }
        try checkSize(size, at: memberOffset)

        var kind = Self.kind(of: typeflag)
        // v7 marked directories only by a trailing slash on a plain-file entry.
        if typeflag == 0 && nameBytes.last == UInt8(ascii: "/") { kind = .directory }
        if kind == .directory {
            while nameBytes.count > 1 && nameBytes.last == UInt8(ascii: "/") { nameBytes.removeLast() }
        }

        let name = decodeName(nameBytes, what: "name", problems: &problems)
        let linkName = decodeName(linkBytes, what: "link target", problems: &problems)
        let mode = Int(TarHeader.number(block[TarHeader.mode]) ?? 0)
        let mtime = record("mtime").flatMap(Self.seconds) ?? TarHeader.number(block[TarHeader.mtime]) ?? 0
        let entry = TarEntry(name: name, kind: kind, size: Int(size), mode: mode, mtime: Int(mtime),
                             linkName: linkName, headerOffset: memberOffset)

        if typeflag == UInt8(ascii: "S") && block[TarHeader.gnuSparseIsExtended] != 0 {
            try skipSparseExtensionBlocks(memberOffset: memberOffset)
        }

        var data: [UInt8] = []
        let isSparse = typeflag == UInt8(ascii: "S") || extensions.records.keys.contains { $0.hasPrefix("GNU.sparse.") }
        switch kind {
        case .file where isSparse:
            problems.append("GNU sparse member: not supported; its data was skipped")
            pendingSkip = (size, memberOffset, name)
        case .file where size > Int64(maxMemberSize):
            problems.append("member of \(size) bytes exceeds the \(maxMemberSize)-byte limit; its data was skipped")
            pendingSkip = (size, memberOffset, name)
        case .file:
            data.reserveCapacity(Int(size))
            let got = try source.read(into: &data, count: Int(size))
            if Int64(got) < size {
                throw TarError(.truncated, path: path, offset: memberOffset,
                               detail: "member '\(name)' claims \(size) bytes but the archive ends after \(got)")
            }
            try skipPadding(after: size, memberOffset: memberOffset, name: name)
        case .other:
            // Unknown types carry `size` data bytes (POSIX says treat them as regular files); never loaded.
            pendingSkip = (size, memberOffset, name)
        case .directory, .symlink, .hardlink, .characterDevice, .blockDevice, .fifo:
            break
        }
        return (entry, data, problems.isEmpty ? nil : problems.joined(separator: "; "))
    }

    private static func kind(of typeflag: UInt8) -> TarEntryKind {
        switch typeflag {
        case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): return .file  // '7' is a contiguous file: a plain file
        case UInt8(ascii: "1"): return .hardlink
        case UInt8(ascii: "2"): return .symlink
        case UInt8(ascii: "3"): return .characterDevice
        case UInt8(ascii: "4"): return .blockDevice
        case UInt8(ascii: "5"): return .directory
        case UInt8(ascii: "6"): return .fifo
        default: return .other(typeflag)
        }
    }

    /// Names must round-trip: an invalid UTF-8 name is shown with replacement characters and the member refused,
    /// so two distinct byte names can never collide on the same String.
    private func decodeName(_ bytes: [UInt8], what: String, problems: inout [String]) -> String {
        if let valid = String(validating: bytes, as: UTF8.self) { return valid }
        problems.append("the \(what) is not valid UTF-8")
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Blocks and data

    /// Reads one header block and verifies it. Returns nil at the end of the archive.
    private func readHeaderBlock(extensionsPending: Int64?) throws -> [UInt8]? {
        let offset = source.position
        var block: [UInt8] = []
        block.reserveCapacity(TarHeader.blockSize)
        let got = try source.read(into: &block, count: TarHeader.blockSize)
        if got == 0 {
            if let extensionOffset = extensionsPending {
                throw TarError(.truncated, path: path, offset: extensionOffset,
                               detail: "the archive ends after an extended header, before its member")
            }
            if offset == 0 {
                throw TarError(.emptyArchive, path: path, offset: 0, detail: "the file is empty")
            }
            // Every tar writer (GNU tar, Python's tarfile, webdataset, img2dataset) ends with zero blocks; a file
            // that stops at a member boundary without them was cut short, and members after the cut are lost.
            throw TarError(.truncated, path: path, offset: offset,
                           detail: "the archive ends without tar's end-of-archive marker, so it was probably cut "
                               + "short here")
        }
        if got < TarHeader.blockSize {
            throw TarError(.truncated, path: path, offset: offset,
                           detail: "the archive ends inside a header block (\(got) of 512 bytes)")
        }
        if block.allSatisfy({ $0 == 0 }) {
            // End-of-archive marker. Like tar and Python we stop at the first zero block.
            if let extensionOffset = extensionsPending {
                throw TarError(.truncated, path: path, offset: extensionOffset,
                               detail: "an extended header is followed by the end-of-archive marker, not a member")
            }
            return nil
        }
        guard let stored = TarHeader.number(block[TarHeader.checksum]) else {
            throw TarError(.badChecksum, path: path, offset: offset,
                           detail: "the header's checksum field is not a number, so this is not a tar header")
        }
        let computed = TarHeader.checksums(block)
        guard stored == computed.unsigned || stored == computed.signed else {
            throw TarError(.badChecksum, path: path, offset: offset,
                           detail: "header checksum is \(stored) but the block sums to \(computed.unsigned)")
        }
        return block
    }

    private func checkSize(_ size: Int64, at offset: Int64) throws {
        guard size >= 0, size <= Self.maxPlausibleSize else {
            throw TarError(.badHeader, path: path, offset: offset, detail: "the header claims an impossible size \(size)")
        }
    }

    /// Reads a GNU long name/link or PAX header body; nil (with a problem) when it is too large to trust.
    private func readExtensionData(size: Int64, headerOffset: Int64, what: String, problems: inout [String]) throws
        -> [UInt8]? {
        if size > Int64(Self.maxExtendedHeaderSize) {
            problems.append("\(what) of \(size) bytes exceeds the \(Self.maxExtendedHeaderSize)-byte limit; ignored")
            try skipData(size, memberOffset: headerOffset, name: what)
            return nil
        }
        var data: [UInt8] = []
        data.reserveCapacity(Int(size))
        let got = try source.read(into: &data, count: Int(size))
        if Int64(got) < size {
            throw TarError(.truncated, path: path, offset: headerOffset,
                           detail: "\(what) claims \(size) bytes but the archive ends after \(got)")
        }
        try skipPadding(after: size, memberOffset: headerOffset, name: what)
        return data
    }

    /// Skips a member's data and padding; missing data is truncation, missing padding at the very end is not.
    private func skipData(_ size: Int64, memberOffset: Int64, name: String) throws {
        let skipped = try source.skip(size)
        if skipped < size {
            throw TarError(.truncated, path: path, offset: memberOffset,
                           detail: "member '\(name)' claims \(size) bytes but the archive ends after \(skipped)")
        }
        try skipPadding(after: size, memberOffset: memberOffset, name: name)
    }

    /// Padding to the block boundary. A file that ends inside it was cut short (Python's tarfile says
    /// "unexpected end of data"): whatever followed is lost, so it is truncation, never a clean end.
    private func skipPadding(after size: Int64, memberOffset: Int64, name: String) throws {
        let padding = TarHeader.padded(size) - size
        let skipped = try source.skip(padding)
        if skipped < padding {
            throw TarError(.truncated, path: path, offset: memberOffset,
                           detail: "the archive ends inside the padding after member '\(name)' (\(skipped) of "
                               + "\(padding) bytes), so it was cut short")
        }
    }

    /// Old GNU sparse members may chain extra 512-byte blocks of sparse maps before their data.
    private func skipSparseExtensionBlocks(memberOffset: Int64) throws {
        while true {
            var block: [UInt8] = []
            let got = try source.read(into: &block, count: TarHeader.blockSize)
            if got < TarHeader.blockSize {
                throw TarError(.truncated, path: path, offset: memberOffset,
                               detail: "the archive ends inside a GNU sparse extension block")
            }
            if block[TarHeader.gnuSparseExtensionIsExtended] == 0 { return }
        }
    }

    // MARK: PAX records

    /// Parses "LENGTH KEYWORD=VALUE\n" records. Stops at the first malformed record and says so: a member whose
    /// extended header is garbled may have the wrong name or size, so the caller refuses it.
    static func parsePaxRecords(_ data: [UInt8]) -> (records: [String: [UInt8]], problem: String?) {
        var records: [String: [UInt8]] = [:]
        var index = 0
        while index < data.count {
            // Some writers pad the record area with NULs.
            if data[index] == 0 { break }
            var length = 0
            var cursor = index
            while cursor < data.count, data[cursor] >= 0x30, data[cursor] <= 0x39, length < 1 << 24 {
                length = length * 10 + Int(data[cursor] - 0x30)
                cursor += 1
            }
            let recordEnd = index + length
            guard cursor > index, cursor < data.count, data[cursor] == 0x20, length > cursor - index + 1,
                  recordEnd <= data.count, data[recordEnd - 1] == 0x0a,
                  let equals = data[(cursor + 1)..<(recordEnd - 1)].firstIndex(of: UInt8(ascii: "="))
            else {
                return (records, "malformed PAX record at byte \(index) of the extended header")
            }
            let keyword = String(decoding: data[(cursor + 1)..<equals], as: UTF8.self)
            records[keyword] = Array(data[(equals + 1)..<(recordEnd - 1)])
            index = recordEnd
        }
        return (records, nil)
    }

    /// A non-negative decimal integer, digits only.
    static func decimal(_ bytes: [UInt8]) -> Int64? {
        guard !bytes.isEmpty, bytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int64(String(decoding: bytes, as: UTF8.self))
    }

    /// PAX times are decimal seconds with an optional fraction; whole seconds are enough here.
    static func seconds(_ bytes: [UInt8]) -> Int64? {
        var text = String(decoding: bytes, as: UTF8.self)
        if let dot = text.firstIndex(of: ".") { text = String(text[..<dot]) }
        guard let whole = Int64(text) else { return nil }
        // Truncation toward zero would round -1.5 up to -1; floor keeps times ordered.
        if whole < 0, bytes.contains(UInt8(ascii: ".")),
           bytes.drop(while: { $0 != UInt8(ascii: ".") }).dropFirst().contains(where: { $0 != UInt8(ascii: "0") }) {
            return whole - 1
        }
        return whole
    }
}
