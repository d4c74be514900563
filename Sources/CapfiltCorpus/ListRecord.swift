// Turns one list record (a JSONL object or a CSV/TSV row) into a sample, the same way for every list format:
// which column is the image, what an absent, null, empty or non-string value means, how keys are derived.

import Foundation

/// The parts of a list record the spec names, plus the rest as metadata.
struct ListRecord {
    var image: ListValue?
    var caption: ListValue?
    var key: ListValue?
    /// Other columns in record order.
    var others: [(name: String, value: ListValue)] = []

    /// Splits `columns` by the spec's column names.
    init(columns: [(key: String, value: ListValue)], options: CorpusOptions) {
        for (name, value) in columns {
            if name == options.imageColumn {
                image = value
            } else if name == options.captionColumn {
                caption = value
            } else if name == options.keyColumn {
                key = value
            } else {
                others.append((name, value))
            }
        }
    }
}

/// Builds samples from list records of one list file.
struct ListSampleBuilder {
    let display: String
    /// The list file's folder: relative image paths resolve against it.
    let folder: URL
    let options: CorpusOptions
    /// CSV/TSV cannot tell an empty field from a missing one; pandas reads both as NaN, so an empty caption there
    /// counts as missing. JSONL's `""` is a real (empty) caption.
    let emptyCaptionIsMissing: Bool

    func location(line: Int) -> SampleLocation {
        SampleLocation(source: display, position: "line \(line)")
    }

    /// A record that could not be parsed: no image, no text, the reason as its problem.
    func malformed(line: Int, ordinal: Int, reason: String) -> InputSample {
        .problem(ordinal: ordinal, key: InputSample.derivedKey(ordinal: ordinal), location: location(line: line),
                 reason: "line \(line) could not be read (see problems)", problem: "line \(line): \(reason)",
                 cause: .listLineInvalid)
    }

    func sample(_ record: ListRecord, line: Int, ordinal: Int) -> InputSample {
        var problems: [String] = []
        let image = imagePayload(record.image, line: line)
        let text = caption(record.caption, line: line, problems: &problems)
        let key = sourceKey(record.key, ordinal: ordinal, line: line, problems: &problems)
        var metadata: [String: String] = [:]
        for (name, value) in record.others {
            switch value {
            case .null:
                continue
            case .other(let text, _):
                metadata[name] = text
            case .string(let bytes, _):
                if let text = String(validating: bytes, as: UTF8.self) {
                    metadata[name] = text
                } else {
                    metadata[name] = String(decoding: bytes, as: UTF8.self)
                    problems.append("line \(line): column \"\(name)\" is not valid UTF-8; invalid bytes replaced "
                        + "by U+FFFD in metadata")
                }
            }
        }
        return InputSample(ordinal: ordinal, sourceKey: key, location: location(line: line), image: image,
                           text: text, metadata: metadata, problems: problems)
    }

    private func imagePayload(_ value: ListValue?, line: Int) -> ImagePayload {
        let column = "column \"\(options.imageColumn)\""
        guard let value else { return .missing(reason: "line \(line) has no \(column)") }
        switch value {
        case .null:
            return .missing(reason: "line \(line): \(column) is null")
        case .other(_, let type):
            return .missing(reason: "line \(line): \(column) is \(type), not a path")
        case .string(let bytes, let replaced):
            guard replaced == 0, let path = String(validating: bytes, as: UTF8.self) else {
                return .missing(reason: "line \(line): \(column) is not valid UTF-8, so it names no file")
            }
            let payload = Self.resolve(path, against: folder, describing: "line \(line): \(column)")
            guard case .file(let url) = payload, !options.allowAnyPath else { return payload }
            return confine(url, written: path, context: "line \(line): \(column)")
        }
    }

    /// The folder list paths must stay in: `input.root`, else the list's own folder (links resolved).
    private var allowedRoot: String {
        options.rootReal ?? FileSystem.realPath(folder.path) ?? folder.standardizedFileURL.path
    }

    /// `url` if it resolves inside the allowed root (every link followed), else a `path_outside_root` refusal.
    /// A file that does not exist is judged by its lexical path, so `../../etc/x` is refused, not "missing".
    func confine(_ url: URL, written: String, context: String) -> ImagePayload {
        let root = allowedRoot
        let resolved = FileSystem.realPath(url.path) ?? url.standardizedFileURL.path
        if FileSystem.isInside(resolved, root: root) { return .file(URL(fileURLWithPath: resolved)) }
        let setting = options.rootReal == nil ? "the list's folder" : "input.root"
        return .refused(reason: "\(context) \(written.debugDescription) resolves to \(resolved), outside \(setting) "
            + "(\(root)); lists may only name files under it. Set input.root to a folder that holds the images, or "
            + "input.allow_any_path: true if this list is trusted", cause: .pathOutsideRoot)
    }

    /// A list's image path as a file URL: relative paths against the list's folder (`..` allowed: lists do that),
    /// absolute paths and `file://` URLs as they are; remote URLs are refused with what to do instead.
    static func resolve(_ path: String, against folder: URL, describing context: String) -> ImagePayload {
        if path.isEmpty { return .missing(reason: "\(context) is empty") }
        if path.contains("\0") { return .missing(reason: "\(context) contains a NUL byte, so it names no file") }
        if path.hasPrefix("file://") {
            guard let url = URL(string: path), url.isFileURL, !url.path.isEmpty else {
                return .missing(reason: "\(context): \(path.debugDescription) is not a valid file URL")
            }
            return .file(URL(fileURLWithPath: url.path))
        }
        if let scheme = path.range(of: "://"), !path[..<scheme.lowerBound].contains("/") {
            return .refused(reason: "\(context) is a URL (\(path[..<scheme.lowerBound])://...); capfilt reads "
                + "local files only: download the list first (e.g. img2dataset) and point capfilt at the shards",
                cause: .imageIsURL)
        }
        if path.hasPrefix("/") { return .file(URL(fileURLWithPath: path)) }
        return .file(folder.appendingPathComponent(path))
    }

    private func caption(_ value: ListValue?, line: Int, problems: inout [String]) -> TextField {
        guard let value else { return .missing }
        switch value {
        case .null:
            return .missing
        case .other(_, let type):
            problems.append("line \(line): column \"\(options.captionColumn)\" is \(type), not a string; "
                + "caption treated as missing")
            return .missing
        case .string(let bytes, let replaced):
            if bytes.isEmpty && emptyCaptionIsMissing { return .missing }
            if replaced > 0 {
                problems.append("line \(line): column \"\(options.captionColumn)\" has \(replaced) lone UTF-16 "
                    + "surrogate escape(s), replaced by U+FFFD")
            }
            return TextField.decoding(bytes)
        }
    }

    private func sourceKey(_ value: ListValue?, ordinal: Int, line: Int, problems: inout [String]) -> String {
        guard let keyColumn = options.keyColumn else { return InputSample.derivedKey(ordinal: ordinal) }
        let derived = InputSample.derivedKey(ordinal: ordinal)
        switch value {
        case .string(let bytes, 0)?:
            if !bytes.isEmpty, let key = String(validating: bytes, as: UTF8.self) { return key }
        case .other(let text, let type)? where type == "a number":
            return text
        default:
            break
        }
        problems.append("line \(line): key column \"\(keyColumn)\" is absent, empty, null or not text; "
            + "key \(derived) derived from the ordinal")
        return derived
    }
}
