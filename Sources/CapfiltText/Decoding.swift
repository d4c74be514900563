// ids -> text as transformers 5's BertTokenizer.decode: the Rust WordPiece decoder (cleanup on), then optionally
// transformers' clean_up_tokenization. All string edits are byte-literal, like Rust's str::replace.

extension BertTokenizer {
    /// The text of `ids`: exactly `tokenizer.decode(ids, skip_special_tokens=skipSpecialTokens)` for BLIP's tokenizer.
    ///
    /// Ids without a token (BLIP's [DEC]=30522 and [ENC]=30523 exist only as embedding rows) are dropped silently.
    /// Pieces join with a space unless they start with "##" (the first piece keeps its "##"). Each piece loses a
    /// space before `.`, `?`, `!` and `,` (the Rust decoder's cleanup, applied piece by piece).
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) -> String {
        var text: [UInt8] = []
        var piece: [UInt8] = []
        var first = true
        for id in ids {
            guard let token = token(of: id) else { continue }
            if skipSpecialTokens && specialTokens.contains(where: { $0.text.utf8.elementsEqual(token.utf8) }) {
                continue
            }
            piece.removeAll(keepingCapacity: true)
            if first {
                piece.append(contentsOf: token.utf8)
                first = false
            } else if token.utf8.starts(with: WordPiece.continuationPrefix) {
                piece.append(contentsOf: token.utf8.dropFirst(WordPiece.continuationPrefix.count))
            } else {
                piece.append(0x20)
                piece.append(contentsOf: token.utf8)
            }
            Self.applyReplacements(Self.decoderCleanup, to: &piece)
            text.append(contentsOf: piece)
        }
        if cleanUpTokenizationSpaces {
            Self.applyReplacements(Self.transformersCleanup, to: &text)
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// tokenizers' `decoders::wordpiece::cleanup`, in its order.
    static let decoderCleanup: [([UInt8], [UInt8])] = [
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
        (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ].map { (Array($0.0.utf8), Array($0.1.utf8)) }

    /// transformers' `PreTrainedTokenizerBase.clean_up_tokenization`, in its order.
    static let transformersCleanup: [([UInt8], [UInt8])] = [
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
        (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ].map { (Array($0.0.utf8), Array($0.1.utf8)) }

    /// Applies each (pattern, replacement) in turn, each replacing all non-overlapping matches left to right.
    static func applyReplacements(_ rules: [([UInt8], [UInt8])], to bytes: inout [UInt8]) {
        // Every pattern starts with a space: without one there is nothing to do (the common case for a piece
        // that continues a word).
        guard bytes.contains(0x20) else { return }
        for (pattern, replacement) in rules {
            replaceAll(pattern, with: replacement, in: &bytes)
        }
    }

    static func replaceAll(_ pattern: [UInt8], with replacement: [UInt8], in bytes: inout [UInt8]) {
        guard !pattern.isEmpty, bytes.count >= pattern.count else { return }
        var output: [UInt8] = []
        var index = 0
        var changed = false
        let last = bytes.count - pattern.count
        while index < bytes.count {
            if index <= last && bytes[index] == pattern[0] && bytes[index..<(index + pattern.count)].elementsEqual(pattern) {
                if !changed {
                    output.reserveCapacity(bytes.count)
                    output.append(contentsOf: bytes[..<index])
                    changed = true
                }
                output.append(contentsOf: replacement)
                index += pattern.count
            } else {
                if changed { output.append(bytes[index]) }
                index += 1
            }
        }
        if changed { bytes = output }
    }
}
