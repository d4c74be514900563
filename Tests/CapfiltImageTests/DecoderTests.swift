// Decoding against Pillow 13 + transformers' convert_to_rgb: every fixture must give identical bytes, and
// every bad input a typed error with a useful message.
import Foundation
import XCTest
@testable import CapfiltImage

final class DecoderTests: XCTestCase {
    /// Every decode fixture (JPEG, PNG, WebP in all modes) equals Pillow's RGB bytes exactly.
    func testDecodedPixelsIdenticalToPillow() throws {
        var failures: [String] = []
        var checkedPixels = 0
        var withGolden = 0
        for entry in Fixtures.manifest.decode {
            let data = try Fixtures.bytes(entry.file)
            let header = try ImageDecoder.readHeader(data)
            XCTAssertEqual(header.width, entry.width, entry.file)
            XCTAssertEqual(header.height, entry.height, entry.file)
            let image: RGBImage
            do {
                image = try ImageDecoder.decodeRGB(data)
            } catch {
                failures.append("\(entry.file) [\(entry.pillowMode)]: \(error)")
                continue
            }
            XCTAssertEqual(image.width, entry.width, entry.file)
            XCTAssertEqual(image.height, entry.height, entry.file)
            checkedPixels += image.width * image.height
            var detail = ""
            if let golden = entry.golden {
                withGolden += 1
                let expected = try Fixtures.golden(golden)
                let diff = difference(image.pixels, expected.pixels)
                if diff.count > 0 { detail = " (\(diff.count) bytes differ, max \(diff.max))" }
            }
            if fnv1a64(image.pixels) != entry.rgbFNV1a64 {
                failures.append("\(entry.file) [\(entry.pillowMode)\(entry.transparency ? "+tRNS" : "")]: "
                    + "hash differs from Pillow\(detail); \(entry.note)")
            }
        }
        print("decode: \(Fixtures.manifest.decode.count) images (\(withGolden) with golden PNGs), "
            + "\(checkedPixels) pixels compared, \(failures.count) mismatches")
        XCTAssertEqual(failures, [], "decoded pixels differ from Pillow:\n" + failures.joined(separator: "\n"))
    }

    /// Each bad input gives the expected error kind, with a message that names the problem and the fix.
    func testBadInputsGiveTypedErrors() throws {
        for entry in Fixtures.manifest.bad {
            let data = try Fixtures.bytes(entry.file)
            do {
                let image = try ImageDecoder.decodeRGB(data)
                XCTFail("\(entry.file): decoded to \(image.width)x\(image.height), expected \(entry.kind)")
            } catch {
                let kind: String
                switch error.kind {
                case .empty: kind = "empty"
                case .unsupportedFormat: kind = "unsupportedFormat"
                case .corrupt: kind = "corrupt"
                case .truncated: kind = "truncated"
                case .tooLarge: kind = "tooLarge"
                }
                XCTAssertEqual(kind, entry.kind, "\(entry.file): \(error) (\(entry.note))")
                XCTAssertTrue(error.description.contains("drop the sample"), "\(entry.file): \(error)")
                print("bad input \(entry.file): \(error)  [Pillow: \(entry.pillow)]")
            }
        }
        print("bad inputs: \(Fixtures.manifest.bad.count) files checked")
    }

