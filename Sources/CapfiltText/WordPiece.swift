// Stage 2 of BERT tokenization: greedy longest-match-first WordPiece over one word, as tokenizers' WordPiece model.
// Vocabulary lookups compare UTF-8 bytes: Swift String keys would merge canonically equivalent tokens.

/// UTF-8 bytes as a dictionary key: hashed in one call (an ArraySlice hashes byte by byte) and compared
/// byte for byte. Lookups wrap a slice of the word buffer, so they copy nothing.
struct ByteKey: Hashable, Sendable {
    let bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }

    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    static func == (lhs: ByteKey, rhs: ByteKey) -> Bool {
        guard lhs.bytes.count == rhs.bytes.count else { return false }
        return lhs.bytes.withUnsafeBytes { l in rhs.bytes.withUnsafeBytes { r in l.elementsEqual(r) } }
    }
}

/// A WordPiece model: the vocabulary and the greedy matcher.
struct WordPiece: Sendable {
    /// Every vocabulary token, by its UTF-8 bytes. A duplicated token keeps its last id, as Rust's HashMap insert.
    let tokenIDs: [ByteKey: Int]
    /// Tokens that start with the continuation prefix, keyed by the bytes after it ("##ing" under "ing").
    let continuationIDs: [ByteKey: Int]
    /// id -> token, only for the id each token kept (Rust builds it from the token -> id map).
    let idToToken: [String?]
    let unknownID: Int
    let maxInputCharsPerWord: Int

    static let continuationPrefix: [UInt8] = Array("##".utf8)

    /// - Parameter vocabulary: (token, id) pairs in file order.
    /// - Parameter unknownToken: must be in the vocabulary (else id 0 stands in for it).
    init(vocabulary: [(String, Int)], unknownToken: String, maxInputCharsPerWord: Int) {
        var tokenIDs: [ByteKey: Int] = [:]
        tokenIDs.reserveCapacity(vocabulary.count)
        for (token, id) in vocabulary { tokenIDs[ByteKey(ArraySlice(token.utf8))] = id }

        var continuationIDs: [ByteKey: Int] = [:]
        let prefix = Self.continuationPrefix
        var maxID = -1
        for (key, id) in tokenIDs {
            maxID = max(maxID, id)
            if key.bytes.count > prefix.count && key.bytes.starts(with: prefix) {
                continuationIDs[ByteKey(ArraySlice(Array(key.bytes.dropFirst(prefix.count))))] = id
            }
        }
        var idToToken = [String?](repeating: nil, count: maxID + 1)
        for (key, id) in tokenIDs { idToToken[id] = String(decoding: key.bytes, as: UTF8.self) }

        self.tokenIDs = tokenIDs
        self.continuationIDs = continuationIDs
        self.idToToken = idToToken
        self.unknownID = tokenIDs[ByteKey(ArraySlice(unknownToken.utf8))] ?? 0
        self.maxInputCharsPerWord = maxInputCharsPerWord
    }

    /// Appends the ids of `word`'s pieces to `ids`; a word that is too long or has an unmatched part becomes
    /// a single unknown id.
    func appendIDs(of word: ArraySlice<UInt8>, to ids: inout [Int]) {
        // Rust counts chars (scalars): count the bytes that start one.
        var scalarCount = 0
        for byte in word where byte & 0xC0 != 0x80 { scalarCount += 1 }
        if scalarCount > maxInputCharsPerWord {
            ids.append(unknownID)
            return
        }
        if let id = tokenIDs[ByteKey(word)] {
            ids.append(id)
            return
        }
        let firstNewID = ids.count
        var start = word.startIndex
        while start < word.endIndex {
            var end = word.endIndex
            var match: Int?
            while start < end {
                let piece = ByteKey(word[start..<end])
                match = start == word.startIndex ? tokenIDs[piece] : continuationIDs[piece]
                if match != nil { break }
                // Drop the last scalar: step back over UTF-8 continuation bytes.
                end -= 1
                while end > start && word[end] & 0xC0 == 0x80 { end -= 1 }
            }
            guard let id = match else {
                ids.removeSubrange(firstNewID...)
                ids.append(unknownID)
                return
            }
            ids.append(id)
            start = end
        }
    }
}
