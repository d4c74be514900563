// A BLIP checkpoint folder as users download it from the Hugging Face Hub: config.json, weights
// (model.safetensors or pytorch_model.bin), vocab.txt and/or tokenizer.json, preprocessor_config.json or
// processor_config.json. Everything is checked up front so a broken folder is one clear message.
import Foundation
import CapfiltImage
import CapfiltTensor
import CapfiltText
import CapfiltWeights

public struct ModelFolder: Sendable {
    public let url: URL
    public let config: BLIPConfig
    public let tokenizer: BertTokenizer
    public let imageProcessor: BlipImageProcessor

    /// Reads the configuration, tokenizer and preprocessor of `url`; the weights are read by `loadCaptioner`
    /// or `loadRetriever`.
    public init(url: URL) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw BLIPError.missingFile(path: url.path, what: "the model (a folder)")
        }
        self.url = url
        config = try BLIPConfig.load(folder: url)
        tokenizer = try BertTokenizer.load(folder: url)
        let processorConfig = try BlipImageProcessorConfig.load(folder: url)
        guard processorConfig.height == config.vision.imageSize, processorConfig.width == config.vision.imageSize else {
            throw BLIPError.invalidConfig(
                path: url.path,
                reason: "the preprocessor resizes to \(processorConfig.width)×\(processorConfig.height) but the vision tower takes \(config.vision.imageSize)×\(config.vision.imageSize)")
        }
        imageProcessor = BlipImageProcessor(config: processorConfig)
    }

    /// The captioning model (`BlipForConditionalGeneration`), its linear layers in `precision`.
    public func loadCaptioner(precision: Precision = .fp32) throws -> BLIPCaptioner {
        try requireArchitecture(.conditionalGeneration)
        let reader = StrictWeightReader(source: try CheckpointFolder.tensorSource(in: url), requireFinite: true)
        return try BLIPCaptioner(config: config, weights: reader, precision: precision)
    }

    /// The image–text matching model (`BlipForImageTextRetrieval`), its towers' linear layers in `precision`.
    public func loadRetriever(precision: Precision = .fp32) throws -> BLIPRetriever {
        try requireArchitecture(.imageTextRetrieval)
        let reader = StrictWeightReader(source: try CheckpointFolder.tensorSource(in: url), requireFinite: true)
        return try BLIPRetriever(config: config, weights: reader, precision: precision)
    }

    /// SHA-256 of the weight files: the model's identity in run ledgers.
    public func weightsDigest() throws -> String { try CheckpointFolder.weightsDigest(in: url) }

    private func requireArchitecture(_ expected: BLIPArchitecture) throws {
        let known = config.architectures.compactMap(BLIPArchitecture.init(rawValue:))
        if !known.isEmpty && !known.contains(expected) || !config.architectures.isEmpty && known.isEmpty {
            throw BLIPError.wrongArchitecture(path: url.appendingPathComponent("config.json").path,
                                              found: config.architectures, expected: expected.rawValue)
        }
    }
}

extension ModelFolder {
    /// Pixel values `(3, S, S)` of an encoded image (JPEG, PNG or WebP), exactly as transformers' PIL path.
    public func pixelValues(imageBytes: [UInt8], limits: ImageLimits = .default) throws -> [Float] {
        let image = try ImageDecoder.decodeRGB(imageBytes, limits: limits)
        return imageProcessor.pixelValues(image)
    }
}
