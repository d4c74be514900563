// Goldens written by Scripts/fixtures/tokenizer.py (transformers 5.24 BertTokenizer), read without Python.
import Foundation
import XCTest
@testable import CapfiltText

enum Fixtures {
    /// Tests/Fixtures/tokenizer: a model folder as a user has it, plus the JSON goldens.
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizer")

    struct EncodeCase: Decodable {
        let text: String
        let tokens: [String]
        let ids: [Int]
    }

    struct TruncationCase: Decodable {
        let text: String
        let max_length: Int
        let add_special_tokens: Bool
        let ids: [Int]
    }

    struct DecodeCase: Decodable {
        let ids: [Int]
        let skip_special_tokens: Bool
        let text: String
    }

    struct VariantCase: Decodable {
        struct Settings: Decodable, Hashable {
            let do_lower_case: Bool?
            let strip_accents: Bool?
            let tokenize_chinese_chars: Bool?
        }
        let settings: Settings
        let text: String
        let ids: [Int]
    }

    struct UnicodeBehaviour: Decodable {
        let dropped: [[UInt32]]
        let whitespace: [UInt32]
        let punctuation: [[UInt32]]
        let splits: [UInt32]
        let chinese: [[UInt32]]
        let nonspacing_marks: [[UInt32]]
        /// Code point -> the Rust normalizer's NFD + strip Mn + lowercase of it, where that changes it.
        let strip_and_lowercase: [String: String]
        /// Code point -> Rust's `char::to_lowercase`, where that changes it.
        let lowercase: [String: String]
    }

    static func load<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
        let data = try Data(contentsOf: folder.appendingPathComponent(name))
        return try JSONDecoder().decode(T.self, from: data)
    }

    /// The BLIP-like folder, loaded once per process (it reads vocab.txt).
    static let tokenizer: Result<BertTokenizer, Error> = Result { try BertTokenizer.load(folder: folder) }

    /// A fresh folder in the temporary directory holding copies of the named fixture files.
    static func folderWith(_ names: [String]) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("capfilt-text-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        for name in names {
            try FileManager.default.copyItem(at: folder.appendingPathComponent(name), to: url.appendingPathComponent(name))
        }
        return url
    }

    /// Scalars as "U+XXXX" for readable failure messages.
    static func describe(_ text: String) -> String {
        text.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : String(format: "<U+%04X>", $0.value) }
            .joined()
    }
}
