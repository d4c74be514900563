// Stage 1 of BERT tokenization: the Rust BertNormalizer (clean text, isolate CJK ideographs, strip accents,
// lowercase) fused with the BertPreTokenizer (split on whitespace, isolate punctuation). Emits words as UTF-8.

/// Normalizes text and splits it into words, exactly as tokenizers' `BertNormalizer` + `BertPreTokenizer`.
///
/// The Rust normalizer runs clean → CJK spacing → NFD + drop Mn → lowercase over the whole string, then the
/// pre-tokenizer splits. Whitespace and CJK ideographs are NFD starters, so running NFD chunk by chunk between them
/// gives the same scalars as running it over the whole string.
struct BasicTokenizer: Sendable {
    var lowercase: Bool
    /// Resolved: `strip_accents: null` means "follow lowercase", as the Rust binding does.
    var stripAccents: Bool
    var splitChineseCharacters: Bool

    init(lowercase: Bool, stripAccents: Bool?, splitChineseCharacters: Bool) {
        self.lowercase = lowercase
        self.stripAccents = stripAccents ?? lowercase
        self.splitChineseCharacters = splitChineseCharacters
    }

    /// Reused buffers, so a text costs no allocation per word.
    struct Buffers {
        var chunk: [Unicode.Scalar] = []
        var decomposed: [Unicode.Scalar] = []
        var normalized: [Unicode.Scalar] = []
        var word: [UInt8] = []

        init() {
            chunk.reserveCapacity(64)
            decomposed.reserveCapacity(64)
            normalized.reserveCapacity(64)
            word.reserveCapacity(64)
        }
    }

    /// Calls `body` with the UTF-8 bytes of each word of `text`, in order.
    func forEachWord(in text: Substring.UnicodeScalarView, buffers: inout Buffers,
                     _ body: (ArraySlice<UInt8>) -> Void) {
        for scalar in text {
            let v = scalar.value
            if BertCharacters.isDropped(v) { continue }
            if BertCharacters.isCleanTextWhitespace(v) {
                emitChunk(&buffers, body)
            } else if splitChineseCharacters && BertCharacters.isChineseIdeograph(v) {
                emitChunk(&buffers, body)
                buffers.chunk.append(scalar)
                emitChunk(&buffers, body)
            } else {
                buffers.chunk.append(scalar)
            }
        }
        emitChunk(&buffers, body)
    }

    /// Normalizes the pending whitespace-free chunk and emits its words.
    private func emitChunk(_ buffers: inout Buffers, _ body: (ArraySlice<UInt8>) -> Void) {
        if buffers.chunk.isEmpty { return }
        buffers.normalized.removeAll(keepingCapacity: true)
        normalize(buffers.chunk[...], into: &buffers.normalized, scratch: &buffers.decomposed)
        buffers.chunk.removeAll(keepingCapacity: true)
        buffers.word.removeAll(keepingCapacity: true)
        for scalar in buffers.normalized { split(scalar, &buffers.word, body) }
        flushWord(&buffers.word, body)
    }

    /// The normalizer's per-chunk steps after cleaning: NFD and drop Mn (when stripping accents), then lowercase.
    func normalize(_ chunk: ArraySlice<Unicode.Scalar>, into output: inout [Unicode.Scalar],
                   scratch: inout [Unicode.Scalar]) {
        var source = chunk
        if stripAccents {
            scratch.removeAll(keepingCapacity: true)
            BertCharacters.appendNFD(of: chunk, to: &scratch)
            scratch.removeAll { BertCharacters.isNonspacingMark($0.value) }
            source = scratch[...]
        }
        guard lowercase else {
            output.append(contentsOf: source)
            return
        }
        for scalar in source {
            let v = scalar.value
            if v < 0x80 {
                output.append(v >= 0x41 && v <= 0x5A ? Unicode.Scalar(UInt8(v + 0x20)) : scalar)
            } else {
                BertCharacters.appendLowercase(of: scalar, to: &output)
            }
        }
    }

    /// The pre-tokenizer's rules for one normalized scalar.
    @inline(__always)
    private func split(_ scalar: Unicode.Scalar, _ word: inout [UInt8], _ body: (ArraySlice<UInt8>) -> Void) {
        let v = scalar.value
        if BertCharacters.isRustWhitespace(v) {
            flushWord(&word, body)
        } else if BertCharacters.isPunctuation(v) {
            flushWord(&word, body)
            BertCharacters.appendUTF8(of: scalar, to: &word)
            flushWord(&word, body)
        } else {
            BertCharacters.appendUTF8(of: scalar, to: &word)
        }
    }

    @inline(__always)
    private func flushWord(_ word: inout [UInt8], _ body: (ArraySlice<UInt8>) -> Void) {
        if word.isEmpty { return }
        body(word[...])
        word.removeAll(keepingCapacity: true)
    }
}
