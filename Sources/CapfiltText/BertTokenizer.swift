// The BERT uncased WordPiece tokenizer as BLIP uses it: ids identical to transformers 5.24's BertTokenizer
// (tokenizers-backed) for the Hub's Salesforce/blip-image-captioning-base configuration.
// Pipeline: split out special tokens -> BasicTokenizer (normalize, pre-tokenize) -> WordPiece -> [CLS] … [SEP].

/// BERT WordPiece tokenizer, identical to transformers' `BertTokenizer` as BLIP loads it.
///
/// `encode` gives `tokenizer(text)["input_ids"]`, `decode` gives `tokenizer.decode(ids, skip_special_tokens:)`.
/// The value is immutable and `Sendable`: share one across threads.
public struct BertTokenizer: Sendable {
    let basic: BasicTokenizer
    let wordPiece: WordPiece
    /// The special tokens transformers registers as added tokens, matched verbatim in raw text before
    /// normalization (`normalized: false`), and skipped by `decode(skipSpecialTokens: true)`.
    let specialTokens: [SpecialToken]
    /// First bytes of the special tokens (just "[" for BERT): a quick filter for the matcher.
    let specialFirstBytes: [UInt8]
    /// Whether `decode` also runs transformers' `clean_up_tokenization` (tokenizer_config's
    /// `clean_up_tokenization_spaces`; absent in BLIP's config, so false in transformers 5).
    let cleanUpTokenizationSpaces: Bool

    struct SpecialToken: Sendable {
        var text: String
        var bytes: [UInt8]
        var id: Int
    }

    /// Names of the special tokens, as tokenizer_config.json's `cls_token`, `sep_token`, ... give them.
    struct SpecialTokenNames: Sendable {
        var cls = "[CLS]"
        var sep = "[SEP]"
        var pad = "[PAD]"
        var unk = "[UNK]"
        var mask = "[MASK]"

        var all: [String] { [cls, sep, pad, unk, mask] }
    }

    /// The longest sequence the model accepts (tokenizer_config's `model_max_length`; 512 for BLIP). Informative:
    /// `encode` truncates only when given `maxLength`, as transformers does.
    public let modelMaxLength: Int
    /// Id of `[CLS]`, which starts every encoded sequence (101 for bert-base-uncased).
    public let clsID: Int
    /// Id of `[SEP]`, which ends every encoded sequence (102).
    public let sepID: Int
    /// Id of `[PAD]` (0).
    public let padID: Int
    /// Id of `[UNK]`, for words WordPiece cannot cover (100).
    public let unkID: Int
    /// Id of `[MASK]` (103).
    public let maskID: Int

    /// A tokenizer from an explicit vocabulary, where a token's index is its id.
    ///
    /// The vocabulary must contain `[CLS]`, `[SEP]`, `[PAD]`, `[UNK]` and `[MASK]`; that is a precondition
    /// (use `load(folder:)` to get a thrown `TokenizerError` instead).
    /// - Parameters:
    ///   - doLowerCase: lowercase with Rust's full per-character mappings (`do_lower_case`).
    ///   - tokenizeChineseChars: make every CJK ideograph a word of its own (`tokenize_chinese_chars`).
    ///   - stripAccents: NFD and drop nonspacing marks; `nil` follows `doLowerCase` (`strip_accents`).
    ///   - maxInputCharsPerWord: longer words become `[UNK]`.
    ///   - cleanUpTokenizationSpaces: `decode` also applies transformers' `clean_up_tokenization`
    ///     (an addition to the agreed interface; BLIP's configuration leaves it off).
    public init(vocabulary: [String], doLowerCase: Bool = true, tokenizeChineseChars: Bool = true,
                stripAccents: Bool? = nil, maxInputCharsPerWord: Int = 100, cleanUpTokenizationSpaces: Bool = false) {
        let names = SpecialTokenNames()
        let pairs = vocabulary.enumerated().map { ($0.element, $0.offset) }
        let missing = Self.missingSpecialTokens(in: pairs, names: names)
        precondition(missing.isEmpty, "BertTokenizer vocabulary lacks \(missing); use BertTokenizer.load(folder:)")
        self.init(checkedVocabulary: pairs, names: names, doLowerCase: doLowerCase,
                  tokenizeChineseChars: tokenizeChineseChars, stripAccents: stripAccents,
                  maxInputCharsPerWord: maxInputCharsPerWord, modelMaxLength: 512,
                  cleanUpTokenizationSpaces: cleanUpTokenizationSpaces)
    }

