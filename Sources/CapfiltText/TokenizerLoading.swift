// Loads a BERT tokenizer from a model folder as users have it (a Hub snapshot of a BLIP repo): vocab.txt or
// tokenizer.json for the vocabulary, tokenizer_config.json (and tokenizer.json's normalizer) for the settings.
import Foundation

extension BertTokenizer {
    /// Settings a folder can carry; nil means "not said here".
    struct FolderSettings {
        var doLowerCase: Bool?
        var stripAccents: Bool??
        var tokenizeChineseChars: Bool?
        var modelMaxLength: Int?
        var cleanUpTokenizationSpaces: Bool?
        var names = SpecialTokenNames()

        /// Fills what `self` leaves open from `fallback`.
        func filling(from fallback: FolderSettings) -> FolderSettings {
            var merged = self
            merged.doLowerCase = doLowerCase ?? fallback.doLowerCase
            merged.stripAccents = stripAccents ?? fallback.stripAccents
            merged.tokenizeChineseChars = tokenizeChineseChars ?? fallback.tokenizeChineseChars
            return merged
        }
    }

    static let fixDownload = "Download the tokenizer files of Salesforce/blip-image-captioning-base (vocab.txt, "
        + "tokenizer.json, tokenizer_config.json) into the folder again"

    /// Loads the tokenizer of a model folder.
    ///
    /// The vocabulary comes from `vocab.txt` (one token per line, line number = id) or, without it, from
    /// `tokenizer.json`'s WordPiece model. Settings come from `tokenizer_config.json` (`do_lower_case`,
    /// `strip_accents`, `tokenize_chinese_chars`, `model_max_length`, special token names,
    /// `clean_up_tokenization_spaces`), then from tokenizer.json's BertNormalizer for what the config leaves out,
    /// then from BERT-uncased defaults. Both files are optional besides the vocabulary.
    /// - Throws: `TokenizerError` naming the missing or malformed file and saying how to fix it.
    public static func load(folder: URL) throws -> BertTokenizer {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw TokenizerError(kind: .missingFolder, path: folder.path, reason: "no such folder",
                                 fix: "Pass the model folder that holds vocab.txt or tokenizer.json")
        }
        let vocabURL = folder.appendingPathComponent("vocab.txt")
        let jsonURL = folder.appendingPathComponent("tokenizer.json")
        let configURL = folder.appendingPathComponent("tokenizer_config.json")
        let hasVocab = FileManager.default.fileExists(atPath: vocabURL.path)
        let hasJSON = FileManager.default.fileExists(atPath: jsonURL.path)

        var settings = FolderSettings()
        if FileManager.default.fileExists(atPath: configURL.path) {
            settings = try readConfig(configURL)
        }

        let vocabulary: [(String, Int)]
        let vocabularyPath: String
        if hasVocab {
            vocabulary = try readVocabularyText(vocabURL)
            vocabularyPath = vocabURL.path
            // tokenizer.json is parsed only when it can still say something.
            if hasJSON && (settings.doLowerCase == nil || settings.stripAccents == nil
                || settings.tokenizeChineseChars == nil) {
                settings = settings.filling(from: try readTokenizerJSON(jsonURL).settings)
            }
        } else if hasJSON {
            let parsed = try readTokenizerJSON(jsonURL)
            vocabulary = parsed.vocabulary
            vocabularyPath = jsonURL.path
            settings = settings.filling(from: parsed.settings)
        } else {
            throw TokenizerError(kind: .missingVocabulary, path: folder.path,
                                 reason: "neither vocab.txt nor tokenizer.json is in the folder", fix: fixDownload)
        }

