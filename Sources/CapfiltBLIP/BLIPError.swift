// Errors of the model layer. Each message names the file or setting and ends with what to do.

public enum BLIPError: Error, CustomStringConvertible, Equatable {
    case missingFile(path: String, what: String)
    case invalidConfig(path: String, reason: String)
    case wrongArchitecture(path: String, found: [String], expected: String)
    case invalidArgument(String)
    case sequenceTooLong(length: Int, limit: Int)

    public var description: String { description(modelSetting: "--model") }

    /// The message, naming `modelSetting` (a flag such as `--model`, or a spec field such as `captioner.model`)
    /// as what to point at the right folder.
    public func description(modelSetting: String) -> String {
        switch self {
        case .missingFile(let path, let what):
            return "\(path) is missing: it holds \(what). Point \(modelSetting) at a BLIP folder as downloaded from the Hugging Face Hub (config.json, weights, vocab.txt or tokenizer.json, preprocessor_config.json)."
        case .invalidConfig(let path, let reason):
            return "\(path): \(reason). Fix the file or download it again from the Hub."
        case .wrongArchitecture(let path, let found, let expected):
            return "\(path) is a \(found.isEmpty ? "model without `architectures`" : found.joined(separator: ", ")) checkpoint, but this needs \(expected). Use a captioning checkpoint (e.g. Salesforce/blip-image-captioning-base) for captions and an ITM checkpoint (e.g. Salesforce/blip-itm-base-coco) for scores."
        case .invalidArgument(let message):
            return message
        case .sequenceTooLong(let length, let limit):
            return "the text needs \(length) positions but the model has \(limit) (max_position_embeddings). Use a shorter prompt or fewer new tokens."
        }
    }
}
