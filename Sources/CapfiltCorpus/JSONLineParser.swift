// A byte-level parser for one JSONL line. Foundation's JSONSerialization turns booleans into numbers on Linux,
// rewrites number text and rejects a whole line for one bad byte; this keeps each value as written, decodes
// strings without repairing them (so an invalid caption is reported as such), and accepts what Python's json
// module writes (NaN, Infinity), since most JSONL lists come from Python.

/// One top-level value of a list record, as the list has it.
enum ListValue: Equatable {
    /// A string's bytes after unescaping (not yet checked for UTF-8); `replacedSurrogates` counts lone UTF-16
    /// surrogates in `\u` escapes, which cannot be represented and were replaced by U+FFFD.
    case string([UInt8], replacedSurrogates: Int)
    /// A number, `true` or `false`, or an object or array: its JSON text as written; `type` names it for messages.
    case other(text: String, type: String)
    /// JSON `null`.
    case null
}

/// Why a line is not a JSON object; `column` is the 1-based byte column.
struct JSONLineError: Error, Equatable {
    let column: Int
    let reason: String

    var description: String { "\(reason) at column \(column)" }
}

/// Parses one line holding one JSON object.
struct JSONLineParser {
    /// Nesting deeper than this is refused: real lists nest a few levels, and recursion must stay bounded.
    static let maxDepth = 256

    private let bytes: [UInt8]
    private var index = 0

