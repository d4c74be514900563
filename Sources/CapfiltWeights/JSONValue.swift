// A small strict JSON reader for safetensors headers and shard indexes. Foundation's parser would do, but
// this one keeps integers exact (offsets beyond 2^53), reports byte positions, rejects duplicate keys, and
// caps nesting so a hostile header cannot exhaust the stack.

/// A parsed JSON value. Objects keep their key order.
indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// The number's source text, so integers stay exact; see `intValue`.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.number(a), .number(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// The value as a non-negative or negative integer, if it is an integer literal that fits in `Int`.
    var intValue: Int? {
        guard case let .number(text) = self else { return nil }
        return Int(text)
    }

    /// The value as a string, if it is one.
    var stringValue: String? {
        guard case let .string(s) = self else { return nil }
        return s
    }

    /// The members, if it is an object.
    var objectMembers: [(key: String, value: JSONValue)]? {
        guard case let .object(members) = self else { return nil }
        return members
    }

    /// The elements, if it is an array.
    var arrayElements: [JSONValue]? {
        guard case let .array(elements) = self else { return nil }
        return elements
    }

    /// Member `key` of an object.
    subscript(key: String) -> JSONValue? {
        objectMembers?.first { $0.key == key }?.value
    }

    /// A short name of the value's kind, for messages.
    var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// Why JSON text could not be parsed: a message and the byte offset.
struct JSONParseError: Error {
    let message: String
    let offset: Int
}

/// Recursive-descent parser over UTF-8 bytes (RFC 8259; surrounding whitespace allowed, nothing else).
struct JSONParser {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0
    private var depth = 0
    private static let maxDepth = 64

    /// Parses a whole document.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue()
        parser.skipWhitespace()
        if parser.position != bytes.count {
            throw JSONParseError(message: "unexpected \(parser.describeCurrent()) after the top-level value",
                                 offset: parser.position)
        }
        return value
    }

    /// Parses a whole document held in an array.
    static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        // withUnsafeBytes cannot forward typed throws here, so route the error through a Result.
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBytes { raw in
            do throws(JSONParseError) { return .success(try parse(raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    private init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private func describeCurrent() -> String {
        guard let c = current else { return "end of input" }
        if c >= 0x20 && c < 0x7f { return "'\(Character(Unicode.Scalar(c)))'" }
        return "byte 0x\(String(c, radix: 16))"
    }

    private mutating func skipWhitespace() {
        while let c = current, c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09 { position += 1 }
    }

    private mutating func expect(_ literal: String) throws(JSONParseError) {
        for byte in literal.utf8 {
            guard current == byte else {
                throw JSONParseError(message: "expected '\(literal)', found \(describeCurrent())", offset: position)
            }
            position += 1
        }
    }

    private mutating func parseValue() throws(JSONParseError) -> JSONValue {
        switch current {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case let c? where c == UInt8(ascii: "-") || (c >= 0x30 && c <= 0x39): return try parseNumber()
        default:
            throw JSONParseError(message: "expected a value, found \(describeCurrent())", offset: position)
        }
    }

    private mutating func enter() throws(JSONParseError) {
        depth += 1
        if depth > Self.maxDepth {
            throw JSONParseError(message: "nesting deeper than \(Self.maxDepth) levels", offset: position)
        }
    }

    private mutating func parseObject() throws(JSONParseError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        position += 1
        var members: [(key: String, value: JSONValue)] = []
        var seen = Set<String>()
        skipWhitespace()
        if current == UInt8(ascii: "}") { position += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else {
                throw JSONParseError(message: "expected a member name in quotes, found \(describeCurrent())",
                                     offset: position)
            }
            let keyOffset = position
            let key = try parseString()
            guard seen.insert(key).inserted else {
                throw JSONParseError(message: "duplicate key \"\(key)\"", offset: keyOffset)
            }
            skipWhitespace()
            try expect(":")
            skipWhitespace()
            members.append((key, try parseValue()))
            skipWhitespace()
            if current == UInt8(ascii: ",") { position += 1; continue }
            if current == UInt8(ascii: "}") { position += 1; return .object(members) }
            throw JSONParseError(message: "expected ',' or '}' in an object, found \(describeCurrent())",
                                 offset: position)
        }
    }

    private mutating func parseArray() throws(JSONParseError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        position += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") { position += 1; return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            if current == UInt8(ascii: ",") { position += 1; continue }
            if current == UInt8(ascii: "]") { position += 1; return .array(elements) }
            throw JSONParseError(message: "expected ',' or ']' in an array, found \(describeCurrent())",
                                 offset: position)
        }
    }

    private mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = position
        func digits(_ parser: inout JSONParser) -> Int {
            var n = 0
            while let c = parser.current, c >= 0x30 && c <= 0x39 { parser.position += 1; n += 1 }
            return n
        }
        if current == UInt8(ascii: "-") { position += 1 }
        let intStart = position
        let intDigits = digits(&self)
        if intDigits == 0 || (intDigits > 1 && bytes[intStart] == 0x30) {
            throw JSONParseError(message: "malformed number", offset: start)
        }
        if current == UInt8(ascii: ".") {
            position += 1
            if digits(&self) == 0 { throw JSONParseError(message: "malformed number", offset: start) }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            if digits(&self) == 0 { throw JSONParseError(message: "malformed number", offset: start) }
        }
        return .number(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self))
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let c = current else {
                throw JSONParseError(message: "unterminated \\u escape", offset: position)
            }
            let digit: UInt32
            switch c {
            case 0x30...0x39: digit = UInt32(c - 0x30)
            case 0x41...0x46: digit = UInt32(c - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(c - 0x61 + 10)
            default: throw JSONParseError(message: "bad hex digit in \\u escape", offset: position)
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    private mutating func parseString() throws(JSONParseError) -> String {
        let start = position
        position += 1
        var out: [UInt8] = []
        while true {
            guard let c = current else {
                throw JSONParseError(message: "unterminated string", offset: start)
            }
            position += 1
            switch c {
            case UInt8(ascii: "\""):
                guard let s = String(validating: out, as: UTF8.self) else {
                    throw JSONParseError(message: "string is not valid UTF-8", offset: start)
                }
                return s
            case UInt8(ascii: "\\"):
                guard let e = current else { throw JSONParseError(message: "unterminated escape", offset: position) }
                position += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0c)
                case UInt8(ascii: "n"): out.append(0x0a)
                case UInt8(ascii: "r"): out.append(0x0d)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if scalar >= 0xd800 && scalar < 0xdc00 {
                        // A high surrogate must be followed by an escaped low surrogate.
                        try expect("\\u")
                        let low = try parseHex4()
                        guard low >= 0xdc00 && low < 0xe000 else {
                            throw JSONParseError(message: "unpaired surrogate in \\u escape", offset: position)
                        }
                        scalar = 0x10000 + ((scalar - 0xd800) << 10) + (low - 0xdc00)
                    }
                    guard let u = Unicode.Scalar(scalar) else {
                        throw JSONParseError(message: "unpaired surrogate in \\u escape", offset: position)
                    }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default:
                    throw JSONParseError(message: "unknown escape '\\\(Character(Unicode.Scalar(e)))'",
                                         offset: position - 1)
                }
            case 0x00..<0x20:
                throw JSONParseError(message: "control character in a string", offset: position - 1)
            default:
                out.append(c)
            }
        }
    }
}
