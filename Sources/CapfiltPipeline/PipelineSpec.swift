// The pipeline spec: a YAML file naming the input, the output, the captioner and the filter with their
// settings. Every field is checked, unknown fields are refused (a typo must not silently fall back to a
// default), and every message names the field as it is written in the file.
import CapfiltBLIP
import CapfiltCorpus
import CapfiltTensor
import Foundation
import Yams

/// Which kept text becomes the sample's main caption (`key.txt`).
public enum MainCaptionRule: String, Sendable, CaseIterable, Codable {
    /// The web text if the filter kept it, else the best kept synthetic caption.
    case webFirst = "web_first"
    /// The best kept synthetic caption if any, else the web text.
    case syntheticFirst = "synthetic_first"
    /// Whichever kept text has the highest ITM probability.
    case bestITM = "best_itm"
}

/// How the captioner decodes.
public enum Decoding: String, Sendable, CaseIterable, Codable {
    case nucleus, beam, greedy
}

/// What happens to a later sample whose image bytes equal an earlier one's.
public enum DuplicatePolicy: String, Sendable, CaseIterable, Codable {
    /// Recorded with the first occurrence's key and left out of the export.
    case drop
    /// Exported too, reusing the first occurrence's synthetic captions (never captioned twice).
    case keep
}

public struct PipelineSpec: Sendable, Equatable {
    public struct Output: Sendable, Equatable {
        public var folder: String
        public var samplesPerShard = 10_000
        public var maxShardBytes = 1 << 30
        /// Input fields copied into the manifests as text columns (img2dataset's `save_additional_columns`):
        /// list or Parquet columns, or members of the input's `KEY.json`.
        public var additionalColumns: [String] = []
        /// The image members' format: the input's bytes as they are (`original`), or every image that is not
        /// already `jpg` / `webp` re-encoded to it, so a shard has one image extension (what Hugging Face's
        /// webdataset loader needs).
        public var imageFormat = ImageFormatSetting.original
        /// The re-encoding quality, 1-100 (img2dataset's default).
        public var imageQuality = 95
    }

    public enum ImageFormatSetting: String, Sendable, Equatable, CaseIterable {
        case original, jpg, webp
    }

    public struct Captioner: Sendable, Equatable {
        public var model: String
        public var decoding = Decoding.nucleus
        public var captionsPerImage = 1
        /// BLIP's captioning checkpoints were fine-tuned with this prompt; it is stripped from the caption.
        public var prompt: String? = "a picture of"
        public var maxNewTokens = 20
        public var minNewTokens = 5
        public var topP: Float = 0.9
        public var topK = 50
        public var temperature: Float = 1
        public var numBeams = 3
        public var repetitionPenalty: Float = 1.1
        public var lengthPenalty: Float = 1
        public var seed: UInt64 = 0
        public var batchSize = 8
        /// The arithmetic of the captioner's linear layers: fp32 (exact), bf16 or int8 (faster, agreement
        /// measured in BENCHMARKS.md).
        public var precision = Precision.fp32
    }

    public struct Filter: Sendable, Equatable {
        public var model: String
        /// Texts with P(match) below this are dropped (the paper: the ITM head's argmax, i.e. 0.5).
        public var threshold: Float = 0.5
        public var scoreWebText = true
        public var mainCaption = MainCaptionRule.webFirst
        public var maxTextTokens = 35
        /// The arithmetic of the filter's linear layers, as `Captioner.precision`.
        public var precision = Precision.fp32
    }

    public struct Limits: Sendable, Equatable {
        public var maxImageBytes = 64 << 20
        /// Pillow's default decompression-bomb limit.
        public var maxImagePixels = 89_478_485
        public var maxImageSide = 32_768
        public var maxTextCharacters = 2_000
    }

    public var version = 1
    public var input: CorpusSpec
    public var output: Output
    public var captioner: Captioner
    public var filter: Filter
    public var limits = Limits()
    public var duplicates = DuplicatePolicy.drop
    /// Samples per unit of work for list files and image folders (`input.block_size`); a shard is one unit; a Parquet
    /// file is split into runs of whole row groups of about this many rows.
    public var blockSize = 10_000
    /// How the job is spread (`job:`); none of it changes an output byte, so none of it is in the fingerprint.
    public var job = Job()

    public struct Job: Sendable, Equatable {
        /// Workers sharing the output folder, when not given on the command line or by the scheduler.
        public var workers: Int?
        /// A unit's lease expires this long after its holder last renewed it (it renews every quarter of it).
        public var leaseSeconds: Double = 120
    }