    private init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The object's members in order (a repeated key keeps its last value, as Python's json does).
    static func parseObject(_ line: [UInt8]) throws(JSONLineError) -> [(key: String, value: ListValue)] {
        var parser = JSONLineParser(line)
        return try parser.object()
    }

    // MARK: Grammar

    private mutating func object() throws(JSONLineError) -> [(key: String, value: ListValue)] {
        skipWhitespace()
        guard let first = peek() else { throw fail("the line is empty") }
        guard first == UInt8(ascii: "{") else {
            throw fail("expected a JSON object ('{'), found \(Self.typeName(startingWith: first))")
        }
        index += 1
        var members: [(key: String, value: ListValue)] = []
        var positions: [String: Int] = [:]
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
        } else {
            while true {
                skipWhitespace()
                guard peek() == UInt8(ascii: "\"") else { throw fail("expected a quoted key") }
                let keyColumn = index + 1
                let (keyBytes, keySurrogates) = try string()
                guard keySurrogates == 0, let key = String(validating: keyBytes, as: UTF8.self) else {
                    throw JSONLineError(column: keyColumn, reason: "a key is not valid UTF-8")
                }
                skipWhitespace()
                guard peek() == UInt8(ascii: ":") else { throw fail("expected ':' after key \"\(key)\"") }
                index += 1
                skipWhitespace()
                let value = try value()
                if let existing = positions[key] {
                    members[existing].value = value
                } else {
                    positions[key] = members.count
                    members.append((key, value))
                }
                skipWhitespace()
                guard let next = peek() else { throw fail("the object is not closed ('}' missing)") }
                index += 1
                if next == UInt8(ascii: "}") { break }
                guard next == UInt8(ascii: ",") else {
                    index -= 1
                    throw fail("expected ',' or '}' after the value of \"\(key)\"")
                }
            }
        }
        skipWhitespace()
        if index < bytes.count { throw fail("unexpected text after the object") }
        return members
    }

    private mutating func value() throws(JSONLineError) -> ListValue {
        guard let first = peek() else { throw fail("a value is missing") }
        let start = index
        switch first {
        case UInt8(ascii: "\""):
            let (value, surrogates) = try string()
            return .string(value, replacedSurrogates: surrogates)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            try skipNested(depth: 1)
            return .other(text: text(from: start), type: first == UInt8(ascii: "{") ? "an object" : "an array")
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            try literal(first == UInt8(ascii: "t") ? "true" : "false")
            return .other(text: text(from: start), type: "a boolean")
        default:
            try number()
            return .other(text: text(from: start), type: "a number")
        }
    }

    /// Skips an object or array, checking its syntax.
    private mutating func skipNested(depth: Int) throws(JSONLineError) {
        guard depth <= Self.maxDepth else { throw fail("values nest deeper than \(Self.maxDepth) levels") }
        guard let open = peek() else { throw fail("a value is missing") }
        let close = open == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
        index += 1
        skipWhitespace()
        if peek() == close {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            if open == UInt8(ascii: "{") {
                guard peek() == UInt8(ascii: "\"") else { throw fail("expected a quoted key") }
                _ = try string()
                skipWhitespace()
                guard peek() == UInt8(ascii: ":") else { throw fail("expected ':' after a key") }
                index += 1
                skipWhitespace()
            }
            guard let first = peek() else { throw fail("a value is missing") }
            switch first {
            case UInt8(ascii: "{"), UInt8(ascii: "["): try skipNested(depth: depth + 1)
            case UInt8(ascii: "\""): _ = try string()
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            default: try number()
            }
            skipWhitespace()
            guard let next = peek() else {
                throw fail("the \(open == UInt8(ascii: "{") ? "object" : "array") is not closed")
            }
            index += 1
            if next == close { return }
            guard next == UInt8(ascii: ",") else {
                index -= 1
                throw fail("expected ',' or '\(Character(Unicode.Scalar(close)))'")
            }
        }
    }

    /// A string starting at the opening quote; returns its unescaped bytes and the lone surrogates replaced.
    private mutating func string() throws(JSONLineError) -> ([UInt8], Int) {
        index += 1
        var output: [UInt8] = []
        var replaced = 0
        while true {
            guard index < bytes.count else { throw fail("a string is not closed") }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return (output, replaced)
            }
            if byte < 0x20 {
                throw fail("a control character (0x\(String(byte, radix: 16))) inside a string must be escaped")
            }
            if byte != UInt8(ascii: "\\") {
                output.append(byte)
                index += 1
                continue
            }
            index += 1
            guard index < bytes.count else { throw fail("a string is not closed") }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(escape)
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0c)
            case UInt8(ascii: "n"): output.append(0x0a)
            case UInt8(ascii: "r"): output.append(0x0d)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xd800..<0xdc00).contains(code), index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                   bytes[index + 1] == UInt8(ascii: "u") {
                    let save = index
                    index += 2
                    let low = try hex4()
                    if (0xdc00..<0xe000).contains(low) {
                        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00)
                    } else {
                        index = save
                    }
                }
                if let scalar = Unicode.Scalar(code) {
                    output.append(contentsOf: Array(String(Character(scalar)).utf8))
                } else {
                    replaced += 1
                    output.append(contentsOf: [0xef, 0xbf, 0xbd])
                }
            default:
                index -= 2  // point at the backslash, as Python's json does
                throw fail("'\\\(Character(Unicode.Scalar(escape)))' is not a JSON escape")
            }
        }
    }

    private mutating func hex4() throws(JSONLineError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail("'\\u' needs four hex digits") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw fail("'\\u' needs four hex digits")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    /// A JSON number, or Python's NaN, Infinity and -Infinity.
    private mutating func number() throws(JSONLineError) {
        let start = index
        if peek() == UInt8(ascii: "-") { index += 1 }
        if peek() == UInt8(ascii: "I") {
            try literal("Infinity")
            return
        }
        if index == start, peek() == UInt8(ascii: "N") {
            try literal("NaN")
            return
        }
        guard let first = peek(), Self.isDigit(first) else {
            index = start
            let found = peek().map { Self.typeName(startingWith: $0) } ?? "the end of the line"
            throw fail("expected a value, found \(found)")
        }
        index += 1
        if first != UInt8(ascii: "0") { skipDigits() }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard let digit = peek(), Self.isDigit(digit) else { throw fail("a digit must follow '.'") }
            skipDigits()
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            guard let digit = peek(), Self.isDigit(digit) else { throw fail("an exponent needs digits") }
            skipDigits()
        }
    }

    // MARK: Helpers

    private func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while let byte = peek(), byte == 0x20 || byte == 0x09 || byte == 0x0a || byte == 0x0d { index += 1 }
    }

    private mutating func skipDigits() {
        while let byte = peek(), Self.isDigit(byte) { index += 1 }
    }

    private mutating func literal(_ word: String) throws(JSONLineError) {
        for expected in word.utf8 {
            guard peek() == expected else {
                let found = peek().map { Self.typeName(startingWith: $0) } ?? "the end of the line"
                throw fail("expected a value, found \(found)")
            }
            index += 1
        }
    }

    private func text(from start: Int) -> String {
        String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private func fail(_ reason: String) -> JSONLineError {
        JSONLineError(column: index + 1, reason: reason)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// How to name what starts with `byte` in a message.
    private static func typeName(startingWith byte: UInt8) -> String {
        switch byte {
        case UInt8(ascii: "["): return "an array"
        case UInt8(ascii: "\""): return "a string"
        case UInt8(ascii: "{"): return "an object"
        case 0x20...0x7e: return "'\(Character(Unicode.Scalar(byte)))'"
        default: return "byte 0x\(String(byte, radix: 16))"
        }
    }
}
