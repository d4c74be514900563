// Known ids from BLIP-SPEC §3, the public API's small promises, and folder-loading errors.
import Foundation
import XCTest
@testable import CapfiltText

final class TokenizerTests: XCTestCase {
    func testKnownIDs() throws {
        let tokenizer = try Fixtures.tokenizer.get()
        XCTAssertEqual(tokenizer.encode("a picture of"), [101, 1037, 3861, 1997, 102])
        XCTAssertEqual(tokenizer.encode("Café. dogs"), [101, 7668, 1012, 6077, 102])
        XCTAssertEqual(tokenizer.tokenize("Café. dogs"), ["cafe", ".", "dogs"])
        let words = ["a": 1037, "picture": 3861, "of": 1997, "woman": 2450, "sitting": 3564, "on": 2006, "the": 1996,
                     "beach": 3509, "with": 2007, "her": 2014, "dog": 3899, "and": 1998]
        for (word, id) in words {
            XCTAssertEqual(tokenizer.id(of: word), id, word)
            XCTAssertEqual(tokenizer.token(of: id), word)
        }
        XCTAssertEqual([tokenizer.clsID, tokenizer.sepID, tokenizer.padID, tokenizer.unkID, tokenizer.maskID],
                       [101, 102, 0, 100, 103])
        XCTAssertEqual(tokenizer.vocabularySize, 30522)
        XCTAssertEqual(tokenizer.modelMaxLength, 512)
        XCTAssertNil(tokenizer.token(of: 30522))
        XCTAssertNil(tokenizer.token(of: 30523))
        XCTAssertNil(tokenizer.token(of: -1))
        XCTAssertNil(tokenizer.id(of: "[DEC]"))
        XCTAssertEqual(tokenizer.id(of: "##s"), 2015)
    }

    func testEdgeCases() throws {
        let tokenizer = try Fixtures.tokenizer.get()
        XCTAssertEqual(tokenizer.encode(""), [101, 102])
        XCTAssertEqual(tokenizer.encode("", addSpecialTokens: false), [])
        XCTAssertEqual(tokenizer.encode(" \u{200B}\t\n"), [101, 102])
        XCTAssertEqual(tokenizer.encode(String(repeating: "a", count: 101)), [101, 100, 102])
        XCTAssertEqual(tokenizer.encode("a[MASK]b"), [101, 1037, 103, 1038, 102])
        XCTAssertEqual(tokenizer.tokenize("a [mask]"), ["a", "[", "mask", "]"])
        XCTAssertEqual(tokenizer.encode("a picture of a dog", maxLength: 4), [101, 1037, 3861, 102])
        XCTAssertEqual(tokenizer.encode("a picture of a dog", maxLength: 1), tokenizer.encode("a picture of a dog"))
        XCTAssertEqual(tokenizer.encode("a picture of a dog", addSpecialTokens: false, maxLength: -3), [])
    }

    /// Words are looked up byte for byte: a Hangul syllable is not its conjoining jamo, although Swift's String ==
    /// calls them equal.
    func testLookupIsByteExact() throws {
        let syllable = "\u{D55C}", jamo = "\u{1112}\u{1161}\u{11AB}"
        XCTAssertEqual(syllable, jamo)
        let tokenizer = BertTokenizer(vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", syllable],
                                      doLowerCase: false, stripAccents: false)
        XCTAssertEqual(tokenizer.id(of: syllable), 5)
        XCTAssertNil(tokenizer.id(of: jamo))
        XCTAssertEqual(tokenizer.encode(syllable), [2, 5, 3])
        XCTAssertEqual(tokenizer.encode(jamo), [2, 1, 3])
    }