    /// The file the spec was read from; relative paths in it are relative to its folder.
    public var baseDirectory: URL

    /// Parses and checks a spec. `path` names the file in messages and anchors relative paths.
    public init(yaml: String, path: String) throws {
        let node: Node
        do {
            guard let parsed = try Yams.compose(yaml: yaml) else { throw SpecError(path: path, field: nil, message: "the file is empty") }
            node = parsed
        } catch let error as SpecError {
            throw error
        } catch {
            throw SpecError(path: path, field: nil, message: "not valid YAML: \(error)")
        }
        baseDirectory = URL(fileURLWithPath: path).deletingLastPathComponent()
        let root = try SpecMap(node, field: nil, path: path)
        version = try root.int("version") ?? 1
        guard version == 1 else { throw root.error("version", "is \(version); this capfilt reads version 1") }

        let i = try root.map("input", required: true)
        let kindName = try i.string("kind", required: true) ?? ""
        guard let kind = CorpusSpec.Kind(rawValue: kindName) else {
            throw i.error("kind", "is \"\(kindName)\"; use one of "
                + CorpusSpec.Kind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let paths = try i.strings("paths") ?? (try i.string("path")).map { [$0] }
        guard let paths, !paths.isEmpty else { throw i.error("paths", "is missing: list the input files, folders or brace patterns") }
        var corpus = CorpusSpec(kind: kind, paths: paths)
        corpus.imageColumn = try i.string("image_column") ?? corpus.imageColumn
        corpus.captionColumn = try i.string("caption_column") ?? corpus.captionColumn
        corpus.keyColumn = try i.string("key_column")
        corpus.captionExtension = try i.string("caption_extension") ?? corpus.captionExtension
        corpus.imageExtensions = try i.strings("image_extensions") ?? corpus.imageExtensions
        corpus.root = try i.string("root")
        corpus.allowAnyPath = try i.bool("allow_any_path") ?? false
        blockSize = try i.int("block_size", range: 1...100_000_000) ?? blockSize
        if corpus.root != nil && corpus.allowAnyPath {
            throw i.error("allow_any_path", "is true while input.root is set; keep one of the two")
        }
        try i.rejectUnknown()
        input = corpus

        let o = try root.map("output", required: true)
        output = Output(folder: try o.string("folder", required: true) ?? "")
        output.samplesPerShard = try o.int("samples_per_shard", range: 1...10_000_000) ?? output.samplesPerShard
        output.maxShardBytes = try o.int("max_shard_bytes", range: 1...(1 << 40)) ?? output.maxShardBytes
        output.additionalColumns = try o.strings("additional_columns") ?? []
        for name in output.additionalColumns {
            guard !name.isEmpty, !name.contains("."), !name.contains("/") else {
                throw o.error("additional_columns", "has \"\(name)\"; a column name is not empty and has no '.' or '/'")
            }
            guard !Self.manifestColumnNames.contains(name) else {
                throw o.error("additional_columns", "has \"\(name)\", which the manifests already have; list only the input's other fields")
            }
        }
        if Set(output.additionalColumns).count != output.additionalColumns.count {
            throw o.error("additional_columns", "names a column twice")
        }
        let formatName = try o.string("image_format") ?? output.imageFormat.rawValue
        guard let imageFormat = ImageFormatSetting(rawValue: formatName) else {
            throw o.error("image_format", "is \"\(formatName)\"; use original (the input's bytes), jpg or webp")
        }
        output.imageFormat = imageFormat
        output.imageQuality = try o.int("image_quality", range: 1...100) ?? output.imageQuality
        try o.rejectUnknown()

        let c = try root.map("captioner", required: true)
        captioner = Captioner(model: try c.string("model", required: true) ?? "")
        let decodingName = try c.string("decoding") ?? captioner.decoding.rawValue
        guard let decoding = Decoding(rawValue: decodingName) else {
            throw c.error("decoding", "is \"\(decodingName)\"; use nucleus, beam or greedy")
        }
        captioner.decoding = decoding
        captioner.captionsPerImage = try c.int("captions_per_image", range: 1...16) ?? captioner.captionsPerImage
        if c.has("prompt") { captioner.prompt = try c.string("prompt").flatMap { $0.isEmpty ? nil : $0 } }
        captioner.maxNewTokens = try c.int("max_new_tokens", range: 1...500) ?? captioner.maxNewTokens
        captioner.minNewTokens = try c.int("min_new_tokens", range: 0...500) ?? captioner.minNewTokens
        captioner.topP = try c.float("top_p", above: 0, atMost: 1) ?? captioner.topP
        captioner.topK = try c.int("top_k", range: 0...1_000_000) ?? captioner.topK
        captioner.temperature = try c.float("temperature", above: 0, atMost: 100) ?? captioner.temperature
        captioner.numBeams = try c.int("num_beams", range: 1...64) ?? captioner.numBeams
        captioner.repetitionPenalty = try c.float("repetition_penalty", above: 0, atMost: 100) ?? captioner.repetitionPenalty
        captioner.lengthPenalty = try c.float("length_penalty", above: -100, atMost: 100) ?? captioner.lengthPenalty
        captioner.seed = UInt64(try c.int("seed", range: 0...Int.max) ?? 0)
        captioner.batchSize = try c.int("batch_size", range: 1...1024) ?? captioner.batchSize
        captioner.precision = try c.precision() ?? captioner.precision
        if captioner.minNewTokens > captioner.maxNewTokens {
            throw c.error("min_new_tokens", "is \(captioner.minNewTokens), more than max_new_tokens \(captioner.maxNewTokens)")
        }
        if captioner.decoding != .nucleus && captioner.captionsPerImage > 1 {
            throw c.error("captions_per_image", "is \(captioner.captionsPerImage), but \(captioner.decoding.rawValue) decoding gives one caption per image; use decoding: nucleus for several")
        }
        try c.rejectUnknown()

        let f = try root.map("filter", required: true)
        filter = Filter(model: try f.string("model", required: true) ?? "")
        filter.threshold = try f.float("threshold", above: -0.000001, atMost: 1) ?? filter.threshold
        filter.scoreWebText = try f.bool("score_web_text") ?? filter.scoreWebText
        let mainName = try f.string("main_caption") ?? filter.mainCaption.rawValue
        guard let main = MainCaptionRule(rawValue: mainName) else {
            throw f.error("main_caption", "is \"\(mainName)\"; use web_first, synthetic_first or best_itm")
        }
        filter.mainCaption = main
        filter.maxTextTokens = try f.int("max_text_tokens", range: 2...512) ?? filter.maxTextTokens
        filter.precision = try f.precision() ?? filter.precision
        try f.rejectUnknown()

        if root.has("limits") {
            let l = try root.map("limits", required: true)
            limits.maxImageBytes = try l.int("max_image_bytes", range: 1...(1 << 40)) ?? limits.maxImageBytes
            limits.maxImagePixels = try l.int("max_image_pixels", range: 1...(1 << 40)) ?? limits.maxImagePixels
            limits.maxImageSide = try l.int("max_image_side", range: 1...1_000_000) ?? limits.maxImageSide
            limits.maxTextCharacters = try l.int("max_text_characters", range: 1...10_000_000) ?? limits.maxTextCharacters
            try l.rejectUnknown()
        }
        if root.has("job") {
            let j = try root.map("job", required: true)
            job.workers = try j.int("workers", range: 1...1_000_000)
            job.leaseSeconds = Double(try j.float("lease_seconds", above: 0.999, atMost: 86_400) ?? Float(job.leaseSeconds))
            try j.rejectUnknown()
        }
        let duplicatesName = try root.string("duplicates") ?? duplicates.rawValue
        guard let policy = DuplicatePolicy(rawValue: duplicatesName) else {
            throw root.error("duplicates", "is \"\(duplicatesName)\"; use drop or keep")
        }
        duplicates = policy
        try root.rejectUnknown()
    }

    /// Reads a spec file.
    public static func load(path: String) throws -> PipelineSpec {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SpecError(path: path, field: nil, message: "cannot be read (does it exist?)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw SpecError(path: path, field: nil, message: "is not UTF-8 text")
        }
        return try PipelineSpec(yaml: text, path: path)
    }

    /// The largest shard member the tar reader loads: images up to `limits.max_image_bytes` (a larger image is
    /// then refused with `image_too_many_bytes`), and never less than 16 MiB, so captions and metadata members fit.
    public var maxMemberBytes: Int { max(limits.maxImageBytes, 16 << 20) }

    /// A path from the spec, resolved against the spec's folder.
    public func resolve(_ path: String) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : baseDirectory.appendingPathComponent(path)
    }

    /// The generation options of one caption.
    public var generationOptions: GenerationOptions {
        var o = GenerationOptions()
        o.maxNewTokens = captioner.maxNewTokens
        o.minNewTokens = captioner.minNewTokens
        o.repetitionPenalty = captioner.repetitionPenalty
        switch captioner.decoding {
        case .nucleus:
            o.doSample = true
            o.topP = captioner.topP
            o.topK = captioner.topK
            o.temperature = captioner.temperature
        case .beam:
            o.numBeams = captioner.numBeams
            o.lengthPenalty = captioner.lengthPenalty
        case .greedy:
            break
        }
        return o
    }

    /// Everything that decides the output, as canonical JSON: two runs with equal fingerprints produce the same
    /// bytes from the same inputs and weights. Paths are kept as written (moving a run folder is allowed).
    public var fingerprint: String {
        fingerprintFields.map { "\($0.0)=\($0.1)" }.joined(separator: "\n")
    }

    /// The fields that decide only what is kept and how it is written, not the captions or the scores: a run
    /// whose spec changes only these re-decides from its stored captions and scores, with no model work.
    public static let decisionFields: Set<String> = [
        "filter.threshold", "filter.main_caption", "duplicates", "output.samples_per_shard", "output.max_shard_bytes",
        "output.image_format", "output.image_quality", "output.additional_columns",
    ]

    /// The fields in which two specs differ (by their fingerprints), in fingerprint order.
    public func changedFields(from other: PipelineSpec) -> [String] {
        let mine = Dictionary(fingerprintFields, uniquingKeysWith: { a, _ in a })
        let theirs = Dictionary(other.fingerprintFields, uniquingKeysWith: { a, _ in a })
        let names = fingerprintFields.map(\.0) + other.fingerprintFields.map(\.0).filter { mine[$0] == nil }
        return names.filter { mine[$0] != theirs[$0] }
    }

    /// The fingerprint's fields: (name, value) in a fixed order.
    var fingerprintFields: [(String, String)] {
        let c = captioner, f = filter, l = limits
        var fields: [(String, String)] = [
            ("version", "\(version)"), ("input.kind", input.kind.rawValue), ("input.paths", input.paths.joined(separator: "\u{1F}")),
            ("input.image_column", input.imageColumn), ("input.caption_column", input.captionColumn),
            ("input.key_column", input.keyColumn ?? ""), ("input.caption_extension", input.captionExtension),
            ("input.image_extensions", input.imageExtensions.joined(separator: ",")),
            ("input.root", input.root ?? ""), ("input.allow_any_path", "\(input.allowAnyPath)"),
            ("output.samples_per_shard", "\(output.samplesPerShard)"), ("output.max_shard_bytes", "\(output.maxShardBytes)"),
            ("captioner.decoding", c.decoding.rawValue), ("captioner.captions_per_image", "\(c.captionsPerImage)"),
            ("captioner.prompt", c.prompt ?? ""), ("captioner.max_new_tokens", "\(c.maxNewTokens)"),
            ("captioner.min_new_tokens", "\(c.minNewTokens)"), ("captioner.top_p", "\(c.topP)"), ("captioner.top_k", "\(c.topK)"),
            ("captioner.temperature", "\(c.temperature)"), ("captioner.num_beams", "\(c.numBeams)"),
            ("captioner.repetition_penalty", "\(c.repetitionPenalty)"), ("captioner.length_penalty", "\(c.lengthPenalty)"),
            ("captioner.seed", "\(c.seed)"), ("captioner.batch_size", "\(c.batchSize)"),
            ("filter.threshold", "\(f.threshold)"), ("filter.score_web_text", "\(f.scoreWebText)"),
            ("filter.main_caption", f.mainCaption.rawValue), ("filter.max_text_tokens", "\(f.maxTextTokens)"),
            ("limits.max_image_bytes", "\(l.maxImageBytes)"), ("limits.max_image_pixels", "\(l.maxImagePixels)"),
            ("limits.max_image_side", "\(l.maxImageSide)"), ("limits.max_text_characters", "\(l.maxTextCharacters)"),
            ("duplicates", duplicates.rawValue),
        ]
        // Settings added later enter only when not at their default, so older runs keep their fingerprint.
        if blockSize != 10_000 { fields.append(("input.block_size", "\(blockSize)")) }
        if output.imageFormat != .original {
            fields.append(("output.image_format", output.imageFormat.rawValue))
            fields.append(("output.image_quality", "\(output.imageQuality)"))
        }
        if !output.additionalColumns.isEmpty {
            fields.append(("output.additional_columns", output.additionalColumns.joined(separator: "\u{1F}")))
        }
        if c.precision != .fp32 { fields.append(("captioner.precision", c.precision.rawValue)) }
        if f.precision != .fp32 { fields.append(("filter.precision", f.precision.rawValue)) }
        return fields
    }
}

/// A spec problem, naming the file and the field (`captioner.top_p`).
public struct SpecError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let field: String?
    public let message: String
    public var description: String {
        "\(path): \(field.map { "\($0) " } ?? "")\(message). See Pipelines/README.md for every field."
    }
}

