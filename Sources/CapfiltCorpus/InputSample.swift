// What the corpus readers hand the pipeline: one sample at a time, with enough provenance to find it again and
// every per-sample problem as data, so nothing about one bad input aborts a run.

import Foundation

/// Where a sample came from, precise enough for a user to find it, and the same on every machine and run.
///
/// `source` is the shard, list file or folder as the pipeline spec names it (relative paths stay relative to the
/// spec's base directory, brace patterns expanded, shard-folder members appended), so it does not depend on where
/// the input is mounted. `position` is `"offset 3072"` (a shard member's header offset), `"line 17"` (the line a
/// list record starts on, 1-based) or the image's path relative to the folder (`.` for the folder itself).
public struct SampleLocation: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Shard path, list file path or folder path, as written in the spec.
    public let source: String
    /// `"offset N"`, `"line N"`, or the relative path of the image inside a folder.
    public let position: String

    public init(source: String, position: String) {
        self.source = source
        self.position = position
    }

    public var description: String { "\(source), \(position)" }
}

/// The image of a sample, as the input has it.
public enum ImagePayload: Sendable, Equatable {
    /// Bytes already in memory (a shard member), with the lowercased member extension ("jpg", "png", "webp", ...).
    case bytes([UInt8], fileExtension: String)
    /// A file to read later (list inputs, folders): not opened yet. Read it with
    /// ``CorpusReader/readImage(_:maxBytes:)``.
    case file(URL)
    /// No usable image; the reason says why in one line, e.g. "no image member (found .txt); expected .jpg, .png".
    case missing(reason: String)
    /// The input has something here, but capfilt will not read it: a damaged shard's tail, a refused member or
    /// source, a malformed list line, a path leaving the allowed root. `cause` is the stable reason code.
    case refused(reason: String, cause: InputRefusal)
}

/// Why an input sample was refused, one stable code per cause (users filter manifests on them).
public enum InputRefusal: String, Sendable, Equatable, CaseIterable {
    /// The shard is damaged or cut short here; samples from this point on could not be read.
    case shardDamaged = "shard_damaged"
    /// A whole source was refused or could not be read: a link leading out of an input folder, a list or folder
    /// that cannot be read.
    case sourceRefused = "source_refused"
    /// A list line could not be parsed, or a CSV/TSV row has the wrong number of fields.
    case listLineInvalid = "list_line_invalid"
    /// The sample's image member (or every member) was refused: a link, a device, an unsafe name.
    case memberRefused = "member_refused"
    /// A shard member larger than `limits.max_image_bytes`; its bytes were not loaded.
    case memberTooLarge = "image_too_many_bytes"
    /// A list names a file outside the list's folder (or `input.root`), or a folder input's link leads out of it.
    case pathOutsideRoot = "path_outside_root"
    /// A list names a remote URL; capfilt reads local files only.
    case imageIsURL = "image_url"
}

/// The text of a sample.
public enum TextField: Sendable, Equatable {
    /// The caption, exactly as stored (no trimming, no normalization).
    case text(String)
    /// The input has no caption for this sample (no member, no sidecar, absent/null/non-string column).
    case missing
    /// The caption's bytes are not valid UTF-8; `byteCount` of them were found.
    case invalidUTF8(byteCount: Int)

    /// Decodes stored caption bytes strictly: invalid UTF-8 is reported, never repaired.
    static func decoding(_ bytes: [UInt8]) -> TextField {
        if let text = String(validating: bytes, as: UTF8.self) { return .text(text) }
        return .invalidUTF8(byteCount: bytes.count)
    }
}

/// One input sample, in the deterministic order of the whole input.
public struct InputSample: Sendable, Equatable {
    /// 0, 1, 2, ... across all sources, problem-only samples included, so ordinals are consecutive.
    public let ordinal: Int
    /// The key as the input has it: the webdataset key, the list's key column, the folder-relative path without
    /// extension; or, for lists without a key column, the ordinal zero-padded to 9 digits (img2dataset style).
    public let sourceKey: String
    /// Where to find the sample.
    public let location: SampleLocation
    /// The image, in memory, to be read, or missing with a reason.
    public let image: ImagePayload
    /// The caption.
    public let text: TextField
    /// Extra columns (list inputs, as strings), and the raw text of a `.json` member or sidecar under `"json"`.
    public let metadata: [String: String]
    /// One line per problem found with this sample: refused tar members, malformed list lines, symlinks refused,
    /// damaged shards. Problems never throw; a sample may carry problems and still be usable.
    public let problems: [String]
    /// Files besides the image that the sample's text came from (a folder input's caption sidecar), so a resumed
    /// run can check they did not change.
    public var sidecars: [String] = []

    public init(ordinal: Int, sourceKey: String, location: SampleLocation, image: ImagePayload, text: TextField,
                metadata: [String: String] = [:], problems: [String] = []) {
        self.ordinal = ordinal
        self.sourceKey = sourceKey
        self.location = location
        self.image = image
        self.text = text
        self.metadata = metadata
        self.problems = problems
    }
}

extension InputSample {
    /// A sample standing for input that could not be read (a damaged shard's tail, an unreadable list file or
    /// folder, a malformed list line): no image, no text, the reason as its one problem.
    static func problem(ordinal: Int, key: String, location: SampleLocation, reason: String, problem: String,
                        cause: InputRefusal) -> InputSample {
        InputSample(ordinal: ordinal, sourceKey: key, location: location, image: .refused(reason: reason, cause: cause),
                    text: .missing, metadata: [:], problems: [problem])
    }

    /// img2dataset-style key for inputs without one: the ordinal, zero padded to 9 digits.
    static func derivedKey(ordinal: Int) -> String {
        let digits = String(ordinal)
        return digits.count >= 9 ? digits : String(repeating: "0", count: 9 - digits.count) + digits
    }
}

extension InputSample {
    /// What the input says about this sample besides its image, caption and key, as text: the top-level members of
    /// its `KEY.json` (a webdataset member or a folder sidecar, such as img2dataset's `url`, `original_width`,
    /// `exif`) and a list's or Parquet file's other columns (which win over the JSON member of the same name).
    /// Strings as they are; numbers, booleans, objects and arrays as their JSON text; nulls left out.
    public var inputFields: [String: String] {
        var fields: [String: String] = [:]
        if let json = metadata["json"], let members = try? JSONLineParser.parseObject(Array(json.utf8)) {
            for (name, value) in members {
                switch value {
                case .null: continue
                case .string(let bytes, _): fields[name] = String(decoding: bytes, as: UTF8.self)
                case .other(let text, _): fields[name] = text
                }
            }
        }
        for (name, value) in metadata where name != "json" { fields[name] = value }
        return fields
    }
}
