// BlipImageProcessor against transformers 5 BlipImageProcessorPil: pixel_values floats identical (bit
// patterns), and configs read the way transformers reads them.
import Foundation
import XCTest
@testable import CapfiltImage

final class ProcessorTests: XCTestCase {
    func testPixelValuesIdenticalToTransformers() throws {
        var failures: [String] = []
        var floats = 0
        for entry in Fixtures.manifest.pixelValues {
            let config = try entry.config.map { try BlipImageProcessorConfig.load(folder: Fixtures.url($0)) }
                ?? BlipImageProcessorConfig()
            XCTAssertEqual(config.height, entry.height)
            XCTAssertEqual(config.width, entry.width)
            let processor = BlipImageProcessor(config: config)
            let image = try ImageDecoder.decodeRGB(try Fixtures.bytes(entry.file))
            let values = processor.pixelValues(image)
            XCTAssertEqual(values.count, entry.channels * entry.height * entry.width)
            floats += values.count
            for sample in entry.samples {
                XCTAssertEqual(values[Int(sample[0])].bitPattern, sample[1], "\(entry.file) index \(sample[0])")
            }
            if let stored = entry.values {
                let expected = try Data(contentsOf: Fixtures.url(stored)).withUnsafeBytes {
                    Array($0.bindMemory(to: Float.self))
                }
                let differing = zip(values, expected).filter { $0.bitPattern != $1.bitPattern }.count
                if differing > 0 { failures.append("\(entry.file): \(differing) floats differ") }
            }
            if fnv1a64(floats: values) != entry.valuesFNV1a64 {
                failures.append("\(entry.file) (\(entry.config ?? "384x384 default")): hash differs")
            }
            // The pointer entry point writes the same values.
            var direct = [Float](repeating: .nan, count: values.count)
            direct.withUnsafeMutableBufferPointer { processor.pixelValues(image, into: $0.baseAddress!) }
            XCTAssertEqual(direct, values)
        }
        print("pixel_values: \(Fixtures.manifest.pixelValues.count) images, \(floats) floats compared, "
            + "\(failures.count) mismatches")
        XCTAssertEqual(failures, [], failures.joined(separator: "\n"))
    }

    func testConfigsLoadLikeTransformers() throws {
        for expected in Fixtures.manifest.configs {
            let config = try BlipImageProcessorConfig.load(folder: Fixtures.url(expected.folder))
            XCTAssertEqual(config.height, expected.height, expected.folder)
            XCTAssertEqual(config.width, expected.width, expected.folder)
            XCTAssertEqual(config.mean, expected.mean.map { Float($0) }, expected.folder)
            XCTAssertEqual(config.std, expected.std.map { Float($0) }, expected.folder)
            XCTAssertEqual(config.rescaleFactor, expected.rescaleFactor, expected.folder)
            XCTAssertEqual(config.resample, expected.resample, expected.folder)
            XCTAssertEqual(config.doResize, expected.doResize, expected.folder)
            XCTAssertEqual(config.doRescale, expected.doRescale, expected.folder)
            XCTAssertEqual(config.doNormalize, expected.doNormalize, expected.folder)
        }
        XCTAssertEqual(try BlipImageProcessorConfig.load(folder: Fixtures.url("configs/base")), BlipImageProcessorConfig())
    }

    func testBadConfigsAreRefused() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-image-config-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        XCTAssertThrowsError(try BlipImageProcessorConfig.load(folder: folder)) {
            XCTAssertTrue("\($0)".contains("preprocessor_config.json"), "\($0)")
        }
        for bad in [#"{"size": {"shortest_edge": 384}}"#, #"{"resample": 0}"#, #"{"image_mean": [0.5, 0.5]}"#,
                    #"{"do_center_crop": true}"#, "{not json"] {
            try Data(bad.utf8).write(to: folder.appendingPathComponent("preprocessor_config.json"))
            XCTAssertThrowsError(try BlipImageProcessorConfig.load(folder: folder), bad) {
                XCTAssertTrue("\($0)".contains("fix"), "\($0)")
            }
        }
    }

    /// Without rescale or normalize the values are the bytes themselves, in CHW order.
    func testChannelMajorLayout() {
        let image = syntheticRGB(seed: 9, width: 5, height: 3)
        let config = BlipImageProcessorConfig(height: 3, width: 5, doRescale: false, doNormalize: false)
        let values = BlipImageProcessor(config: config).pixelValues(image)
        for c in 0..<3 {
            for i in 0..<15 {
                XCTAssertEqual(values[c * 15 + i], Float(image.pixels[3 * i + c]))
            }
        }
    }
}
