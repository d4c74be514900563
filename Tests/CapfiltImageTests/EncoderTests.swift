// ImageEncoder (output.image_format): JPEG and WebP that our decoder and the formats' own magic agree on, close
// to the pixels encoded, and the same bytes every time.
@testable import CapfiltImage
import Foundation
import XCTest

final class EncoderTests: XCTestCase {
    /// A smooth gradient with a sharp square: shape (H, W, 3).
    private func picture(width: Int = 96, height: Int = 64) -> RGBImage {
        var pixels: [UInt8] = []
        for y in 0..<height {
            for x in 0..<width {
                let inSquare = (20..<44).contains(x) && (16..<40).contains(y)
                pixels += inSquare ? [200, 30, 40] : [UInt8(x * 255 / width), UInt8(y * 255 / height), 128]
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    private func psnr(_ a: RGBImage, _ b: RGBImage) -> Double {
        let mse = zip(a.pixels, b.pixels).reduce(0.0) { $0 + pow(Double($1.0) - Double($1.1), 2) } / Double(a.pixels.count)
        return mse == 0 ? .infinity : 10 * log10(255 * 255 / mse)
    }

    func testEncodedImagesDecodeCloseToThePixels() throws {
        let image = picture()
        for (format, floor) in [(ImageFormat.jpeg, 35.0), (.webp, 30.0)] {
            let bytes = try ImageEncoder.encode(image, as: format, quality: 95)
            XCTAssertEqual(ImageDecoder.sniff(bytes), format)
            let back = try ImageDecoder.decodeRGB(bytes)
            XCTAssertEqual([back.width, back.height], [image.width, image.height])
            XCTAssertGreaterThan(psnr(image, back), floor, "\(format)")
            XCTAssertEqual(try ImageEncoder.encode(image, as: format, quality: 95), bytes, "deterministic")
            XCTAssertLessThan(try ImageEncoder.encode(image, as: format, quality: 20).count, bytes.count, "quality reaches the encoder")
        }
    }

    func testRefusedTargetsAreErrors() {
        XCTAssertThrowsError(try ImageEncoder.encode(picture(), as: .png, quality: 95))
        XCTAssertThrowsError(try ImageEncoder.encode(picture(), as: .jpeg, quality: 0))
    }
}
