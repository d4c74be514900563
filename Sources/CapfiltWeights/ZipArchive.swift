// A minimal zip reader for torch.save checkpoints: central directory (with zip64 end records and extra
// fields), local headers, STORED entries only. torch never compresses, so a compressed entry means the
// file was repacked by some other tool and is refused rather than inflated.

/// One central-directory entry.
struct ZipEntry: Sendable {
    let name: String
    let flags: UInt16
    /// 0 = STORED; anything else is compressed.
    let method: UInt16
    let crc32: UInt32
    let compressedSize: Int
    let uncompressedSize: Int
    let localHeaderOffset: Int
}

/// The directory of a zip archive held in a memory map; entry data is located lazily.
struct ZipArchive: Sendable {
    let file: MappedFile
    /// Entries in central-directory order.
    let entries: [ZipEntry]
    /// Index into `entries` by name (a later duplicate wins, as with most unzip tools).
    let byName: [String: Int]

    private static let eocdSignature: UInt32 = 0x0605_4b50
    private static let zip64LocatorSignature: UInt32 = 0x0706_4b50
    private static let zip64EOCDSignature: UInt32 = 0x0606_4b50
    private static let centralSignature: UInt32 = 0x0201_4b50
    private static let localSignature: UInt32 = 0x0403_4b50

    private static let fixIfCorrupt = "Re-download the checkpoint, or re-save it with torch.save (or convert it to safetensors)"

    init(file: MappedFile) throws {
        self.file = file
        let path = file.path
        let size = file.bytes.count
        func invalid(_ problem: String) -> WeightsError {
            WeightsError(.invalidZip, path: path, problem: problem, fix: Self.fixIfCorrupt)
        }

        // The end-of-central-directory record is 22 bytes plus a comment of up to 65535 bytes, at the end.
        var eocd: Int?
        if size >= 22 {
            var candidate = size - 22
            let lowest = max(0, size - 22 - 0xffff)
            while candidate >= lowest {
                if file.load(UInt32.self, at: candidate) == Self.eocdSignature,
                   candidate + 22 + Int(file.load(UInt16.self, at: candidate + 20)) == size {
                    eocd = candidate
                    break
                }
                candidate -= 1
            }
        }
        guard let eocd else {
            if size >= 4 && file.load(UInt32.self, at: 0) == Self.localSignature {
                throw WeightsError(.truncatedFile, path: path,
                                   problem: "the zip archive has no end-of-central-directory record: the file (\(size) bytes) is truncated",
                                   fix: Self.fixIfCorrupt)
            }
            if size >= 2 && file.bytes[0] == 0x80 && file.bytes[1] <= 5 {
                throw WeightsError(.unsupportedFormat, path: path,
                                   problem: "this is a bare pickle: the legacy (torch < 1.6) torch.save format, not a zip archive",
                                   fix: "Re-save it with a current torch (torch.save(torch.load(f), f)) or convert it to safetensors")
            }
            throw invalid("not a zip archive (no end-of-central-directory record)")
        }

        var entryCount = Int(file.load(UInt16.self, at: eocd + 10))
        var directorySize = Int(file.load(UInt32.self, at: eocd + 12))
        var directoryOffset = Int(file.load(UInt32.self, at: eocd + 16))
        if file.load(UInt16.self, at: eocd + 4) != 0 || file.load(UInt16.self, at: eocd + 6) != 0 {
            throw invalid("multi-disk (split) zip archives are not supported")
        }
        // torch always writes zip64 end records; when present they are authoritative.
        if eocd >= 20 && file.load(UInt32.self, at: eocd - 20) == Self.zip64LocatorSignature {
            let recordOffset = file.load(UInt64.self, at: eocd - 12)
            guard recordOffset <= UInt64(eocd - 20), Int(recordOffset) + 56 <= eocd - 20,
                  file.load(UInt32.self, at: Int(recordOffset)) == Self.zip64EOCDSignature else {
                throw invalid("the zip64 end-of-central-directory locator points to \(recordOffset), where there is no zip64 record")
            }
            let record = Int(recordOffset)
            let count64 = file.load(UInt64.self, at: record + 32)
            let size64 = file.load(UInt64.self, at: record + 40)
            let offset64 = file.load(UInt64.self, at: record + 48)
            guard count64 <= UInt64(size), size64 <= UInt64(size), offset64 <= UInt64(size) else {
                throw invalid("the zip64 end record holds impossible values (\(count64) entries, directory of \(size64) bytes at \(offset64))")
            }
            entryCount = Int(count64)
            directorySize = Int(size64)
            directoryOffset = Int(offset64)
        }
        guard directoryOffset + directorySize <= size else {
            throw WeightsError(.truncatedFile, path: path,
                               problem: "the central directory [\(directoryOffset), \(directoryOffset + directorySize)) lies past the end of the file (\(size) bytes)",
                               fix: Self.fixIfCorrupt)
        }

        // Each central entry takes at least 46 bytes: a larger count is corrupt (and must not size an allocation).
        guard entryCount <= directorySize / 46 else {
            throw invalid("the end record claims \(entryCount) entries but the central directory has only \(directorySize) bytes")
        }
        var entries: [ZipEntry] = []
        entries.reserveCapacity(entryCount)
        var position = directoryOffset
        let directoryEnd = directoryOffset + directorySize
        for index in 0..<entryCount {
            guard position + 46 <= directoryEnd, file.load(UInt32.self, at: position) == Self.centralSignature else {
                throw invalid("central directory entry \(index) at byte \(position) is malformed")
            }
            let flags = file.load(UInt16.self, at: position + 8)
            let method = file.load(UInt16.self, at: position + 10)
            let crc = file.load(UInt32.self, at: position + 16)
            var compressed = UInt64(file.load(UInt32.self, at: position + 20))
            var uncompressed = UInt64(file.load(UInt32.self, at: position + 24))
            let nameLength = Int(file.load(UInt16.self, at: position + 28))
            let extraLength = Int(file.load(UInt16.self, at: position + 30))
            let commentLength = Int(file.load(UInt16.self, at: position + 32))
            var localOffset = UInt64(file.load(UInt32.self, at: position + 42))
            let nameStart = position + 46
            let extraStart = nameStart + nameLength
            let next = extraStart + extraLength + commentLength
            guard next <= directoryEnd else {
                throw invalid("central directory entry \(index) at byte \(position) runs past the directory")
            }
            guard let name = String(validating: UnsafeRawBufferPointer(rebasing: file.bytes[nameStart..<extraStart]),
                                    as: UTF8.self) else {
                throw invalid("central directory entry \(index) has a name that is not UTF-8")
            }
            // Zip64 extended information: only the fields saturated in the fixed record are present, in order.
            var extra = extraStart
            while extra + 4 <= extraStart + extraLength {
                let id = file.load(UInt16.self, at: extra)
                let length = Int(file.load(UInt16.self, at: extra + 2))
                let body = extra + 4
                guard body + length <= extraStart + extraLength else {
                    throw invalid("entry '\(name)' has a malformed extra field")
                }
                if id == 0x0001 {
                    var field = body
                    func next64() throws -> UInt64 {
                        guard field + 8 <= body + length else {
                            throw invalid("entry '\(name)' has a zip64 extra field too short for its saturated sizes")
                        }
                        defer { field += 8 }
                        return file.load(UInt64.self, at: field)
                    }
                    if uncompressed == 0xffff_ffff { uncompressed = try next64() }
                    if compressed == 0xffff_ffff { compressed = try next64() }
                    if localOffset == 0xffff_ffff { localOffset = try next64() }
                }
                extra = body + length
            }
            guard compressed <= UInt64(size), uncompressed <= UInt64(Int.max), localOffset <= UInt64(size) else {
                throw WeightsError(.truncatedFile, path: path,
                                   problem: "entry '\(name)' claims \(compressed) bytes at offset \(localOffset), beyond the end of the file (\(size) bytes)",
                                   fix: Self.fixIfCorrupt)
            }
            entries.append(ZipEntry(name: name, flags: flags, method: method, crc32: crc,
                                    compressedSize: Int(compressed), uncompressedSize: Int(uncompressed),
                                    localHeaderOffset: Int(localOffset)))
            position = next
        }
        self.entries = entries
        var byName: [String: Int] = [:]
        for (i, entry) in entries.enumerated() { byName[entry.name] = i }
        self.byName = byName
    }

