// Pillow 13.0.0 resize, bit-exact: goldens from real images, hundreds of random shape pairs, and the fast
// passes against a plain-loop reference of Resample.c.
import Foundation
import XCTest
@testable import CapfiltImage

final class ResampleTests: XCTestCase {
    func testResizeGoldensIdenticalToPillow() throws {
        var failures: [String] = []
        for entry in Fixtures.manifest.resize {
            let source = try ImageDecoder.decodeRGB(try Fixtures.bytes(entry.file))
            let out = PillowResample.bicubic(source, width: entry.width, height: entry.height)
            XCTAssertEqual(out.width, entry.width)
            XCTAssertEqual(out.height, entry.height)
            if fnv1a64(out.pixels) != entry.rgbFNV1a64 {
                var detail = ""
                if let golden = entry.golden {
                    let diff = difference(out.pixels, try Fixtures.golden(golden).pixels)
                    detail = ": \(diff.count) bytes differ, max \(diff.max)"
                }
                failures.append("\(entry.file) \(source.width)x\(source.height) -> \(entry.width)x\(entry.height)"
                    + " (vertical first: \(entry.verticalFirst))\(detail)")
            }
        }
        let vertical = Fixtures.manifest.resize.filter(\.verticalFirst).count
        print("resize goldens: \(Fixtures.manifest.resize.count) images (\(vertical) vertical-first), "
            + "\(failures.count) mismatches")
        XCTAssertEqual(failures, [], failures.joined(separator: "\n"))
    }

    /// Random (in, out, filter) pairs on synthetic images against Pillow's outputs in the blob.
    func testRandomPairsIdenticalToPillow() throws {
        let pairs = Fixtures.manifest.randomPairs
        let blob = try Fixtures.golden(pairs.blob).pixels
        var failures: [String] = []
        var byFilter: [Int: Int] = [:]
        for p in pairs.pairs {
            let (seed, inW, inH, outW, outH, filterNumber, offset) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6])
            guard let filter = PillowResample.Filter(rawValue: filterNumber) else {
                XCTFail("unknown filter \(filterNumber)")
                continue
            }
            let source = syntheticRGB(seed: seed, width: inW, height: inH)
            let out = PillowResample.resize(source, width: outW, height: outH, filter: filter)
            let expected = Array(blob[offset..<(offset + outW * outH * 3)])
            if out.pixels != expected {
                let diff = difference(out.pixels, expected)
                failures.append("seed \(seed) \(filter) \(inW)x\(inH) -> \(outW)x\(outH): "
                    + "\(diff.count) bytes differ, max \(diff.max)")
            }
            byFilter[filterNumber, default: 0] += 1
        }
        print("random resize pairs: \(pairs.pairs.count) compared (\(pairs.verticalFirstTwoPass) two-pass "
            + "vertical-first; per filter \(byFilter.sorted { $0.key < $1.key })), \(failures.count) mismatches")
        XCTAssertEqual(failures, [], failures.prefix(20).joined(separator: "\n"))
    }

    /// The optimised passes equal a direct transcription of Resample.c (per-pixel loops, Pillow's pass
    /// order and row window) on shapes the fixtures do not cover.
    func testFastPassesMatchReferenceLoops() {
        var g = SplitMix64(state: 42)
        var compared = 0
        for _ in 0..<60 {
            let inW = Int(g.next() % 50) + 1, inH = Int(g.next() % 50) + 1
            let outW = Int(g.next() % 70) + 1, outH = Int(g.next() % 70) + 1
            let source = syntheticRGB(seed: Int(g.next() % 10_000), width: inW, height: inH)
            for filter in PillowResample.Filter.allCases {
                let fast = PillowResample.resize(source, width: outW, height: outH, filter: filter)
                let reference = ReferenceResample.resize(source, width: outW, height: outH, filter: filter)
                XCTAssertEqual(fast.pixels, reference.pixels, "\(filter) \(inW)x\(inH) -> \(outW)x\(outH)")
                compared += 1
            }
        }
        print("reference comparison: \(compared) resizes")
    }

    func testSameSizeIsACopy() throws {
        let image = syntheticRGB(seed: 5, width: 9, height: 4)
        XCTAssertEqual(PillowResample.bicubic(image, width: 9, height: 4), image)
    }

    /// Resize time for a 1024x768 photo-sized image to 384x384 (printed; meaningful in release builds).
    func testResizeSpeed() {
        let source = syntheticRGB(seed: 3, width: 1024, height: 768)
        _ = PillowResample.bicubic(source, width: 384, height: 384)
        let runs = 5
        let start = Date()
        for _ in 0..<runs { _ = PillowResample.bicubic(source, width: 384, height: 384) }
        let ms = Date().timeIntervalSince(start) * 1000 / Double(runs)
        print(String(format: "resize 1024x768 -> 384x384 bicubic: %.2f ms per image", ms))
    }
}

/// Plain-loop port of Resample.c (ImagingResampleInner with the 8bpc passes), kept as the test oracle.
enum ReferenceResample {
    static func resize(_ image: RGBImage, width: Int, height: Int, filter: PillowResample.Filter) -> RGBImage {
        let needH = width != image.width, needV = height != image.height
        let horizontalFirst = !((image.height - height) > 0 && (image.height - height) > (image.width - width) * 2)
        var current = image
        func pass(horizontal: Bool, _ img: RGBImage) -> RGBImage {
            let inSize = horizontal ? img.width : img.height
            let outSize = horizontal ? width : height
            let c = PillowResample.Coefficients(inSize, outSize, filter)
            let (w, h) = horizontal ? (outSize, img.height) : (img.width, outSize)
            var out = [UInt8](repeating: 0, count: w * h * 3)
            for y in 0..<h {
                for x in 0..<w {
                    let o = horizontal ? x : y
                    let start = Int(c.bounds[2 * o]), count = Int(c.bounds[2 * o + 1])
                    for ch in 0..<3 {
                        var sum: Int32 = 1 << 21
                        for t in 0..<count {
                            let (sx, sy) = horizontal ? (start + t, y) : (x, start + t)
                            sum += Int32(img.pixels[(sy * img.width + sx) * 3 + ch]) * c.taps[o * c.stride + t]
                        }
                        out[(y * w + x) * 3 + ch] = PillowResample.clip8(sum)
                    }
                }
            }
            return RGBImage(width: w, height: h, pixels: out)
        }
        if horizontalFirst {
            if needH { current = pass(horizontal: true, current) }
            if needV { current = pass(horizontal: false, current) }
        } else {
            if needV { current = pass(horizontal: false, current) }
            if needH { current = pass(horizontal: true, current) }
        }
        return current
    }
}
