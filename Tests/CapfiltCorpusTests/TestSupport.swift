// Test helpers: a temporary folder per test, file writers, raw tar members for shards our own TarWriter would
// refuse to write (links, unsafe names, truncation), and draining a reader.

import CapfiltCorpus
import CapfiltWebDataset
import Foundation
import XCTest

/// A temporary folder removed when the test ends.
final class TempFolder {
    let url: URL
    var path: String { url.path }

    init(_ test: XCTestCase) throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("capfilt-corpus-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        let url = self.url
        test.addTeardownBlock {
            // Undo chmod 000 from permission tests so the tree can be removed.
            if let walker = FileManager.default.enumerator(atPath: url.path) {
                for case let relative as String in walker {
                    try? FileManager.default.setAttributes([.posixPermissions: 0o755],
                                                           ofItemAtPath: url.appendingPathComponent(relative).path)
                }
            }
            try? FileManager.default.removeItem(at: url)
        }
    }

    func url(_ relative: String) -> URL { url.appendingPathComponent(relative) }

    @discardableResult
    func write(_ relative: String, _ bytes: [UInt8]) throws -> URL {
        let target = url(relative)
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(),
                                                withIntermediateDirectories: true)
        try Data(bytes).write(to: target)
        return target
    }

    @discardableResult
    func write(_ relative: String, _ text: String) throws -> URL {
        try write(relative, Array(text.utf8))
    }

    func mkdir(_ relative: String) throws {
        try FileManager.default.createDirectory(at: url(relative), withIntermediateDirectories: true)
    }

    func symlink(_ relative: String, to destination: String) throws {
        let link = url(relative)
        try FileManager.default.createDirectory(at: link.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: destination)
    }
}

/// Fake image bytes: a JPEG/PNG signature then a marker, so tests can tell images apart.
func jpeg(_ marker: String) -> [UInt8] { [0xff, 0xd8, 0xff, 0xe0] + Array(marker.utf8) }
func png(_ marker: String) -> [UInt8] { [0x89, 0x50, 0x4e, 0x47] + Array(marker.utf8) }

/// Writes a webdataset shard with our TarWriter: members in the order given.
@discardableResult
func writeShard(_ url: URL, _ members: [(String, [UInt8])]) throws -> URL {
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    let writer = try TarWriter(url: url)
    for (name, bytes) in members { try writer.add(name: name, bytes: bytes) }
    try writer.finish()
    return url
}

/// img2dataset-like members for keys: `<key>.jpg`, `<key>.txt`, `<key>.json`.
func img2datasetMembers(_ keys: [String]) -> [(String, [UInt8])] {
    keys.flatMap { key -> [(String, [UInt8])] in
        [(key + ".jpg", jpeg(key)), (key + ".txt", Array("caption \(key)".utf8)),
         (key + ".json", Array("{\"key\": \"\(key)\", \"status\": \"success\"}".utf8))]
    }
}

/// Raw ustar members, for what TarWriter refuses to write.
enum RawTar {
    static func member(_ name: String, _ data: [UInt8] = [], type: Character = "0", link: String = "") -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int) {
            for (index, byte) in text.utf8.enumerated() { header[offset + index] = byte }
        }
        func octal(_ value: Int, width: Int) -> String {
            let digits = String(value, radix: 8)
            return String(repeating: "0", count: width - 1 - digits.count) + digits
        }
        put(name, at: 0)
        put(octal(0o644, width: 8), at: 100)
        put(octal(0, width: 8), at: 108)
        put(octal(0, width: 8), at: 116)
        put(octal(data.count, width: 12), at: 124)
        put(octal(0, width: 12), at: 136)
        put("        ", at: 148)
        header[156] = type.asciiValue ?? 0x30
        put(link, at: 157)
        put("ustar", at: 257)
        put("00", at: 263)
        let sum = header.reduce(0) { $0 + Int($1) }
        put(octal(sum, width: 7), at: 148)
        header[155] = 0x20
        let padding = (512 - data.count % 512) % 512
        return header + data + [UInt8](repeating: 0, count: padding)
    }

    static let end = [UInt8](repeating: 0, count: 1024)
}

/// Every sample the reader yields.
func drain(_ reader: CorpusReader) throws -> [InputSample] {
    var samples: [InputSample] = []
    while let sample = try reader.next() { samples.append(sample) }
    return samples
}

func read(_ spec: CorpusSpec, in folder: TempFolder) throws -> [InputSample] {
    try drain(CorpusReader(spec: spec, baseDirectory: folder.url))
}

/// The error `body` throws, as a CorpusError.
func corpusError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> CorpusError? {
    do {
        try body()
        XCTFail("expected a CorpusError", file: file, line: line)
    } catch let error as CorpusError {
        return error
    } catch {
        XCTFail("expected a CorpusError, got \(error)", file: file, line: line)
    }
    return nil
}

extension ImagePayload {
    var bytes: [UInt8]? {
        if case .bytes(let bytes, _) = self { return bytes }
        return nil
    }

    var fileExtension: String? {
        if case .bytes(_, let ext) = self { return ext }
        return nil
    }

    var fileURL: URL? {
        if case .file(let url) = self { return url }
        return nil
    }

    var missingReason: String? {
        switch self {
        case .missing(let reason), .refused(let reason, _): return reason
        default: return nil
        }
    }

    var refusal: InputRefusal? {
        if case .refused(_, let cause) = self { return cause }
        return nil
    }
}
