// Port of transformers 5 `BlipImageProcessorPil` (models/blip/image_processing_pil_blip.py with
// image_processing_backends.PilBackend): resize with Pillow, rescale in float64 then cast to float32,
// normalize in float32 as (x - mean) / std, CHW output. Bit-identical to the Python processor.
import Foundation

/// The image-processor settings of a BLIP checkpoint.
///
/// Decodes `preprocessor_config.json` (`size` as an int or `{height, width}`) and the `image_processor`
/// object of a transformers 5 `processor_config.json`; missing keys take BlipImageProcessorPil's defaults.
public struct BlipImageProcessorConfig: Sendable, Decodable, Equatable {
    /// Output height and width; the image is squashed to exactly this size (no crop, no aspect ratio).
    public var height: Int
    public var width: Int
    /// Per-channel mean and std, float32 as numpy casts them (from the JSON's doubles).
    public var mean: [Float]
    public var std: [Float]
    public var rescaleFactor: Double
    public var doResize: Bool
    public var doRescale: Bool
    public var doNormalize: Bool
    /// Kept for completeness: `RGBImage` is always convert_to_rgb's output (ImageDecoder applies it), so
    /// this flag changes nothing here; every BLIP config on the Hub sets it to true.
    public var doConvertRGB: Bool
    /// `PIL.Image.Resampling` number; 3 is BICUBIC.
    public var resample: Int

    /// OPENAI_CLIP_MEAN / OPENAI_CLIP_STD, widened from Python doubles to float32 like numpy does.
    public static let clipMean: [Float] = [0.48145466, 0.4578275, 0.40821073].map { (v: Double) in Float(v) }
    public static let clipStd: [Float] = [0.26862954, 0.26130258, 0.27577711].map { (v: Double) in Float(v) }

    public init(
        height: Int = 384, width: Int = 384, mean: [Float] = clipMean, std: [Float] = clipStd,
        rescaleFactor: Double = 1.0 / 255.0, doResize: Bool = true, doRescale: Bool = true,
        doNormalize: Bool = true, doConvertRGB: Bool = true, resample: Int = 3
    ) {
        self.height = height
        self.width = width
        self.mean = mean
        self.std = std
        self.rescaleFactor = rescaleFactor
        self.doResize = doResize
        self.doRescale = doRescale
        self.doNormalize = doNormalize
        self.doConvertRGB = doConvertRGB
        self.resample = resample
    }

    private enum CodingKeys: String, CodingKey {
        case size, resample
        case doResize = "do_resize", doRescale = "do_rescale", rescaleFactor = "rescale_factor"
        case doNormalize = "do_normalize", imageMean = "image_mean", imageStd = "image_std"
        case doConvertRGB = "do_convert_rgb", doCenterCrop = "do_center_crop"
    }

    private enum SizeKeys: String, CodingKey {
        case height, width, shortestEdge = "shortest_edge", longestEdge = "longest_edge"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        if let side = try? c.decode(Int.self, forKey: .size) {
            // BLIP sets default_to_square, so an int size means side x side.
            (height, width) = (side, side)
        } else if c.contains(.size), try c.decodeNil(forKey: .size) == false {
            let size = try c.nestedContainer(keyedBy: SizeKeys.self, forKey: .size)
            guard let h = try size.decodeIfPresent(Int.self, forKey: .height),
                let w = try size.decodeIfPresent(Int.self, forKey: .width)
            else {
                throw DecodingError.dataCorruptedError(
                    forKey: .size, in: c,
                    debugDescription: "size must be an int or {height, width}; BLIP squashes images to a fixed "
                        + "size, so shortest_edge/longest_edge configs are not BLIP's; fix the config")
            }
            (height, width) = (h, w)
        }
        guard height > 0, width > 0 else {
            throw DecodingError.dataCorruptedError(
                forKey: .size, in: c, debugDescription: "size \(height)x\(width) must be positive")
        }
        resample = try c.decodeIfPresent(Int.self, forKey: .resample) ?? resample
        guard PillowResample.Filter(rawValue: resample) != nil else {
            throw DecodingError.dataCorruptedError(
                forKey: .resample, in: c,
                debugDescription: "resample \(resample) is not one of Pillow's convolution filters "
                    + "(1 LANCZOS, 2 BILINEAR, 3 BICUBIC, 4 BOX, 5 HAMMING); BLIP uses 3")
        }
        doResize = try c.decodeIfPresent(Bool.self, forKey: .doResize) ?? doResize
        doRescale = try c.decodeIfPresent(Bool.self, forKey: .doRescale) ?? doRescale
        rescaleFactor = try c.decodeIfPresent(Double.self, forKey: .rescaleFactor) ?? rescaleFactor
        doNormalize = try c.decodeIfPresent(Bool.self, forKey: .doNormalize) ?? doNormalize
        doConvertRGB = try c.decodeIfPresent(Bool.self, forKey: .doConvertRGB) ?? doConvertRGB
        mean = try Self.decodeChannels(c, .imageMean) ?? mean
        std = try Self.decodeChannels(c, .imageStd) ?? std
        if try c.decodeIfPresent(Bool.self, forKey: .doCenterCrop) == true {
            throw DecodingError.dataCorruptedError(
                forKey: .doCenterCrop, in: c,
                debugDescription: "do_center_crop is true, but BLIP's processor never crops; fix the config")
        }
    }

