// Shared test helpers: fixture paths, the expectations Python's tarfile wrote (expected.json), temp files, and
// running python3 when it is installed.

import Foundation
import XCTest
@testable import CapfiltWebDataset

enum Fixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tar")

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    struct Member: Decodable {
        let name: String
        let kind: String
        let size: Int
        let mode: Int
        let mtime: Int
        let linkName: String
        let headerOffset: Int64
        let fnv1a64: String?
        let base64: String?
    }

    struct Damage: Decodable {
        let memberHeaderOffset: Int64
        let intactMembers: Int
    }

    struct Expectations: Decodable {
        let archives: [String: [Member]]
        let damaged: [String: Damage]
    }

    static func expectations() throws -> Expectations {
        let data = try Data(contentsOf: url("expected.json"))
        return try JSONDecoder().decode(Expectations.self, from: data)
    }

    static func kind(_ text: String) -> TarEntryKind? {
        switch text {
        case "file": return .file
        case "directory": return .directory
        case "symlink": return .symlink
        case "hardlink": return .hardlink
        case "characterDevice": return .characterDevice
        case "blockDevice": return .blockDevice
        case "fifo": return .fifo
        default: return nil
        }
    }
}

/// The 64-bit FNV-1a hash the fixture script records for member data.
func fnv1a64(_ bytes: [UInt8]) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01b3
    }
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

/// zlib's CRC-32, to compare member bytes with what Python read without shipping megabytes through a pipe.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? 0xedb8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }
    var crc: UInt32 = 0xffff_ffff
    for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8) }
    return crc ^ 0xffff_ffff
}

/// Reads every member of an archive, failing the test on any error.
func readAll(_ url: URL, maxMemberSize: Int = 512 << 20) throws -> [(entry: TarEntry, data: [UInt8], problem: String?)] {
    let reader = try TarReader(url: url, maxMemberSize: maxMemberSize)
    var members: [(entry: TarEntry, data: [UInt8], problem: String?)] = []
    while let member = try reader.next() { members.append(member) }
    return members
}

func readSamples(_ url: URL, maxMemberSize: Int = 512 << 20) throws -> [WebDatasetSample] {
    let reader = try WebDatasetReader(url: url, maxMemberSize: maxMemberSize)
    var samples: [WebDatasetSample] = []
    while let sample = try reader.nextSample() { samples.append(sample) }
    return samples
}

/// A fresh directory under the system temp dir, removed by the test's teardown block.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-tar-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// python3 on PATH, or nil.
func python3() -> URL? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") {
        let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent("python3")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    return nil
}

/// Runs `python3 -c script args...`; returns stdout, failing on a non-zero exit.
func runPython(_ python: URL, script: String, arguments: [String]) throws -> Data {
    let process = Process()
    process.executableURL = python
    process.arguments = ["-c", script] + arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    // Read before waiting so a large output cannot fill the pipe and deadlock.
    let stdout = output.fileHandleForReading.readDataToEndOfFile()
    let stderr = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw NSError(domain: "python3", code: Int(process.terminationStatus), userInfo: [
            NSLocalizedDescriptionKey: String(decoding: stderr, as: UTF8.self),
        ])
    }
    return stdout
}
