// Samples from a directory tree of images with caption sidecars (img2dataset's "files" output, or a user's own
// photos), in byte order of relative path so every machine sees the same sequence. Links are never followed out
// of the folder: a tree from the web or a colleague must not make us read /etc or a neighbour's data.

import Foundation

/// Walks one folder depth first, holding one sorted listing per level of the current path.
///
/// - Images: regular files (or links to regular files inside the folder) whose extension, after the last dot,
///   is in `imageExtensions`, case-insensitively. Names starting with a dot are skipped (`.git`, macOS `._x.jpg`).
/// - Text: the sidecar `<stem>.<captionExtension>` beside the image; a `<stem>.json` sidecar goes to
///   `metadata["json"]`.
/// - Links: a link to a file inside the folder is read through its target; a link leading outside, a dangling
///   link, or a link to something other than a regular file is a problem sample. Links to folders are never
///   descended (they could loop or leave the folder) and are skipped unless their name looks like an image.
/// - Names that are not valid UTF-8 cannot be put in a URL or a manifest: such images and folders become
///   problem samples naming the parent folder.
final class FolderSource: SampleSource {
    /// Largest sidecar read; captions and img2dataset's JSON are a few kilobytes.
    static let maxSidecarBytes = 4 << 20

    private struct Frame {
        /// Path relative to the root, "" or ending with "/".
        let relative: String
        /// Entries in walk order.
        let entries: [DirectoryEntry]
        /// Entry kinds by name, for sidecar lookups.
        let kinds: [[UInt8]: FileKind]
        /// Image names sharing a stem, for stems with more than one image.
        let collisions: [String: [String]]
        var index = 0
    }

    private let display: String
    private let root: String
    private let options: CorpusOptions
    private var rootReal = ""
    private var stack: [Frame] = []
    private var started = false

    init(display: String, path: String, options: CorpusOptions) {
        self.display = display
        var root = path
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        self.root = root
        self.options = options
    }

    func next(ordinal: Int) -> InputSample? {
        if !started {
            started = true
            guard let real = FileSystem.realPath(root) else {
                return problem(ordinal: ordinal, key: "(unreadable folder)", position: ".",
                               reason: "the folder cannot be resolved", detail: "the folder no longer exists or "
                                   + "cannot be searched; check it and its permissions")
            }
            rootReal = real
            if let failure = push(relative: "") {
                return problem(ordinal: ordinal, key: "(unreadable folder)", position: ".",
                               reason: "the folder cannot be listed",
                               detail: "cannot be listed (\(failure)); check its permissions")
            }
        }
        while let last = stack.indices.last {
            let frame = stack[last]
            guard frame.index < frame.entries.count else {
                stack.removeLast()
                continue
            }
            stack[last].index += 1
            if let sample = visit(frame.entries[frame.index], in: frame, ordinal: ordinal) { return sample }
        }
        return nil
    }

    /// A sample for `entry`, or nil when the entry yields none (not an image, a folder now pushed).
    private func visit(_ entry: DirectoryEntry, in frame: Frame, ordinal: Int) -> InputSample? {
        if entry.name.first == UInt8(ascii: ".") { return nil }
        guard let name = entry.text else {
            let shown = frame.relative + String(decoding: entry.name, as: UTF8.self)
            if entry.kind == .directory || looksLikeImage(entry.name) {
                let what = entry.kind == .directory ? "folder" : "file"
                return problem(ordinal: ordinal, key: shown, position: shown,
                               reason: "the \(what) name is not valid UTF-8",
                               detail: "\(what) name \(shown.debugDescription) is not valid UTF-8; rename it to "
                                   + "read it")
            }
            return nil
        }
        let relative = frame.relative + name
        if entry.kind == .directory {
            guard let failure = push(relative: relative + "/") else { return nil }
            return problem(ordinal: ordinal, key: relative, position: relative + "/",
                           reason: "the folder cannot be listed",
                           detail: "\(relative)/ cannot be listed (\(failure)); its images were not read")
        }
        guard let ext = options.imageExtension(ofFileName: name) else { return nil }
        let key = String(relative.dropLast(ext.count + 1))
        let stem = String(name.dropLast(ext.count + 1))
        var problems: [String] = []
        if let sharing = frame.collisions[stem] {
            problems.append("\(sharing.count) images share the key \(key.debugDescription) ("
                + sharing.joined(separator: ", ") + "); they also share their sidecars")
        }
        let image: ImagePayload
        switch entry.kind {
        case .regular:
            image = .file(URL(fileURLWithPath: absolute(relative)))
        case .symlink:
            switch resolveLink(relative) {
            case .success(let target): image = .file(URL(fileURLWithPath: target))
            case .failure(let refusal):
                problems.append("\(relative): \(refusal.detail)")
                image = .refused(reason: refusal.reason, cause: refusal.cause)
            }
        case .directory, .other:
            let what = FileSystem.describe(entry.kind)
            problems.append("\(relative) is a \(what); only regular files are read")
            image = .refused(reason: "\(relative) is a \(what), not a regular file", cause: .memberRefused)
        }
        let text: TextField
        switch sidecar(stem + "." + options.captionExtension, in: frame, problems: &problems) {
        case .some(let bytes): text = TextField.decoding(bytes)
        case nil: text = .missing
        }
        var metadata: [String: String] = [:]
        if options.captionExtension != "json", let json = sidecar(stem + ".json", in: frame, problems: &problems) {
            if let raw = String(validating: json, as: UTF8.self) {
                metadata["json"] = raw
            } else {
                problems.append("\(frame.relative)\(stem).json is not valid UTF-8; metadata dropped")
            }
        }
        var sample = InputSample(ordinal: ordinal, sourceKey: key,
                                 location: SampleLocation(source: display, position: relative),
                                 image: image, text: text, metadata: metadata, problems: problems)
        // The caption sidecar, there or not: a resume must notice one that changed or appeared.
        sample.sidecars = [absolute(frame.relative + stem + "." + options.captionExtension)]
        return sample
    }

