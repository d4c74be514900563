// decode against transformers 5.24's BertTokenizer.decode, with and without skip_special_tokens.
import XCTest
@testable import CapfiltText

final class DecodeGoldenTests: XCTestCase {
    func testGoldens() throws {
        let tokenizer = try Fixtures.tokenizer.get()
        let cases = try Fixtures.load([Fixtures.DecodeCase].self, "decode.json")
        var identical = 0
        for c in cases {
            let text = tokenizer.decode(c.ids, skipSpecialTokens: c.skip_special_tokens)
            // Compare scalars: String == would accept canonically equivalent but different text.
            if Array(text.unicodeScalars) == Array(c.text.unicodeScalars) {
                identical += 1
            } else {
                XCTFail("\(c.ids) skip=\(c.skip_special_tokens): \(Fixtures.describe(text)) want \(Fixtures.describe(c.text))")
            }
        }
        print("[CapfiltText] decode: \(identical)/\(cases.count) cases identical")
        XCTAssertEqual(identical, cases.count)
    }

    /// Spec §3: decoding a generated caption drops [DEC]=30522 silently; [SEP] shows only without skipping.
    func testBLIPCaption() throws {
        let tokenizer = try Fixtures.tokenizer.get()
        let ids = [30522, 1037, 3861, 1997, 1037, 2450, 3564, 2006, 1996, 3509, 2007, 2014, 3899, 102]
        XCTAssertEqual(tokenizer.decode(ids), "a picture of a woman sitting on the beach with her dog")
        XCTAssertEqual(tokenizer.decode(ids, skipSpecialTokens: false),
                       "a picture of a woman sitting on the beach with her dog [SEP]")
        XCTAssertEqual(tokenizer.decode([30523, 30522, -1, 1 << 40]), "")
        XCTAssertEqual(tokenizer.decode([7668, 1012, 6077]), "cafe. dogs")
    }

    /// transformers' clean_up_tokenization, off in BLIP's config, joins contractions when a config turns it on.
    func testCleanUpTokenizationSpaces() throws {
        let tokenizer = try Fixtures.tokenizer.get()
        let words = (0..<tokenizer.vocabularySize).map { tokenizer.token(of: $0) ?? "" }
        let cleaning = BertTokenizer(vocabulary: words, cleanUpTokenizationSpaces: true)
        let ids = tokenizer.encode("don ' t , it 's", addSpecialTokens: false)
        XCTAssertEqual(tokenizer.decode(ids), "don ' t, it ' s")
        XCTAssertEqual(cleaning.decode(ids), "don't, it's")
    }
}