        let missing = missingSpecialTokens(in: vocabulary, names: settings.names)
        if !missing.isEmpty {
            throw TokenizerError(kind: .missingSpecialToken, path: vocabularyPath,
                                 reason: "the vocabulary lacks \(missing.joined(separator: ", "))",
                                 fix: "Use the bert-base-uncased vocabulary that BLIP ships, or name the special "
                                    + "tokens in tokenizer_config.json (cls_token, sep_token, ...)")
        }
        return BertTokenizer(
            checkedVocabulary: vocabulary, names: settings.names, doLowerCase: settings.doLowerCase ?? true,
            tokenizeChineseChars: settings.tokenizeChineseChars ?? true, stripAccents: settings.stripAccents ?? nil,
            maxInputCharsPerWord: 100, modelMaxLength: settings.modelMaxLength ?? 512,
            cleanUpTokenizationSpaces: settings.cleanUpTokenizationSpaces ?? false)
    }

    // MARK: - vocab.txt

    /// Lines as Rust's `BufRead::lines` gives them (split on LF, one trailing CR dropped), each `trim_end`-ed;
    /// a line's number is its id.
    static func readVocabularyText(_ url: URL) throws -> [(String, Int)] {
        let data = try readFile(url)
        var vocabulary: [(String, Int)] = []
        vocabulary.reserveCapacity(32_000)
        var lineStart = data.startIndex
        var lineNumber = 0
        func addLine(_ end: Data.Index) throws {
            var lineEnd = end
            if lineEnd > lineStart && data[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            let bytes = data[lineStart..<lineEnd]
            var token = String(decoding: bytes, as: UTF8.self)
            // Invalid UTF-8 decodes with U+FFFD substitutes, so the bytes no longer round-trip.
            guard token.utf8.elementsEqual(bytes) else {
                throw TokenizerError(kind: .unreadableFile, path: url.path,
                                     reason: "line \(lineNumber + 1) is not valid UTF-8", fix: fixDownload)
            }
            while let last = token.unicodeScalars.last, BertCharacters.isRustWhitespace(last.value) {
                token.unicodeScalars.removeLast()
            }
            vocabulary.append((token, lineNumber))
            lineNumber += 1
        }
        var index = data.startIndex
        while index < data.endIndex {
            if data[index] == 0x0A {
                try addLine(index)
                lineStart = index + 1
            }
            index += 1
        }
        if lineStart < data.endIndex { try addLine(data.endIndex) }
        if vocabulary.isEmpty {
            throw TokenizerError(kind: .malformedFile, path: url.path, reason: "the vocabulary is empty",
                                 fix: fixDownload)
        }
        return vocabulary
    }

    // MARK: - tokenizer.json

    /// The WordPiece vocabulary and the BertNormalizer settings of a tokenizers serialization.
    static func readTokenizerJSON(_ url: URL) throws -> (vocabulary: [(String, Int)], settings: FolderSettings) {
        let root = try readJSONObject(url)
        func malformed(_ reason: String) -> TokenizerError {
            TokenizerError(kind: .malformedFile, path: url.path, reason: reason, fix: fixDownload)
        }
        guard let model = root["model"] as? [String: Any] else { throw malformed("it has no \"model\" object") }
        if let type = model["type"] as? String, type != "WordPiece" {
            throw TokenizerError(kind: .unsupportedModel, path: url.path,
                                 reason: "the model is \(type), not WordPiece",
                                 fix: "Use a BERT WordPiece tokenizer folder (BLIP's is bert-base-uncased)")
        }
        if let prefix = model["continuing_subword_prefix"] as? String, prefix != "##" {
            throw TokenizerError(kind: .unsupportedModel, path: url.path,
                                 reason: "the continuing_subword_prefix is \"\(prefix)\", not \"##\"",
                                 fix: "Use a BERT WordPiece tokenizer folder (BLIP's is bert-base-uncased)")
        }
        guard let vocab = model["vocab"] as? [String: Any], !vocab.isEmpty else {
            throw malformed("model.vocab is missing or empty")
        }
        var vocabulary: [(String, Int)] = []
        vocabulary.reserveCapacity(vocab.count)
        for (token, value) in vocab {
            guard let id = (value as? NSNumber)?.intValue, id >= 0, id < 50_000_000 else {
                throw malformed("model.vocab[\"\(token)\"] is not a non-negative integer id")
            }
            vocabulary.append((token, id))
        }
        vocabulary.sort { $0.1 < $1.1 }

        // transformers 5's BertTokenizer rebuilds the model (unk_token, max_input_chars_per_word = 100) and the
        // normalizer from tokenizer_config.json; a BertNormalizer here only fills the config's gaps.
        var settings = FolderSettings()
        if let normalizer = root["normalizer"] as? [String: Any], normalizer["type"] as? String == "BertNormalizer" {
            settings.doLowerCase = normalizer["lowercase"] as? Bool
            settings.tokenizeChineseChars = normalizer["handle_chinese_chars"] as? Bool
            if let strip = normalizer["strip_accents"] {
                settings.stripAccents = .some(strip as? Bool)
            }
        }
        return (vocabulary, settings)
    }

    // MARK: - tokenizer_config.json

    static func readConfig(_ url: URL) throws -> FolderSettings {
        let root = try readJSONObject(url)
        func wrongType(_ key: String, _ expected: String) -> TokenizerError {
            TokenizerError(kind: .malformedFile, path: url.path, reason: "\"\(key)\" is not \(expected)",
                           fix: "Fix the value, or download tokenizer_config.json of Salesforce/blip-image-captioning-base again")
        }
        func bool(_ key: String) throws -> Bool? {
            guard let value = root[key], !(value is NSNull) else { return nil }
            guard let flag = value as? Bool, !isNonBoolNumber(value) else { throw wrongType(key, "true or false") }
            return flag
        }
        var settings = FolderSettings()
        settings.doLowerCase = try bool("do_lower_case")
        settings.tokenizeChineseChars = try bool("tokenize_chinese_chars")
        settings.cleanUpTokenizationSpaces = try bool("clean_up_tokenization_spaces")
        if root.keys.contains("strip_accents") {
            // Present and null means "follow do_lower_case": a decided value, not a gap.
            let strip: Bool? = try bool("strip_accents")
            settings.stripAccents = .some(strip)
        }
        if let value = root["model_max_length"], !(value is NSNull) {
            guard let number = value as? NSNumber, !isBoolNumber(value) else { throw wrongType("model_max_length", "a number") }
            // Configs of unbounded models write 1e30; clamp instead of trapping.
            let real = number.doubleValue
            settings.modelMaxLength = real >= Double(Int.max) ? Int.max : max(0, number.intValue)
        }
        for (key, path) in [("cls_token", \SpecialTokenNames.cls), ("sep_token", \.sep), ("pad_token", \.pad),
                            ("unk_token", \.unk), ("mask_token", \.mask)] {
            guard let value = root[key], !(value is NSNull) else { continue }
            // Either "[CLS]" or a serialized AddedToken {"content": "[CLS]", ...}.
            if let name = value as? String {
                settings.names[keyPath: path] = name
            } else if let object = value as? [String: Any], let name = object["content"] as? String {
                settings.names[keyPath: path] = name
            } else {
                throw wrongType(key, "a token string")
            }
        }
        return settings
    }

    // MARK: - Files

    static func readFile(_ url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            throw TokenizerError(kind: .unreadableFile, path: url.path,
                                 reason: "cannot read it (\(error.localizedDescription))",
                                 fix: "Check its permissions, or download it again")
        }
    }

    static func readJSONObject(_ url: URL) throws -> [String: Any] {
        let data = try readFile(url)
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw TokenizerError(kind: .malformedFile, path: url.path, reason: "it is not valid JSON (\(error))",
                                 fix: fixDownload)
        }
        guard let object = parsed as? [String: Any] else {
            throw TokenizerError(kind: .malformedFile, path: url.path, reason: "it is not a JSON object",
                                 fix: fixDownload)
        }
        return object
    }

    /// JSONSerialization gives numbers and booleans both as NSNumber (`1 as? Bool` succeeds); booleans are
    /// instances of a private subclass, the type of `NSNumber(value: true)`.
    private static let booleanNumberType = ObjectIdentifier(type(of: NSNumber(value: true) as Any))

    private static func isBoolNumber(_ value: Any) -> Bool {
        ObjectIdentifier(type(of: value)) == booleanNumberType
    }

    private static func isNonBoolNumber(_ value: Any) -> Bool {
        value is NSNumber && !isBoolNumber(value)
    }
}