    /// The designated initializer: every special token name must be in `checkedVocabulary`.
    init(checkedVocabulary: [(String, Int)], names: SpecialTokenNames, doLowerCase: Bool, tokenizeChineseChars: Bool,
         stripAccents: Bool?, maxInputCharsPerWord: Int, modelMaxLength: Int, cleanUpTokenizationSpaces: Bool) {
        let wordPiece = WordPiece(vocabulary: checkedVocabulary, unknownToken: names.unk,
                                  maxInputCharsPerWord: maxInputCharsPerWord)
        // Byte-exact lookups, as Rust's; a missing name cannot happen after the check, 0 only keeps this total.
        func id(_ name: String) -> Int { wordPiece.tokenIDs[ByteKey(ArraySlice(name.utf8))] ?? 0 }
        self.basic = BasicTokenizer(lowercase: doLowerCase, stripAccents: stripAccents,
                                    splitChineseCharacters: tokenizeChineseChars)
        self.wordPiece = wordPiece
        self.clsID = id(names.cls)
        self.sepID = id(names.sep)
        self.padID = id(names.pad)
        self.unkID = wordPiece.unknownID
        self.maskID = id(names.mask)
        self.modelMaxLength = modelMaxLength
        self.cleanUpTokenizationSpaces = cleanUpTokenizationSpaces
        var specials: [SpecialToken] = []
        for name in names.all where !specials.contains(where: { $0.bytes.elementsEqual(name.utf8) }) {
            specials.append(SpecialToken(text: name, bytes: Array(name.utf8), id: id(name)))
        }
        self.specialTokens = specials
        var firstBytes: [UInt8] = []
        for special in specials {
            if let first = special.bytes.first, !firstBytes.contains(first) { firstBytes.append(first) }
        }
        self.specialFirstBytes = firstBytes
    }

    /// The special token names absent from a vocabulary (compared byte for byte).
    static func missingSpecialTokens(in vocabulary: [(String, Int)], names: SpecialTokenNames) -> [String] {
        let present = Set(vocabulary.lazy.map { Array($0.0.utf8) })
        return names.all.filter { !present.contains(Array($0.utf8)) }
    }

    /// Number of distinct tokens in the vocabulary (30522 for BLIP; its [DEC]/[ENC] are not in it).
    public var vocabularySize: Int { wordPiece.tokenIDs.count }

    /// The id of `token` (compared byte for byte), or nil when it is not in the vocabulary.
    public func id(of token: String) -> Int? {
        wordPiece.tokenIDs[ByteKey(ArraySlice(token.utf8))]
    }

    /// The token with `id`, or nil when no token has it (BLIP's 30522/30523 included).
    public func token(of id: Int) -> String? {
        guard id >= 0 && id < wordPiece.idToToken.count else { return nil }
        return wordPiece.idToToken[id]
    }

    /// The word pieces of `text`, without [CLS]/[SEP]: `tokenizer.tokenize(text)`. Special tokens written in the
    /// text ("[MASK]") stay whole.
    public func tokenize(_ text: String) -> [String] {
        var ids: [Int] = []
        appendIDs(of: text, to: &ids)
        return ids.map { token(of: $0) ?? "" }
    }

    /// The input ids of `text`: `tokenizer(text)["input_ids"]`, or with `maxLength`,
    /// `tokenizer(text, truncation=True, max_length=maxLength)["input_ids"]`.
    ///
    /// Truncation keeps the first pieces and leaves room for [CLS]/[SEP]. As in transformers, a `maxLength` below
    /// the 2 special tokens truncates nothing when `addSpecialTokens` is true; without special tokens, 0 gives [].
    /// A negative `maxLength` counts as 0.
    public func encode(_ text: String, addSpecialTokens: Bool = true, maxLength: Int? = nil) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3 + 2)
        if addSpecialTokens { ids.append(clsID) }
        appendIDs(of: text, to: &ids)
        if let maxLength {
            let limit = max(0, maxLength)
            if addSpecialTokens {
                // Rust subtracts the 2 added tokens from max_length in usize; below 2 it wraps to "no limit".
                if limit >= 2 && ids.count > limit - 1 { ids.removeSubrange((limit - 1)...) }
            } else if ids.count > limit {
                ids.removeSubrange(limit...)
            }
        }
        if addSpecialTokens { ids.append(sepID) }
        return ids
    }

    /// Appends the ids of `text`'s pieces, special tokens written in the text included.
    func appendIDs(of text: String, to ids: inout [Int]) {
        var buffers = BasicTokenizer.Buffers()
        let utf8 = text.utf8
        // Scalar view slices, not String slices: those round to Character boundaries, and a special token can be
        // followed by a combining mark ("[CLS]\u{301}").
        let scalars = text.unicodeScalars
        var segmentStart = utf8.startIndex
        var index = utf8.startIndex
        // Leftmost-longest match of the special tokens on the raw bytes (tokenizers' AddedVocabulary).
        while index < utf8.endIndex {
            if !specialFirstBytes.contains(utf8[index]) {
                utf8.formIndex(after: &index)
                continue
            }
            var matched: SpecialToken?
            for special in specialTokens where special.bytes.first == utf8[index] {
                if utf8[index...].starts(with: special.bytes), special.bytes.count > (matched?.bytes.count ?? 0) {
                    matched = special
                }
            }
            guard let special = matched else {
                utf8.formIndex(after: &index)
                continue
            }
            appendWordIDs(of: scalars[segmentStart..<index], buffers: &buffers, to: &ids)
            ids.append(special.id)
            index = utf8.index(index, offsetBy: special.bytes.count)
            segmentStart = index
        }
        appendWordIDs(of: scalars[segmentStart...], buffers: &buffers, to: &ids)
    }

    private func appendWordIDs(of segment: Substring.UnicodeScalarView, buffers: inout BasicTokenizer.Buffers, to ids: inout [Int]) {
        if segment.isEmpty { return }
        basic.forEachWord(in: segment, buffers: &buffers) { word in
            wordPiece.appendIDs(of: word, to: &ids)
        }
    }
}