    /// Oversized headers are refused by readHeader's numbers alone, before any pixel memory is allocated.
    func testHugeHeadersAreRefusedBeforeDecoding() throws {
        let png = try Fixtures.bytes("bad_huge.png")
        XCTAssertEqual(try ImageDecoder.readHeader(png), ImageHeader(format: .png, width: 100_000, height: 100_000))
        let start = Date()
        XCTAssertThrowsError(try ImageDecoder.decodeRGB(png)) { error in
            XCTAssertEqual(
                (error as? ImageError)?.kind,
                .tooLarge(width: 100_000, height: 100_000, limit: "maxWidth 65535"))
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 0.5)
        XCTAssertEqual(
            try ImageDecoder.readHeader(try Fixtures.bytes("bad_huge.webp")),
            ImageHeader(format: .webp, width: 16384, height: 16384))
        XCTAssertEqual(
            try ImageDecoder.readHeader(try Fixtures.bytes("bad_huge.jpg")),
            ImageHeader(format: .jpeg, width: 65500, height: 65500))
        // A limit below an ordinary image refuses it too.
        let hopper = try Fixtures.bytes("jpeg_hopper.jpg")
        XCTAssertThrowsError(try ImageDecoder.decodeRGB(hopper, limits: ImageLimits(maxPixels: 128 * 127))) {
            XCTAssertEqual((($0 as? ImageError)?.kind), .tooLarge(width: 128, height: 128, limit: "maxPixels 16256"))
        }
    }

    func testSniffAndHeaders() throws {
        XCTAssertEqual(ImageDecoder.sniff(try Fixtures.bytes("jpeg_hopper.jpg")), .jpeg)
        XCTAssertEqual(ImageDecoder.sniff(try Fixtures.bytes("png_rgb8.png")), .png)
        XCTAssertEqual(ImageDecoder.sniff(try Fixtures.bytes("webp_lossy.webp")), .webp)
        XCTAssertEqual(ImageDecoder.sniff(Data(try Fixtures.bytes("webp_lossless.webp"))), .webp)
        XCTAssertNil(ImageDecoder.sniff(try Fixtures.bytes("bad_gif.gif")))
        XCTAssertNil(ImageDecoder.sniff([UInt8]()))
        XCTAssertEqual(
            try ImageDecoder.readHeader(try Fixtures.bytes("jpeg_tall_3x200.jpg")),
            ImageHeader(format: .jpeg, width: 3, height: 200))
        XCTAssertEqual(
            try ImageDecoder.readHeader(try Fixtures.bytes("webp_animated.webp")),
            ImageHeader(format: .webp, width: 64, height: 64))
        XCTAssertThrowsError(try ImageDecoder.readHeader([UInt8]())) {
            XCTAssertEqual(($0 as? ImageError)?.kind, .empty)
        }
        XCTAssertThrowsError(try ImageDecoder.readHeader(try Fixtures.bytes("bad_gif.gif"))) {
            XCTAssertTrue("\($0)".contains("GIF file"), "\($0)")
        }
    }

    /// Every prefix of a few small files fails cleanly (no crash, no exit, no hang) or decodes.
    func testEveryTruncationFailsCleanly() throws {
        var outcomes: [String: Int] = [:]
        for name in ["jpeg_17x13.jpg", "png_la8_tiny.png", "webp_1x1.webp", "png_p4_adam7_trns.png",
                     "jpeg_hopper_progressive.jpg"] {
            let data = try Fixtures.bytes(name)
            let stride = max(1, data.count / 300)
            for length in Swift.stride(from: 0, to: data.count, by: stride) {
                do {
                    _ = try ImageDecoder.decodeRGB(Array(data[0..<length]))
                    outcomes["decoded", default: 0] += 1
                } catch {
                    outcomes["\(error.kind)".components(separatedBy: "(").first ?? "?", default: 0] += 1
                }
            }
        }
        print("truncation sweep: \(outcomes.sorted { $0.key < $1.key })")
    }

    func testErrorMessagesSayWhatToDo() {
        let cases: [ImageError] = [
            ImageError(.empty),
            ImageError(.unsupportedFormat, detail: "GIF file"),
            ImageError(.corrupt("Corrupt JPEG data: bad Huffman code"), format: .jpeg),
            ImageError(.truncated, format: .png, detail: "PNG data ends early"),
            ImageError(.tooLarge(width: 100_000, height: 100_000, limit: "maxPixels 89478485"), format: .png),
        ]
        for error in cases {
            XCTAssertTrue(error.description.contains("drop the sample"), error.description)
        }
        XCTAssertTrue(cases[2].description.contains("Huffman"))
        XCTAssertTrue(cases[4].description.contains("100000x100000"))
    }
}

