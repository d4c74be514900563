// Access to Tests/Fixtures/images (written by Scripts/fixtures/images.py) and the two small algorithms the
// fixture script shares with these tests: FNV-1a 64 hashes and splitmix64 synthetic images.
import Foundation
import XCTest
@testable import CapfiltImage

enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/images")

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url(name)))
    }

    /// Decodes a golden PNG written by Pillow (RGB, 8-bit).
    static func golden(_ name: String) throws -> RGBImage {
        try ImageDecoder.decodeRGB(try bytes(name))
    }

    static let manifest: Manifest = {
        do {
            return try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: url("manifest.json")))
        } catch {
            fatalError("cannot read \(url("manifest.json").path): \(error); run Scripts/fixtures/images.py")
        }
    }()
}

/// manifest.json, as written by Scripts/fixtures/images.py.
struct Manifest: Decodable {
    struct Decode: Decodable {
        let file: String
        let width: Int
        let height: Int
        let pillowMode: String
        let transparency: Bool
        let rgbFNV1a64: String
        let golden: String?
        let note: String
    }
    struct Resize: Decodable {
        let file: String
        let width: Int
        let height: Int
        let verticalFirst: Bool
        let rgbFNV1a64: String
        let golden: String?
    }
    struct PixelValues: Decodable {
        let file: String
        let config: String?
        let channels: Int
        let height: Int
        let width: Int
        let valuesFNV1a64: String
        /// (flat index, float32 bit pattern)
        let samples: [[UInt32]]
        let values: String?
    }
    struct RandomPairs: Decodable {
        let blob: String
        let bytes: Int
        let verticalFirstTwoPass: Int
        /// seed, inWidth, inHeight, outWidth, outHeight, filter, offset
        let pairs: [[Int]]
    }
    struct Bad: Decodable {
        let file: String
        let kind: String
        let pillow: String
        let note: String
    }
    struct Config: Decodable {
        let folder: String
        let height: Int
        let width: Int
        let mean: [Double]
        let std: [Double]
        let rescaleFactor: Double
        let resample: Int
        let doResize: Bool
        let doRescale: Bool
        let doNormalize: Bool
    }
    let schemaVersion: Int
    let pillow: String
    let transformers: String
    let decode: [Decode]
    let resize: [Resize]
    let pixelValues: [PixelValues]
    let randomPairs: RandomPairs
    let bad: [Bad]
    let configs: [Config]
}

/// FNV-1a 64 as 16 hex digits, same as the fixture script.
func fnv1a64<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes {
        h ^= UInt64(b)
        h = h &* 0x100_0000_01b3
    }
    let hex = String(h, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

func fnv1a64(floats: [Float]) -> String {
    floats.withUnsafeBytes { fnv1a64($0) }  // little-endian, like numpy's "<f4"
}

/// splitmix64, the fixture script's random stream.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// Gradient plus noise, bit-identical to `synthetic_rgb` in Scripts/fixtures/images.py.
func syntheticRGB(seed: Int, width: Int, height: Int) -> RGBImage {
    var g = SplitMix64(state: UInt64(seed))
    let mask: UInt64 = [0xff, 0x3f, 0x0f][Int(g.next() % 3)]
    let ax = Int(g.next() % 7), ay = Int(g.next() % 5)
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    var i = 0
    for y in 0..<height {
        for x in 0..<width {
            for c in 0..<3 {
                pixels[i] = UInt8(truncatingIfNeeded: x * ax + y * ay + c * 85 + Int(g.next() & mask))
                i += 1
            }
        }
    }
    return RGBImage(width: width, height: height, pixels: pixels)
}

/// Number of differing bytes and the largest difference, for messages when two images disagree.
func difference(_ a: [UInt8], _ b: [UInt8]) -> (count: Int, max: Int) {
    guard a.count == b.count else { return (max(a.count, b.count), 255) }
    var count = 0, largest = 0
    for (x, y) in zip(a, b) where x != y {
        count += 1
        largest = max(largest, abs(Int(x) - Int(y)))
    }
    return (count, largest)
}