    /// The byte range of a STORED entry's data within the file, after checking its local header.
    func dataRange(of entry: ZipEntry) throws -> Range<Int> {
        let path = file.path
        if entry.flags & 0x1 != 0 {
            throw WeightsError(.unsupportedFormat, path: path,
                               problem: "zip entry '\(entry.name)' is encrypted",
                               fix: "Use an unencrypted checkpoint")
        }
        guard entry.method == 0 else {
            throw WeightsError(.compressedEntry, path: path,
                               problem: "zip entry '\(entry.name)' is compressed (method \(entry.method)); torch.save writes entries STORED and this reader does not inflate",
                               fix: "Re-save the checkpoint with torch.save, or repack the zip without compression (zip -0)")
        }
        guard entry.compressedSize == entry.uncompressedSize else {
            throw WeightsError(.invalidZip, path: path,
                               problem: "STORED zip entry '\(entry.name)' has compressed size \(entry.compressedSize) but uncompressed size \(entry.uncompressedSize)",
                               fix: Self.fixIfCorrupt)
        }
        let header = entry.localHeaderOffset
        guard header + 30 <= file.bytes.count, file.load(UInt32.self, at: header) == Self.localSignature else {
            throw WeightsError(.invalidZip, path: path,
                               problem: "zip entry '\(entry.name)' has no local header at byte \(header)",
                               fix: Self.fixIfCorrupt)
        }
        // The local extra field can differ from the central one (torch pads it to align the data).
        let start = header + 30 + Int(file.load(UInt16.self, at: header + 26)) + Int(file.load(UInt16.self, at: header + 28))
        guard start + entry.compressedSize <= file.bytes.count else {
            throw WeightsError(.truncatedFile, path: path,
                               problem: "zip entry '\(entry.name)' needs bytes [\(start), \(start + entry.compressedSize)) but the file has \(file.bytes.count): it is truncated",
                               fix: Self.fixIfCorrupt)
        }
        return start..<(start + entry.compressedSize)
    }

    /// CRC-32 (the zip polynomial, reflected 0xEDB88320) of `bytes`.
    static func crc32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt32 = 0xffff_ffff
        for byte in bytes {
            crc = crcTable[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8)
        }
        return crc ^ 0xffff_ffff
    }

    private static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1 != 0) ? (0xedb8_8320 ^ (c >> 1)) : (c >> 1) }
        return c
    }
}
