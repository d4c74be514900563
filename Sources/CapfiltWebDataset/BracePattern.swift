// Shard-list patterns as img2dataset and webdataset users write them ("data/{00000..00099}.tar"), expanded the
// way Python's `braceexpand` does, so a pattern that works with their loaders names the same shards here.

/// A brace pattern could not be expanded.
public struct BracePatternError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The pattern as given.
    public let pattern: String
    /// Character offset in `pattern` where the problem is.
    public let position: Int
    /// What is wrong.
    public let reason: String

    public var description: String {
        "brace pattern \(pattern.debugDescription), character \(position): \(reason). "
            + "Write ranges as {START..END} or {START..END..STEP} with integers or single letters, lists as {a,b}, "
            + "and escape literal braces as \\{ \\}."
    }
}

/// Brace expansion for shard lists.
public enum BracePattern {
    /// Upper bound on the names one pattern may produce, so a typo cannot exhaust memory.
    public static let maxExpansions = 10_000_000

    /// Expands every brace group, left to right, the leftmost group varying slowest:
    /// - `{00000..00099}`: integer range; zero padding is kept when either end has a leading zero (width of the
    ///   longer end), `{1..10..3}` has a step, ranges may run downward;
    /// - `{a..e}`: letter range; `{a,b,}`: alternatives (empty ones allowed); groups nest;
    /// - `{x}` without a comma or range stays literal, as in bash and `braceexpand`; `\{`, `\}`, `\,` escape.
    ///
    /// Throws ``BracePatternError`` for unbalanced braces, `{}`, ranges that do not parse (`{1..}`, `{a..5}`,
    /// step 0), a trailing backslash, or more than ``maxExpansions`` results.
    public static func expand(_ pattern: String) throws -> [String] {
        let parser = Parser(pattern: pattern)
        return try parser.expand(0..<parser.chars.count)
    }

    private struct Parser {
        let pattern: String
        let chars: [Character]

        init(pattern: String) {
            self.pattern = pattern
            chars = Array(pattern)
        }

        func fail(_ position: Int, _ reason: String) -> BracePatternError {
            BracePatternError(pattern: pattern, position: position, reason: reason)
        }

        /// Expands `chars[range]`.
        func expand(_ range: Range<Int>) throws -> [String] {
            guard let open = try firstTopLevelOpen(in: range) else {
                return [try literal(range)]
            }
            let close = try matchingClose(open: open, end: range.upperBound)
            let prefix = try literal(range.lowerBound..<open)
            let inner = (open + 1)..<close
            let options = try groupOptions(inner, open: open)
            let rest = try expand((close + 1)..<range.upperBound)
            guard options.count.multipliedReportingOverflow(by: rest.count).partialValue <= maxExpansions,
                  !options.count.multipliedReportingOverflow(by: rest.count).overflow else {
                throw fail(open, "the pattern expands to more than \(maxExpansions) names")
            }
            var result: [String] = []
            result.reserveCapacity(options.count * rest.count)
            for option in options {
                for tail in rest { result.append(prefix + option + tail) }
            }
            return result
        }

        /// What one `{...}` group stands for.
        private func groupOptions(_ inner: Range<Int>, open: Int) throws -> [String] {
            if inner.isEmpty { throw fail(open, "empty braces '{}'") }
            let commas = topLevelCommas(in: inner)
            if !commas.isEmpty {
                var options: [String] = []
                var start = inner.lowerBound
                for comma in commas + [inner.upperBound] {
                    options.append(contentsOf: try expand(start..<comma))
                    if options.count > maxExpansions {
                        throw fail(open, "the pattern expands to more than \(maxExpansions) names")
                    }
                    start = comma + 1
                }
                return options
            }
            let text = String(chars[inner])
            if !text.contains("{") && !text.contains("\\") && text.contains("..") {
                return try range(text, open: open)
            }
            // A single item is not a group: bash and braceexpand keep the braces.
            return try expand(inner).map { "{" + $0 + "}" }
        }