    func testSharedAcrossThreads() async throws {
        let tokenizer = try Fixtures.tokenizer.get()
        let expected = tokenizer.encode("a woman sitting on the beach with her dog")
        try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<8 { group.addTask { tokenizer.encode("a woman sitting on the beach with her dog") } }
            for try await ids in group { XCTAssertEqual(ids, expected) }
        }
    }

    // MARK: - Loading errors

    private func expectError(_ kind: TokenizerError.Kind, mentioning file: String, in folder: URL,
                             line: UInt = #line) {
        do {
            _ = try BertTokenizer.load(folder: folder)
            XCTFail("loaded a bad folder", line: line)
        } catch let error as TokenizerError {
            XCTAssertEqual(error.kind, kind, "\(error)", line: line)
            XCTAssertTrue(error.description.contains(file), "\(error)", line: line)
            XCTAssertFalse(error.fix.isEmpty, line: line)
        } catch {
            XCTFail("untyped error \(error)", line: line)
        }
    }

    private func write(_ text: String, to name: String, in folder: URL) throws {
        try Data(text.utf8).write(to: folder.appendingPathComponent(name))
    }

    func testMissingFolder() {
        let folder = URL(fileURLWithPath: "/nonexistent/capfilt-blip")
        expectError(.missingFolder, mentioning: "/nonexistent/capfilt-blip", in: folder)
    }

    func testFolderWithoutVocabulary() throws {
        let folder = try Fixtures.folderWith(["tokenizer_config.json"])
        defer { try? FileManager.default.removeItem(at: folder) }
        expectError(.missingVocabulary, mentioning: folder.lastPathComponent, in: folder)
    }

    func testMalformedConfig() throws {
        let folder = try Fixtures.folderWith(["vocab.txt"])
        defer { try? FileManager.default.removeItem(at: folder) }
        try write("{\"do_lower_case\": tru", to: "tokenizer_config.json", in: folder)
        expectError(.malformedFile, mentioning: "tokenizer_config.json", in: folder)
        try write("[1, 2]", to: "tokenizer_config.json", in: folder)
        expectError(.malformedFile, mentioning: "tokenizer_config.json", in: folder)
        try write("{\"do_lower_case\": \"yes\"}", to: "tokenizer_config.json", in: folder)
        expectError(.malformedFile, mentioning: "do_lower_case", in: folder)
        try write("{\"do_lower_case\": 1}", to: "tokenizer_config.json", in: folder)
        expectError(.malformedFile, mentioning: "do_lower_case", in: folder)
        try write("{\"model_max_length\": true}", to: "tokenizer_config.json", in: folder)
        expectError(.malformedFile, mentioning: "model_max_length", in: folder)
        try write("{\"cls_token\": 5}", to: "tokenizer_config.json", in: folder)
        expectError(.malformedFile, mentioning: "cls_token", in: folder)
    }

    func testMalformedTokenizerJSON() throws {
        let folder = try Fixtures.folderWith([])
        defer { try? FileManager.default.removeItem(at: folder) }
        try write("not json", to: "tokenizer.json", in: folder)
        expectError(.malformedFile, mentioning: "tokenizer.json", in: folder)
        try write("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", to: "tokenizer.json", in: folder)
        expectError(.malformedFile, mentioning: "tokenizer.json", in: folder)
        try write("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": \"x\"}}}", to: "tokenizer.json", in: folder)
        expectError(.malformedFile, mentioning: "tokenizer.json", in: folder)
        try write("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", to: "tokenizer.json", in: folder)
        expectError(.unsupportedModel, mentioning: "tokenizer.json", in: folder)
        try write("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0, \"[UNK]\": 1}}}", to: "tokenizer.json", in: folder)
        expectError(.missingSpecialToken, mentioning: "[CLS]", in: folder)
    }

    func testBadVocabularyText() throws {
        let folder = try Fixtures.folderWith([])
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data([0x61, 0x0A, 0xFF, 0xFE, 0x0A]).write(to: folder.appendingPathComponent("vocab.txt"))
        expectError(.unreadableFile, mentioning: "vocab.txt", in: folder)
        try write("", to: "vocab.txt", in: folder)
        expectError(.malformedFile, mentioning: "vocab.txt", in: folder)
        try write("[PAD]\n[UNK]\nhello\n", to: "vocab.txt", in: folder)
        expectError(.missingSpecialToken, mentioning: "[CLS], [SEP], [MASK]", in: folder)
    }

    /// vocab.txt lines lose CR and trailing whitespace, as Rust's reader does; the config can rename specials.
    func testSmallVocabularyAndConfig() throws {
        let folder = try Fixtures.folderWith([])
        defer { try? FileManager.default.removeItem(at: folder) }
        try write("<pad>\r\n<unk>\n<s>  \n</s>\n<mask>\nhello\n##s\nworld", to: "vocab.txt", in: folder)
        try write("""
            {"cls_token": "<s>", "sep_token": {"content": "</s>", "lstrip": false}, "pad_token": "<pad>",
             "unk_token": "<unk>", "mask_token": "<mask>", "model_max_length": 1000000000000000019884624838656,
             "do_lower_case": false, "strip_accents": null}
            """, to: "tokenizer_config.json", in: folder)
        let tokenizer = try BertTokenizer.load(folder: folder)
        XCTAssertEqual([tokenizer.padID, tokenizer.unkID, tokenizer.clsID, tokenizer.sepID, tokenizer.maskID],
                       [0, 1, 2, 3, 4])
        XCTAssertEqual(tokenizer.modelMaxLength, Int.max)
        XCTAssertEqual(tokenizer.encode("hellos world<mask> Hello"), [2, 5, 6, 7, 4, 1, 3])
        XCTAssertEqual(tokenizer.decode([2, 5, 6, 7, 4, 3]), "hellos world")
        XCTAssertEqual(tokenizer.decode([2, 5, 6, 7, 4, 3], skipSpecialTokens: false), "<s> hellos world <mask> </s>")
    }
}
