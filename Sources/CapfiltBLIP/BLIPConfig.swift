// config.json of a BLIP checkpoint, read the way transformers 5 reads it: the Hub's files (written by
// transformers 4.26, full sub-configs with legacy generation keys) and v5 `save_pretrained` output both
// decode here. Missing keys take the transformers class defaults, not the Hub values.
import Foundation

/// `vision_config` (BlipVisionConfig).
public struct BLIPVisionConfig: Sendable, Equatable {
    public var hiddenSize = 768
    public var intermediateSize = 3072
    public var numHiddenLayers = 12
    public var numAttentionHeads = 12
    public var imageSize = 384
    public var patchSize = 16
    public var layerNormEps: Float = 1e-5
    public var hiddenAct = "gelu"

    public var headDim: Int { hiddenSize / numAttentionHeads }
    /// Patches per side and in all, e.g. 24 and 576 for 384/16.
    public var patchesPerSide: Int { imageSize / patchSize }
    /// Tokens the tower outputs: patches plus CLS (577 for the Hub models).
    public var sequenceLength: Int { patchesPerSide * patchesPerSide + 1 }
}

/// `text_config` (BlipTextConfig).
public struct BLIPTextConfig: Sendable, Equatable {
    public var vocabSize = 30524
    public var hiddenSize = 768
    /// Width of the image embeddings cross-attention reads; v5 forces it to the vision width.
    public var encoderHiddenSize = 768
    public var intermediateSize = 3072
    public var numHiddenLayers = 12
    /// The class default is 8; every Hub config says 12.
    public var numAttentionHeads = 8
    public var maxPositionEmbeddings = 512
    public var layerNormEps: Float = 1e-12
    public var hiddenAct = "gelu"
    /// [DEC]: the first token of every caption.
    public var bosTokenId = 30522
    public var eosTokenId = 2
    public var padTokenId = 0
    /// [SEP]: where a caption stops (generate forces eos_token_id = sep_token_id).
    public var sepTokenId = 102

    public var headDim: Int { hiddenSize / numAttentionHeads }
}

/// Which head a checkpoint carries, from `architectures`.
public enum BLIPArchitecture: String, Sendable {
    case conditionalGeneration = "BlipForConditionalGeneration"
    case imageTextRetrieval = "BlipForImageTextRetrieval"
}

public struct BLIPConfig: Sendable, Equatable {
    public var vision = BLIPVisionConfig()
    public var text = BLIPTextConfig()
    /// ITC projection width (256 on the Hub).
    public var imageTextHiddenSize = 256
    public var architectures: [String] = []

    public init() {}

