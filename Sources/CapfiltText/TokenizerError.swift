// Errors from loading a tokenizer folder: each names the file and says how to fix it.

/// A tokenizer folder that cannot be used: which file, what is wrong, and what to do.
public struct TokenizerError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        /// The folder does not exist or is not a directory.
        case missingFolder
        /// Neither vocab.txt nor tokenizer.json is in the folder.
        case missingVocabulary
        /// A file exists but cannot be read or is not UTF-8.
        case unreadableFile
        /// A file is not the JSON / vocabulary it should be, or a setting has the wrong type.
        case malformedFile
        /// The tokenizer.json model is not WordPiece, or uses a setting this port does not implement.
        case unsupportedModel
        /// A special token ([CLS], [SEP], [PAD], [UNK], [MASK]) is not in the vocabulary.
        case missingSpecialToken
    }

    public let kind: Kind
    /// The file or folder at fault.
    public let path: String
    /// What is wrong with it.
    public let reason: String
    /// What to do about it.
    public let fix: String

    public init(kind: Kind, path: String, reason: String, fix: String) {
        self.kind = kind
        self.path = path
        self.reason = reason
        self.fix = fix
    }

    public var description: String { "\(path): \(reason). \(fix)" }
}