final class DecoderConcurrencyTests: XCTestCase {
    /// The C layer keeps no shared state: decoding every fixture from several threads at once gives the
    /// same bytes as Pillow.
    func testConcurrentDecodesAgree() throws {
        let entries = Fixtures.manifest.decode
        let inputs = try entries.map { try Fixtures.bytes($0.file) }
        // Each iteration writes its own slot, so the unsynchronised buffer is race-free.
        nonisolated(unsafe) let hashes = UnsafeMutableBufferPointer<String>.allocate(capacity: entries.count * 2)
        hashes.initialize(repeating: "")
        defer { hashes.deallocate() }
        DispatchQueue.concurrentPerform(iterations: entries.count * 2) { i in
            let hash = (try? ImageDecoder.decodeRGB(inputs[i % entries.count])).map { fnv1a64($0.pixels) }
            hashes[i] = hash ?? "error"
        }
        for (i, entry) in entries.enumerated() {
            XCTAssertEqual(hashes[i], entry.rgbFNV1a64, entry.file)
            XCTAssertEqual(hashes[i + entries.count], entry.rgbFNV1a64, entry.file)
        }
    }

    /// The Data overloads accept slices whose indices do not start at zero.
    func testDataSlices() throws {
        let bytes = try Fixtures.bytes("png_la8_tiny.png")
        let padded = Data([1, 2, 3] + bytes)
        let slice = padded[3...]
        XCTAssertEqual(ImageDecoder.sniff(slice), .png)
        XCTAssertEqual(try ImageDecoder.readHeader(slice), ImageHeader(format: .png, width: 7, height: 5))
        XCTAssertEqual(try ImageDecoder.decodeRGB(slice), try ImageDecoder.decodeRGB(bytes))
    }
}

final class DecoderFuzzTests: XCTestCase {
    /// Seeded mutations (bit flips, overwritten runs, duplicated and dropped spans) of small fixtures in
    /// every format: each either decodes or throws an ImageError; nothing crashes, exits or hangs.
    func testMutatedFilesNeverCrash() throws {
        let names = ["jpeg_17x13.jpg", "jpeg_odd_97x73_progressive.jpg", "png_p4_adam7_trns.png", "png_la16.png",
                     "png_apng.png", "webp_1x1.webp", "webp_lossy_alpha.webp", "webp_animated_offset.webp"]
        var g = SplitMix64(state: 2026)
        var outcomes: [String: Int] = [:]
        for name in names {
            let original = try Fixtures.bytes(name)
            // CAPFILT_FUZZ_ITERATIONS raises the count for a longer local run (e.g. under --sanitize=address).
            for _ in 0..<(ProcessInfo.processInfo.environment["CAPFILT_FUZZ_ITERATIONS"].flatMap { Int($0) } ?? 120) {
                var data = original
                for _ in 0..<(1 + Int(g.next() % 4)) {
                    let at = Int(g.next() % UInt64(data.count))
                    switch g.next() % 4 {
                    case 0: data[at] ^= UInt8(1 << (g.next() % 8))
                    case 1:
                        for i in at..<min(data.count, at + Int(g.next() % 16)) { data[i] = UInt8(g.next() & 0xff) }
                    case 2: data.insert(contentsOf: data[at..<min(data.count, at + Int(g.next() % 32))], at: at)
                    default: data.removeSubrange(at..<min(data.count, at + Int(g.next() % 32)))
                    }
                    if data.isEmpty { break }
                }
                do {
                    let image = try ImageDecoder.decodeRGB(data, limits: ImageLimits(maxPixels: 4_000_000))
                    XCTAssertEqual(image.pixels.count, image.width * image.height * 3)
                    outcomes["decoded", default: 0] += 1
                } catch {
                    outcomes["\(error.kind)".components(separatedBy: "(").first ?? "?", default: 0] += 1
                }
            }
        }
        print("mutation fuzz: \(names.count * 120) files, outcomes \(outcomes.sorted { $0.key < $1.key })")
    }
}