/// One YAML mapping of the spec, with typed getters that name the field and remember what was read.
private final class SpecMap {
    let path: String
    let field: String?
    private var values: [String: Node] = [:]
    private var read = Set<String>()

    init(_ node: Node, field: String?, path: String) throws {
        self.path = path
        self.field = field
        guard case .mapping(let mapping) = node else {
            throw SpecError(path: path, field: field, message: field == nil ? "must be a mapping of sections (input, output, captioner, filter)" : "must be a mapping")
        }
        for (key, value) in mapping {
            guard let name = key.string else { throw SpecError(path: path, field: field, message: "has a key that is not a string") }
            // YAML parsers keep the last of a repeated key without a word; a spec must not mean two things.
            if values[name] != nil {
                throw SpecError(path: path, field: field.map { "\($0).\(name)" } ?? name,
                                message: "appears twice (line \(key.mark?.line ?? 0)); keep one")
            }
            values[name] = value
        }
    }

    func name(_ key: String) -> String { field.map { "\($0).\(key)" } ?? key }
    func error(_ key: String, _ message: String) -> SpecError { SpecError(path: path, field: name(key), message: message) }
    func has(_ key: String) -> Bool { values[key] != nil }

    private func scalar(_ key: String, required: Bool) throws -> Node.Scalar? {
        read.insert(key)
        guard let node = values[key] else {
            if required { throw error(key, "is missing") }
            return nil
        }
        guard case .scalar(let s) = node else { throw error(key, "must be a single value") }
        if s.style == .plain && ["~", "null", ""].contains(s.string) { return required ? nil : nil }
        return s
    }