        /// `START..END` or `START..END..STEP` over integers or single letters.
        private func range(_ text: String, open: Int) throws -> [String] {
            let parts = text.components(separatedBy: "..")
            guard parts.count == 2 || parts.count == 3, !parts.contains(where: \.isEmpty) else {
                throw fail(open, "'{\(text)}' is not a range: expected START..END or START..END..STEP")
            }
            var step = 1
            if parts.count == 3 {
                guard let parsed = Int(parts[2]), parsed != 0, parsed != Int.min else {
                    throw fail(open, "the step '\(parts[2])' must be a non-zero integer")
                }
                step = abs(parsed)
            }
            if let low = Int(parts[0]), let high = Int(parts[1]) {
                return try integerRange(from: low, to: high, step: step, ends: (parts[0], parts[1]), open: open)
            }
            // braceexpand's alphabet runs A-Z then a-z, so {X..b} is X Y Z a b, without the punctuation between.
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
            if parts[0].count == 1, parts[1].count == 1,
               let first = parts[0].first.flatMap({ alphabet.firstIndex(of: $0) }),
               let last = parts[1].first.flatMap({ alphabet.firstIndex(of: $0) }) {
                return stride(from: first, through: last, by: first <= last ? step : -step).map { String(alphabet[$0]) }
            }
            throw fail(open, "'{\(text)}' mixes or misspells range ends: use two integers or two single letters")
        }

        private func integerRange(from low: Int, to high: Int, step: Int, ends: (String, String), open: Int) throws
            -> [String] {
            let span = high >= low ? high.subtractingReportingOverflow(low) : low.subtractingReportingOverflow(high)
            guard !span.overflow, span.partialValue / step < maxExpansions else {
                throw fail(open, "the range expands to more than \(maxExpansions) names")
            }
            // braceexpand pads when either end is written with a leading zero ("007", "-01"), to the longer end.
            func zeroPadded(_ end: String) -> Bool {
                let digits = end.hasPrefix("-") ? end.dropFirst() : Substring(end)
                return digits.count > 1 && digits.hasPrefix("0")
            }
            let width = zeroPadded(ends.0) || zeroPadded(ends.1) ? max(ends.0.count, ends.1.count) : 0
            return stride(from: low, through: high, by: high >= low ? step : -step).map { value in
                let digits = String(value.magnitude)
                let sign = value < 0 ? "-" : ""
                let padding = max(0, width - sign.count - digits.count)
                return sign + String(repeating: "0", count: padding) + digits
            }
        }

        // MARK: Scanning

        private func firstTopLevelOpen(in range: Range<Int>) throws -> Int? {
            var index = range.lowerBound
            while index < range.upperBound {
                switch chars[index] {
                case "\\":
                    if index + 1 >= range.upperBound { throw fail(index, "the pattern ends with a lone backslash") }
                    index += 2
                    continue
                case "{": return index
                case "}": throw fail(index, "'}' has no matching '{'")
                default: break
                }
                index += 1
            }
            return nil
        }

        private func matchingClose(open: Int, end: Int) throws -> Int {
            var depth = 0
            var index = open
            while index < end {
                switch chars[index] {
                case "\\": index += 1
                case "{": depth += 1
                case "}":
                    depth -= 1
                    if depth == 0 { return index }
                default: break
                }
                index += 1
            }
            throw fail(open, "'{' has no matching '}'")
        }

        private func topLevelCommas(in range: Range<Int>) -> [Int] {
            var commas: [Int] = []
            var depth = 0
            var index = range.lowerBound
            while index < range.upperBound {
                switch chars[index] {
                case "\\": index += 1
                case "{": depth += 1
                case "}": depth -= 1
                case "," where depth == 0: commas.append(index)
                default: break
                }
                index += 1
            }
            return commas
        }

        /// Text without groups, with escapes removed.
        private func literal(_ range: Range<Int>) throws -> String {
            var text = ""
            var index = range.lowerBound
            while index < range.upperBound {
                let char = chars[index]
                if char == "\\" {
                    guard index + 1 < range.upperBound else {
                        throw fail(index, "the pattern ends with a lone backslash")
                    }
                    text.append(chars[index + 1])
                    index += 2
                    continue
                }
                if char == "}" { throw fail(index, "'}' has no matching '{'") }
                text.append(char)
                index += 1
            }
            return text
        }
    }
}