    /// Parses `config.json` bytes. `source` names the file in errors.
    public init(json data: Data, source: String) throws {
        do {
            self = try JSONDecoder().decode(Decoded.self, from: data).config
        } catch let error as BLIPError {
            throw error
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.dataCorrupted(context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw BLIPError.invalidConfig(path: source, reason: key.isEmpty ? "not a valid JSON object" : "\(key) has the wrong type")
        } catch {
            throw BLIPError.invalidConfig(path: source, reason: "unreadable (\(error))")
        }
        try validate(source: source)
    }

    /// The JSON layout, decoded leniently: every field optional, unknown fields ignored.
    private struct Decoded: Decodable {
        var config = BLIPConfig()
        init(from decoder: Decoder) throws {
            let root = try decoder.container(keyedBy: AnyKey.self)
            if let type = try root.decodeIfPresent(String.self, forKey: "model_type"), type != "blip" {
                throw BLIPError.invalidConfig(path: "config.json", reason: "model_type is \"\(type)\", expected \"blip\"")
            }
            config.imageTextHiddenSize = try root.decodeIfPresent(Int.self, forKey: "image_text_hidden_size") ?? config.imageTextHiddenSize
            config.architectures = try root.decodeIfPresent([String].self, forKey: "architectures") ?? []
            if root.contains("vision_config"), try !root.decodeNil(forKey: "vision_config") {
                let v = try root.nestedContainer(keyedBy: AnyKey.self, forKey: "vision_config")
                var c = config.vision
                c.hiddenSize = try v.decodeIfPresent(Int.self, forKey: "hidden_size") ?? c.hiddenSize
                c.intermediateSize = try v.decodeIfPresent(Int.self, forKey: "intermediate_size") ?? c.intermediateSize
                c.numHiddenLayers = try v.decodeIfPresent(Int.self, forKey: "num_hidden_layers") ?? c.numHiddenLayers
                c.numAttentionHeads = try v.decodeIfPresent(Int.self, forKey: "num_attention_heads") ?? c.numAttentionHeads
                c.imageSize = try v.decodeIfPresent(Int.self, forKey: "image_size") ?? c.imageSize
                c.patchSize = try v.decodeIfPresent(Int.self, forKey: "patch_size") ?? c.patchSize
                c.layerNormEps = try v.decodeIfPresent(Float.self, forKey: "layer_norm_eps") ?? c.layerNormEps
                c.hiddenAct = try v.decodeIfPresent(String.self, forKey: "hidden_act") ?? c.hiddenAct
                config.vision = c
            }
            if root.contains("text_config"), try !root.decodeNil(forKey: "text_config") {
                let t = try root.nestedContainer(keyedBy: AnyKey.self, forKey: "text_config")
                var c = config.text
                c.vocabSize = try t.decodeIfPresent(Int.self, forKey: "vocab_size") ?? c.vocabSize
                c.hiddenSize = try t.decodeIfPresent(Int.self, forKey: "hidden_size") ?? c.hiddenSize
                c.intermediateSize = try t.decodeIfPresent(Int.self, forKey: "intermediate_size") ?? c.intermediateSize
                c.numHiddenLayers = try t.decodeIfPresent(Int.self, forKey: "num_hidden_layers") ?? c.numHiddenLayers
                c.numAttentionHeads = try t.decodeIfPresent(Int.self, forKey: "num_attention_heads") ?? c.numAttentionHeads
                c.maxPositionEmbeddings = try t.decodeIfPresent(Int.self, forKey: "max_position_embeddings") ?? c.maxPositionEmbeddings
                c.layerNormEps = try t.decodeIfPresent(Float.self, forKey: "layer_norm_eps") ?? c.layerNormEps
                c.hiddenAct = try t.decodeIfPresent(String.self, forKey: "hidden_act") ?? c.hiddenAct
                c.bosTokenId = try t.decodeIfPresent(Int.self, forKey: "bos_token_id") ?? c.bosTokenId
                c.eosTokenId = try t.decodeIfPresent(Int.self, forKey: "eos_token_id") ?? c.eosTokenId
                c.padTokenId = try t.decodeIfPresent(Int.self, forKey: "pad_token_id") ?? c.padTokenId
                c.sepTokenId = try t.decodeIfPresent(Int.self, forKey: "sep_token_id") ?? c.sepTokenId
                config.text = c
            }
            // transformers 5 (BlipConfig.__post_init__) ignores the file's value and uses the vision width.
            config.text.encoderHiddenSize = config.vision.hiddenSize
        }
    }

    /// Loads `config.json` from a model folder.
    public static func load(folder: URL) throws -> BLIPConfig {
        let url = folder.appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw BLIPError.missingFile(path: url.path, what: "the model configuration")
        }
        return try BLIPConfig(json: data, source: url.path)
    }

    private func validate(source: String) throws {
        func fail(_ reason: String) -> BLIPError { .invalidConfig(path: source, reason: reason) }
        for (name, value) in [("vision hidden_size", vision.hiddenSize), ("vision num_hidden_layers", vision.numHiddenLayers),
                              ("vision num_attention_heads", vision.numAttentionHeads), ("image_size", vision.imageSize),
                              ("patch_size", vision.patchSize), ("text hidden_size", text.hiddenSize),
                              ("text num_attention_heads", text.numAttentionHeads), ("vocab_size", text.vocabSize),
                              ("max_position_embeddings", text.maxPositionEmbeddings),
                              ("vision intermediate_size", vision.intermediateSize),
                              ("text intermediate_size", text.intermediateSize)] where value <= 0 {
            throw fail("\(name) is \(value); it must be positive")
        }
        if vision.hiddenSize % vision.numAttentionHeads != 0 {
            throw fail("vision hidden_size \(vision.hiddenSize) is not a multiple of num_attention_heads \(vision.numAttentionHeads)")
        }
        if text.hiddenSize % text.numAttentionHeads != 0 {
            throw fail("text hidden_size \(text.hiddenSize) is not a multiple of num_attention_heads \(text.numAttentionHeads)")
        }
        if vision.imageSize % vision.patchSize != 0 {
            throw fail("image_size \(vision.imageSize) is not a multiple of patch_size \(vision.patchSize)")
        }
        for (tower, act) in [("vision", vision.hiddenAct), ("text", text.hiddenAct)] where act != "gelu" {
            throw fail("\(tower) hidden_act \"\(act)\" is not supported; BLIP checkpoints use \"gelu\"")
        }
        for (name, id) in [("bos_token_id", text.bosTokenId), ("sep_token_id", text.sepTokenId), ("pad_token_id", text.padTokenId)]
        where id < 0 || id >= text.vocabSize {
            throw fail("text \(name) \(id) is outside the vocabulary of \(text.vocabSize)")
        }
    }
}

/// A JSON object key given as a string literal.
struct AnyKey: CodingKey, ExpressibleByStringLiteral {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
    init(stringLiteral value: String) { stringValue = value }
}