    func string(_ key: String, required: Bool = false) throws -> String? {
        guard let s = try scalar(key, required: required) else {
            if required { throw error(key, "is missing") }
            return nil
        }
        return s.string
    }

    func int(_ key: String, range: ClosedRange<Int>? = nil) throws -> Int? {
        guard let s = try scalar(key, required: false) else { return nil }
        guard let v = Int(s.string.replacingOccurrences(of: "_", with: "")) else { throw error(key, "must be a whole number, found \"\(s.string)\"") }
        if let range, !range.contains(v) { throw error(key, "is \(v); it must be between \(range.lowerBound) and \(range.upperBound)") }
        return v
    }

    func float(_ key: String, above low: Float, atMost high: Float) throws -> Float? {
        guard let s = try scalar(key, required: false) else { return nil }
        guard let v = Float(s.string), v.isFinite else { throw error(key, "must be a number, found \"\(s.string)\"") }
        guard v > low && v <= high else { throw error(key, "is \(s.string); it must be greater than \(low) and at most \(high)") }
        return v
    }

    /// `precision`: fp32, bf16 or int8.
    func precision() throws -> Precision? {
        guard let name = try string("precision") else { return nil }
        guard let p = Precision(rawValue: name) else {
            throw error("precision", "is \"\(name)\"; use fp32 (exact), bf16 or int8 (faster, agreement in BENCHMARKS.md)")
        }
        return p
    }

