// One JSON object per output line, keys in the order given (so `image` comes first). Hand-written because
// JSONSerialization neither keeps key order nor prints floats shortest; escaping is the pipeline's.
import CapfiltPipeline

struct JSONLine {
    enum Value {
        case string(String)
        case int(Int)
        case float(Float)
        case ints([Int])
    }

    private var parts: [String] = []

    init(_ fields: [(String, Value)]) {
        for (key, value) in fields { parts.append(Self.quote(key) + ": " + Self.render(value)) }
    }

    var text: String { "{" + parts.joined(separator: ", ") + "}" }

    static func render(_ value: Value) -> String {
        switch value {
        case .string(let s): return quote(s)
        case .int(let i): return String(i)
        case .float(let f): return f.isFinite ? "\(f)" : "null"
        case .ints(let a): return "[" + a.map(String.init).joined(separator: ", ") + "]"
        }
    }

    static func quote(_ s: String) -> String {
        var out = ""
        JSON.quote(s, into: &out)
        return out
    }
}
