// Ids and pieces against transformers 5.24's BertTokenizer, for a folder loaded via vocab.txt and via tokenizer.json.
import Foundation
import XCTest
@testable import CapfiltText

final class EncodeGoldenTests: XCTestCase {
    /// Every golden string gives the same input_ids and pieces; reports the identical count.
    private func checkGoldens(_ tokenizer: BertTokenizer, label: String) throws {
        let cases = try Fixtures.load([Fixtures.EncodeCase].self, "encode.json")
        XCTAssertGreaterThan(cases.count, 500)
        var identical = 0
        for c in cases {
            let ids = tokenizer.encode(c.text)
            let tokens = tokenizer.tokenize(c.text)
            if ids == c.ids && tokens == c.tokens {
                identical += 1
            } else {
                XCTFail("\(label): \(Fixtures.describe(c.text))\n  ids \(ids)\n  want \(c.ids)\n  tokens \(tokens)\n  want \(c.tokens)")
            }
            XCTAssertEqual(tokenizer.encode(c.text, addSpecialTokens: false), Array(c.ids.dropFirst().dropLast()))
        }
        print("[CapfiltText] encode via \(label): \(identical)/\(cases.count) strings identical")
        XCTAssertEqual(identical, cases.count)
    }

    func testGoldensViaVocabText() throws {
        let tokenizer = try Fixtures.tokenizer.get()
        try checkGoldens(tokenizer, label: "vocab.txt")
    }

    func testGoldensViaTokenizerJSON() throws {
        let folder = try Fixtures.folderWith(["tokenizer.json", "tokenizer_config.json"])
        defer { try? FileManager.default.removeItem(at: folder) }
        let tokenizer = try BertTokenizer.load(folder: folder)
        XCTAssertEqual(tokenizer.vocabularySize, 30522)
        try checkGoldens(tokenizer, label: "tokenizer.json")
    }

    /// Settings only in tokenizer.json's BertNormalizer (no tokenizer_config.json) give the same tokenizer.
    func testGoldensViaTokenizerJSONWithoutConfig() throws {
        let folder = try Fixtures.folderWith(["tokenizer.json"])
        defer { try? FileManager.default.removeItem(at: folder) }
        try checkGoldens(try BertTokenizer.load(folder: folder), label: "tokenizer.json without config")
    }

    func testTruncation() throws {
        let tokenizer = try Fixtures.tokenizer.get()
        let cases = try Fixtures.load([Fixtures.TruncationCase].self, "truncation.json")
        var identical = 0
        for c in cases {
            let ids = tokenizer.encode(c.text, addSpecialTokens: c.add_special_tokens, maxLength: c.max_length)
            if ids == c.ids {
                identical += 1
            } else {
                XCTFail("\(Fixtures.describe(c.text)) max_length=\(c.max_length) special=\(c.add_special_tokens): \(ids) want \(c.ids)")
            }
        }
        print("[CapfiltText] truncation: \(identical)/\(cases.count) cases identical")
        XCTAssertEqual(identical, cases.count)
    }

    /// Other normalizer settings: no lowercase, no accent stripping, accent stripping without lowercase, no CJK split.
    func testSettingVariants() throws {
        let vocabulary = try Fixtures.tokenizer.get()
        let words = (0..<vocabulary.vocabularySize).map { vocabulary.token(of: $0) ?? "" }
        let cases = try Fixtures.load([Fixtures.VariantCase].self, "variants.json")
        var tokenizers: [Fixtures.VariantCase.Settings: BertTokenizer] = [:]
        var identical = 0
        for c in cases {
            let s = c.settings
            let tokenizer = tokenizers[s] ?? BertTokenizer(
                vocabulary: words, doLowerCase: s.do_lower_case ?? true,
                tokenizeChineseChars: s.tokenize_chinese_chars ?? true, stripAccents: s.strip_accents)
            tokenizers[s] = tokenizer
            let ids = tokenizer.encode(c.text)
            if ids == c.ids {
                identical += 1
            } else {
                XCTFail("\(s) \(Fixtures.describe(c.text)): \(ids) want \(c.ids)")
            }
        }
        print("[CapfiltText] setting variants: \(identical)/\(cases.count) strings identical")
        XCTAssertEqual(identical, cases.count)
    }
}