    /// A float or a list of 1 or 3 floats, read as doubles and then narrowed, as numpy does.
    private static func decodeChannels(
        _ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys
    ) throws -> [Float]? {
        guard c.contains(key), try c.decodeNil(forKey: key) == false else { return nil }
        let values: [Double]
        if let single = try? c.decode(Double.self, forKey: key) {
            values = [single]
        } else {
            values = try c.decode([Double].self, forKey: key)
        }
        guard values.count == 1 || values.count == 3 else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: c, debugDescription: "\(key.stringValue) needs 1 or 3 values, got \(values.count)")
        }
        let floats = values.map { Float($0) }
        return floats.count == 1 ? Array(repeating: floats[0], count: 3) : floats
    }

    /// Reads the config from a checkpoint folder the way transformers 5 does: the `image_processor` object of
    /// `processor_config.json` if there is one, otherwise `preprocessor_config.json`.
    public static func load(folder: URL) throws(ImageConfigError) -> BlipImageProcessorConfig {
        /// transformers 5's processor_config.json: the image processor's settings sit under one key.
        struct ProcessorFile: Decodable {
            let imageProcessor: BlipImageProcessorConfig?
            enum CodingKeys: String, CodingKey { case imageProcessor = "image_processor" }
        }
        let processorFile = folder.appendingPathComponent("processor_config.json")
        if let data = try? Data(contentsOf: processorFile) {
            do {
                if let config = try JSONDecoder().decode(ProcessorFile.self, from: data).imageProcessor {
                    return config
                }
            } catch {
                throw .invalid(path: processorFile.path, reason: "\(error)")
            }
        }
        let preprocessorFile = folder.appendingPathComponent("preprocessor_config.json")
        guard let data = try? Data(contentsOf: preprocessorFile) else {
            throw .missing(folder: folder.path)
        }
        do {
            return try JSONDecoder().decode(BlipImageProcessorConfig.self, from: data)
        } catch {
            throw .invalid(path: preprocessorFile.path, reason: "\(error)")
        }
    }
}

/// A checkpoint's image-processor config could not be read.
public enum ImageConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    case missing(folder: String)
    case invalid(path: String, reason: String)

    public var description: String {
        switch self {
        case .missing(let folder):
            return "no preprocessor_config.json (or processor_config.json with an image_processor entry) in "
                + "\(folder): copy it from the checkpoint's Hub repo"
        case .invalid(let path, let reason):
            return "cannot read the image processor config \(path): \(reason); fix or re-download the file"
        }
    }
}

/// BLIP's image preprocessing: RGB image in, `(3, H, W)` float32 `pixel_values` out.
public struct BlipImageProcessor: Sendable {
    public let config: BlipImageProcessorConfig
    private let filter: PillowResample.Filter
    /// `(3, 256)`: the final float for every channel and byte value. Rescale and normalize act on each byte
    /// independently, so a lookup reproduces the numpy arithmetic exactly and costs one load per value.
    private let table: [Float]

    /// `config` must be valid (as `BlipImageProcessorConfig.load` guarantees): a Pillow filter number and
    /// 3 (or 1) means and stds.
    public init(config: BlipImageProcessorConfig) {
        let filter = PillowResample.Filter(rawValue: config.resample)
        precondition(filter != nil, "resample \(config.resample) is not a Pillow convolution filter")
        precondition(config.mean.count == 3 || config.mean.count == 1, "image_mean needs 1 or 3 values")
        precondition(config.std.count == 3 || config.std.count == 1, "image_std needs 1 or 3 values")
        self.config = config
        self.filter = filter ?? .bicubic
        var table = [Float](repeating: 0, count: 3 * 256)
        for c in 0..<3 {
            let mean = config.mean[config.mean.count == 3 ? c : 0]
            let std = config.std[config.std.count == 3 ? c : 0]
            for p in 0..<256 {
                // rescale: `image.astype(float64) * scale`, then `.astype(float32)`.
                var x = config.doRescale ? Float(Double(p) * config.rescaleFactor) : Float(p)
                // normalize: float32 `(image - mean) / std`, a subtraction then a true division.
                if config.doNormalize {
                    x = (x - mean) / std
                }
                table[c * 256 + p] = x
            }
        }
        self.table = table
    }

    /// Height and width of the output; the image's own size when `doResize` is false.
    private func outputSize(_ image: RGBImage) -> (height: Int, width: Int) {
        config.doResize ? (config.height, config.width) : (image.height, image.width)
    }

    /// Writes `pixel_values` for one image, shape `(3, H, W)` channel-major, into `output`, which must hold
    /// `3 * H * W` floats (H, W from the config; the image's size when `doResize` is false).
    public func pixelValues(_ image: RGBImage, into output: UnsafeMutablePointer<Float>) {
        let (height, width) = outputSize(image)
        let resized = config.doResize ? PillowResample.resize(image, width: width, height: height, filter: filter) : image
        let plane = height * width
        resized.pixels.withUnsafeBufferPointer { src in
            table.withUnsafeBufferPointer { lut in
                let out = UnsafeMutableBufferPointer(start: output, count: 3 * plane)
                for i in 0..<plane {
                    out[i] = lut[Int(src[3 * i])]
                    out[plane + i] = lut[256 + Int(src[3 * i + 1])]
                    out[2 * plane + i] = lut[512 + Int(src[3 * i + 2])]
                }
            }
        }
    }

    /// `pixel_values` for one image as a new array, shape `(3, H, W)`.
    public func pixelValues(_ image: RGBImage) -> [Float] {
        let (height, width) = outputSize(image)
        return [Float](unsafeUninitializedCapacity: 3 * height * width) { buffer, initialized in
            if let base = buffer.baseAddress {
                pixelValues(image, into: base)
            }
            initialized = 3 * height * width
        }
    }
}