    func bool(_ key: String) throws -> Bool? {
        guard let s = try scalar(key, required: false) else { return nil }
        switch s.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(key, "must be true or false, found \"\(s.string)\"")
        }
    }

    func strings(_ key: String) throws -> [String]? {
        read.insert(key)
        guard let node = values[key] else { return nil }
        switch node {
        case .scalar(let s): return [s.string]
        case .sequence(let seq):
            return try seq.map { item in
                guard case .scalar(let s) = item else { throw error(key, "must be a list of strings") }
                return s.string
            }
        default: throw error(key, "must be a string or a list of strings")
        }
    }

    func map(_ key: String, required: Bool) throws -> SpecMap {
        read.insert(key)
        guard let node = values[key] else { throw error(key, "is missing") }
        return try SpecMap(node, field: name(key), path: path)
    }

    /// Refuses keys nobody read: typos must not silently fall back to defaults.
    func rejectUnknown() throws {
        let unknown = values.keys.filter { !read.contains($0) }.sorted()
        guard let first = unknown.first else { return }
        let known = read.sorted()
        let hint = known.min { editDistance($0, first) < editDistance($1, first) }.map { "; did you mean \(name($0))?" } ?? ""
        throw SpecError(path: path, field: name(first), message: "is not a known field\(hint)")
    }
}

private func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8), b = Array(b.utf8)
    var row = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in stride(from: 1, through: b.count, by: 1) {
            let current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = current
        }
    }
    return row[b.count]
}