    // MARK: Helpers

    /// Lists `relative` (a folder below the root) and pushes it; returns the failure if it cannot be listed.
    private func push(relative: String) -> SystemFailure? {
        switch FileSystem.list(relative.isEmpty ? root : absolute(String(relative.dropLast()))) {
        case .failure(let failure):
            return failure
        case .success(let entries):
            let sorted = entries.sorted { $0.walkSortKey.lexicographicallyPrecedes($1.walkSortKey) }
            var kinds: [[UInt8]: FileKind] = [:]
            var stems: [String: [String]] = [:]
            for entry in sorted {
                kinds[entry.name] = entry.kind
                if entry.kind != .directory, entry.name.first != UInt8(ascii: "."), let name = entry.text,
                   let ext = options.imageExtension(ofFileName: name) {
                    stems[String(name.dropLast(ext.count + 1)), default: []].append(name)
                }
            }
            stack.append(Frame(relative: relative, entries: sorted, kinds: kinds,
                               collisions: stems.filter { $0.value.count > 1 }))
            return nil
        }
    }

    private func absolute(_ relative: String) -> String {
        root == "/" ? "/" + relative : root + "/" + relative
    }

    /// Whether raw name bytes end with ".<image extension>", for names that are not valid UTF-8.
    private func looksLikeImage(_ name: [UInt8]) -> Bool {
        guard let dot = name.lastIndex(of: UInt8(ascii: ".")) else { return false }
        let ext = String(decoding: name[(dot + 1)...], as: UTF8.self).lowercased()
        return options.imageExtensions.contains(ext)
    }

    private struct LinkRefusal: Error {
        let reason: String
        let detail: String
        var cause: InputRefusal = .memberRefused
    }

    /// The canonical target of a link under the root, if it is a regular file inside the folder.
    private func resolveLink(_ relative: String) -> Result<String, LinkRefusal> {
        guard let target = FileSystem.realPath(absolute(relative)) else {
            return .failure(LinkRefusal(reason: "\(relative) is a broken symbolic link",
                                        detail: "symbolic link whose target does not exist; not read"))
        }
        guard FileSystem.isInside(target, root: rootReal) else {
            return .failure(LinkRefusal(reason: "\(relative) is a symbolic link leading outside the folder",
                                        detail: "symbolic link leading outside the folder (to \(target)); links "
                                            + "are never followed out of an input folder, copy the file in instead",
                                        cause: .pathOutsideRoot))
        }
        switch FileSystem.kind(of: target, followingLinks: false) {
        case .success(.regular):
            return .success(target)
        case .success(let kind):
            return .failure(LinkRefusal(reason: "\(relative) links to a \(FileSystem.describe(kind))",
                                        detail: "symbolic link to a \(FileSystem.describe(kind)); only regular "
                                            + "files are read"))
        case .failure(let failure):
            return .failure(LinkRefusal(reason: "\(relative) is a symbolic link that cannot be followed",
                                        detail: "symbolic link that cannot be followed (\(failure))"))
        }
    }

    /// The bytes of sidecar `name` beside the image, or nil when there is none or it cannot be read (a problem).
    private func sidecar(_ name: String, in frame: Frame, problems: inout [String]) -> [UInt8]? {
        guard let kind = frame.kinds[Array(name.utf8)] else { return nil }
        let relative = frame.relative + name
        var path = absolute(relative)
        switch kind {
        case .regular:
            break
        case .symlink:
            switch resolveLink(relative) {
            case .success(let target): path = target
            case .failure(let refusal):
                problems.append("\(relative): \(refusal.detail)")
                return nil
            }
        case .directory, .other:
            problems.append("\(relative) is a \(FileSystem.describe(kind)), not a sidecar file; ignored")
            return nil
        }
        switch FileSystem.readFile(path, maxBytes: Self.maxSidecarBytes) {
        case .success(let bytes): return bytes
        case .failure(.empty): return []
        case .failure(.tooLarge(let size)):
            problems.append("\(relative) has \(size) bytes, over the \(Self.maxSidecarBytes)-byte sidecar limit; "
                + "ignored")
        case .failure(let failure):
            problems.append("\(relative) cannot be read (\(failure.summary)); ignored")
        }
        return nil
    }

    private func problem(ordinal: Int, key: String, position: String, reason: String, detail: String) -> InputSample {
        .problem(ordinal: ordinal, key: key, location: SampleLocation(source: display, position: position),
                 reason: reason, problem: position == "." ? "\(display): \(detail)" : detail, cause: .sourceRefused)
    }
}
