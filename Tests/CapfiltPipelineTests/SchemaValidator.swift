// A JSON Schema validator for the subset of draft 2020-12 that Manifests/*.schema.json use: type (one or a
// list), const, enum, properties, required, additionalProperties (false or a schema), items, minimum,
// maximum, pattern, $ref to #/$defs. Unsupported keywords are an error, so a schema can't silently pass.
import Foundation

struct SchemaValidator {
    let root: [String: Any]
    static let supported: Set<String> = ["$schema", "$id", "title", "description", "type", "const", "enum", "properties",
                                         "required", "additionalProperties", "items", "minimum", "maximum", "pattern", "$ref", "$defs"]

    init(schemaAt url: URL) throws {
        root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] ?? [:]
    }

    /// Problems with `instance`, each with its JSON path; empty when valid.
    func validate(_ instance: Any) -> [String] {
        var problems: [String] = []
        check(instance, against: root, path: "$", problems: &problems)
        return problems
    }

    /// Validates one JSON text.
    func validate(json text: String) -> [String] {
        guard let value = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) else {
            return ["$: not valid JSON"]
        }
        return validate(value)
    }

    private func check(_ value: Any, against schema: [String: Any], path: String, problems: inout [String]) {
        for key in schema.keys where !Self.supported.contains(key) { problems.append("\(path): schema keyword \(key) is not supported") }
        if let ref = schema["$ref"] as? String {
            let name = ref.replacingOccurrences(of: "#/$defs/", with: "")
            guard let target = (root["$defs"] as? [String: Any])?[name] as? [String: Any] else {
                problems.append("\(path): unresolved $ref \(ref)"); return
            }
            check(value, against: target, path: path, problems: &problems)
        }
        if let types = schema["type"] {
            let allowed = (types as? [String]) ?? [types as? String ?? ""]
            if !allowed.contains(where: { Self.matches(value, type: $0) }) {
                problems.append("\(path): \(Self.describe(value)) is not of type \(allowed.joined(separator: "|"))"); return
            }
        }
        if let constant = schema["const"], !Self.equal(value, constant) { problems.append("\(path): \(Self.describe(value)) is not \(constant)") }
        if let options = schema["enum"] as? [Any], !options.contains(where: { Self.equal(value, $0) }) {
            problems.append("\(path): \(Self.describe(value)) is not one of \(options)")
        }
        if let number = Self.number(value) {
            if let min = (schema["minimum"] as? NSNumber)?.doubleValue, number < min { problems.append("\(path): \(number) < minimum \(min)") }
            if let max = (schema["maximum"] as? NSNumber)?.doubleValue, number > max { problems.append("\(path): \(number) > maximum \(max)") }
        }
        if let pattern = schema["pattern"] as? String, let string = value as? String,
           string.range(of: pattern, options: .regularExpression) == nil {
            problems.append("\(path): \"\(string.prefix(60))\" does not match \(pattern)")
        }
        if let object = value as? [String: Any], !(value is NSNull) {
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for name in schema["required"] as? [String] ?? [] where object[name] == nil { problems.append("\(path): missing \(name)") }
            for (name, child) in object {
                if let sub = properties[name] as? [String: Any] {
                    check(child, against: sub, path: "\(path).\(name)", problems: &problems)
                } else if let sub = schema["additionalProperties"] as? [String: Any] {
                    check(child, against: sub, path: "\(path).\(name)", problems: &problems)
                } else if (schema["additionalProperties"] as? Bool) == false {
                    problems.append("\(path): unexpected property \(name)")
                }
            }
        }
        if let array = value as? [Any], let items = schema["items"] as? [String: Any] {
            for (i, item) in array.enumerated() { check(item, against: items, path: "\(path)[\(i)]", problems: &problems) }
        }
    }

    static func isBool(_ v: Any) -> Bool {
        guard let n = v as? NSNumber else { return false }
        return String(cString: n.objCType) == "c" || type(of: v) == Bool.self || "\(type(of: n))".contains("Bool")
    }

    static func number(_ v: Any) -> Double? {
        guard !isBool(v), let n = v as? NSNumber else { return nil }
        return n.doubleValue
    }

    static func matches(_ v: Any, type: String) -> Bool {
        switch type {
        case "null": return v is NSNull
        case "boolean": return isBool(v)
        case "integer": return number(v).map { $0 == $0.rounded() } ?? false
        case "number": return number(v) != nil
        case "string": return v is String
        case "array": return v is [Any]
        case "object": return v is [String: Any]
        default: return false
        }
    }

    static func equal(_ a: Any, _ b: Any) -> Bool {
        if a is NSNull || b is NSNull { return a is NSNull && b is NSNull }
        if let x = a as? String, let y = b as? String { return x == y }
        if isBool(a) != isBool(b) { return false }
        if let x = a as? NSNumber, let y = b as? NSNumber { return x == y }
        return false
    }

    static func describe(_ v: Any) -> String {
        if v is NSNull { return "null" }
        if let s = v as? String { return "\"\(s.prefix(40))\"" }
        return "\(v)".prefix(60).description
    }
}
