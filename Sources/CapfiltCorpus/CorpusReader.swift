// One streaming, deterministic sequence of input samples from any layout users have (webdataset shards, JSONL,
// CSV, TSV, image folders). Paths are checked up front so a typo fails in a second; after that, nothing about
// one sample or one damaged source stops the sequence: it becomes a sample with a problem.

import CapfiltParquet
import CapfiltWebDataset
import Foundation

/// Streams the samples a ``CorpusSpec`` names, in a fixed order: sources in the order the spec lists them
/// (brace patterns expanded left to right, folders of shards or lists sorted by file name in byte order), samples
/// in file order within each source. Memory is bounded by one sample (plus one CSV record or JSONL line, and one
/// folder listing per directory level for folder inputs).
///
/// Conventions, per layout:
/// - **webdataset**: the image is the first member whose extension is in `imageExtensions` (in that order); the
///   caption is the `captionExtension` member; a `json` member's text goes to `metadata["json"]`. Refused members
///   (links, unsafe names, oversize) are `problems`. A damaged shard yields its intact samples, then one sample
///   with image `.missing` and the tar error as its problem; the next shard follows. Position: `offset N`.
/// - **jsonl**: one object per line; blank lines skipped; strings decoded strictly (an invalid caption is
///   `.invalidUTF8`); Python's `NaN`/`Infinity` accepted; other columns kept as written (numbers as their text,
///   objects/arrays as their JSON text, `null` omitted). A malformed line is a sample with the parser's reason.
/// - **csv**: RFC 4180 as Python's `csv` reads it (quoted fields hold commas, `""` and line breaks, kept as
///   written; `"ab"c` reads `abc`); an empty caption field counts as missing, as pandas reads it as NaN;
///   duplicate header names become `name.1`, `name.2` (pandas). **tsv**: split on every tab, no quoting or
///   escapes (IANA text/tab-separated-values), so quotes are ordinary characters; lists whose fields hold tabs
///   or line breaks should be converted to JSONL or CSV. Both: the header is required and checked in `init`; a
///   row with the wrong number of fields is a problem sample, never shifted into the wrong columns.
/// - **all lists**: a UTF-8 BOM at the start is skipped; lines end at `\n` (`\r\n` too; a lone `\r` is not a line
///   break); positions are the 1-based line a record starts on; image paths resolve against the list's folder
///   (`..` allowed, absolute paths and `file://` URLs as they are, `http(s)://` refused with a reason); without
///   `keyColumn`, keys are the ordinal zero-padded to 9 digits.
/// - **folder**: images found recursively in byte order of their relative path (the same on every machine and
///   locale); names starting with `.` skipped; caption from the sidecar `<stem>.<captionExtension>`, metadata
///   from `<stem>.json`; key = relative path without extension. A link to a file inside the folder is read
///   through its target; a link leading outside, a dangling link or a link to a non-file is a problem sample;
///   linked folders are never descended; names that are not valid UTF-8 are problem samples.
///
/// Not thread-safe: one consumer pulls with ``next()``.
public final class CorpusReader {
    /// Shard members larger than this are refused (the sample's image goes missing with the reason) rather than
    /// loaded: web images are far smaller, and a hostile shard must not claim gigabytes.
    public static let defaultMaxMemberSize = 64 << 20

    /// The spec this reader was made from.
    public let spec: CorpusSpec
    /// Number of sources (shards, list files, folders) fully read, damaged or not.
    public private(set) var sourcesDone = 0

    private var options: CorpusOptions
    /// The spec's folder: relative paths resolve against it and `pipe:` commands run in it.
    private let base: String
    private let plans: [SourcePlan]
    private var nextPlan = 0
    private var current: SampleSource?
    private var ordinal = 0

    /// One source to read: the name users see, the path to open (or the `pipe:` command to run), or why it is
    /// refused without opening.
    struct SourcePlan: Sendable {
        let display: String
        let path: String
        let refusal: String?
        /// The shell command after `pipe:`; `path` is unused.
        var command: String? = nil
    }

    /// The prefix of a path that is a shell command whose standard output is the shard (webdataset's convention).
    public static let pipePrefix = "pipe:"

    /// Checks the spec and every path it names, without reading samples yet.
    ///
    /// Relative paths resolve against `baseDirectory` (the pipeline spec's folder); brace patterns expand as
    /// Python's `braceexpand` does; a folder given for `webdataset` (or a list kind) stands for its `.tar` (or
    /// `.jsonl`/`.csv`/`.tsv`) files sorted by name, hidden files skipped. CSV and TSV headers are read now, so a
    /// wrong column name fails here. `maxMemberSize` caps a shard member's bytes.
    ///
    /// Throws ``CorpusError`` naming the path or column: a missing path, a malformed pattern, a folder with no
    /// input files, a file where a folder is needed, a list without the image/caption/key column.
    public init(spec: CorpusSpec, baseDirectory: URL, maxMemberSize: Int = CorpusReader.defaultMaxMemberSize)
        throws(CorpusError) {
        self.spec = spec
        options = try CorpusOptions(spec, maxMemberSize: maxMemberSize)
        var base = baseDirectory.path
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        self.base = base
        if let root = spec.root {
            let path = root.hasPrefix("/") ? root : (base == "/" ? "/" + root : base + "/" + root)
            guard let real = FileSystem.realPath(path),
                  case .success(.directory) = FileSystem.kind(of: real, followingLinks: true) else {
                throw CorpusError(.pathNotFound, path: root, detail: "input.root must be an existing folder "
                    + "(resolved to \(path))")
            }
            options.rootReal = real
        }
        plans = try Self.plan(spec: spec, options: options, base: base)
    }

    /// The sources in read order, as the spec names them (patterns expanded, folder members appended).
    public var sources: [String] { plans.map(\.display) }

    /// Number of sources the input resolved to.
    public var sourceCount: Int { plans.count }

    /// The next sample, or nil when every source is done.
    ///
    /// Per-sample and per-source trouble is returned as data: a malformed list line, a refused tar member, a
    /// truncated or unreadable shard, a list file that vanished since `init` each become a sample with image
    /// `.missing(reason:)` and the details in `problems`, and reading moves on. Throws `.sourceFailed` when a
    /// `pipe:` command fails (after the samples it wrote whole); the next call goes on with the next source.
    public func next() throws(CorpusError) -> InputSample? {
        while true {
            if let source = current {
                if let sample = source.next(ordinal: ordinal) {
                    ordinal += 1
                    return sample
                }
                current = nil
                sourcesDone += 1
                if let failure = source.failure {
                    throw CorpusError(.sourceFailed, path: failure.source, detail: failure.detail)
                }
            }
            guard nextPlan < plans.count else { return nil }
            current = makeSource(plans[nextPlan])
            nextPlan += 1
        }
    }

    /// The samples of one source alone (`index` in ``sources`` order), numbered from 0 within it: how a worker
    /// reads the unit of work it claimed without touching the other sources. Same conventions as ``next()``.
    public func openSource(_ index: Int) -> SourceStream {
        SourceStream(makeSource(plans[index]))
    }

    private func makeSource(_ plan: SourcePlan) -> SampleSource {
        if let refusal = plan.refusal {
            let position = options.kind == .webdataset ? "offset 0" : options.kind == .parquet ? "row 0" : "line 1"
            return RefusedSource(location: SampleLocation(source: plan.display, position: position), reason: refusal)
        }
        switch options.kind {
        case .webdataset:
            return ShardSource(display: plan.display, path: plan.path, command: plan.command.map { ($0, base) },
                               options: options)
        case .jsonl: return JSONLSource(display: plan.display, path: plan.path, options: options)
        case .csv: return DelimitedSource(display: plan.display, path: plan.path, format: .csv, options: options)
        case .tsv: return DelimitedSource(display: plan.display, path: plan.path, format: .tsv, options: options)
        case .folder: return FolderSource(display: plan.display, path: plan.path, options: options)
        case .parquet: return ParquetSource(display: plan.display, path: plan.path, options: options)
        }
    }

    // MARK: Resolving the spec's paths

    /// File extensions a folder is scanned for, by kind.
    private static func memberExtension(_ kind: CorpusSpec.Kind) -> String {
        switch kind {
        case .webdataset: return "tar"
        case .jsonl: return "jsonl"
        case .csv: return "csv"
        case .tsv: return "tsv"
        case .parquet: return "parquet"
        case .folder: return ""
        }
    }

    private static func plan(spec: CorpusSpec, options: CorpusOptions, base: String) throws(CorpusError)
        -> [SourcePlan] {
        var plans: [SourcePlan] = []
        for written in spec.paths {
            let names: [String]
            do {
                names = try BracePattern.expand(written)
            } catch {
                let detail = (error as? BracePatternError).map {
                    "character \($0.position) of the pattern: \($0.reason)"
                }
                throw CorpusError(.badPattern, path: written, detail: detail ?? "\(error)")
            }
            for name in names {
                if name.isEmpty { throw CorpusError(.invalidSpec, path: written, detail: "an input path is empty") }
                if name.contains("\0") {
                    throw CorpusError(.invalidSpec, path: written, detail: "an input path contains a NUL byte")
                }
                if name.hasPrefix(pipePrefix) {
                    plans.append(try pipePlan(name, options: options))
                    continue
                }
                let path = name.hasPrefix("/") ? name : (base == "/" ? "/" + name : base + "/" + name)
                plans.append(contentsOf: try resolve(name: name, path: path, options: options))
            }
        }
        if options.kind != .folder {
            for plan in plans where plan.refusal == nil && plan.command == nil {
                if let sniffed = SniffedFileKind.of(path: plan.path), !sniffed.fits(options.kind) {
                    throw CorpusError(.wrongFileKind, path: plan.display, detail: "input.kind is '\(options.kind.rawValue)' "
                        + "but this looks like \(sniffed.description)")
                }
            }
        }
        if options.kind == .csv || options.kind == .tsv {
            for plan in plans where plan.refusal == nil {
                try checkHeader(plan, format: options.kind == .csv ? .csv : .tsv, options: options)
            }
        }
        if options.kind == .parquet {
            for plan in plans where plan.refusal == nil { try checkParquet(plan, options: options) }
        }
        return plans
    }

    /// A `pipe:` path: webdataset shards only (a list is read more than once, a Parquet file from its end).
    /// Only paths the spec writes are commands; names found in folders or lists never are.
    private static func pipePlan(_ name: String, options: CorpusOptions) throws(CorpusError) -> SourcePlan {
        let command = String(name.dropFirst(pipePrefix.count))
        guard options.kind == .webdataset else {
            throw CorpusError(.invalidSpec, path: name, detail: "pipe: inputs stream webdataset shards, but input.kind "
                + "is '\(options.kind.rawValue)', whose files are read more than once or from their end; download "
                + "the file and name its path")
        }
        guard command.contains(where: { !$0.isWhitespace }) else {
            throw CorpusError(.invalidSpec, path: name, detail: "the pipe: input has no command after \"pipe:\"")
        }
        return SourcePlan(display: name, path: "", refusal: nil, command: command)
    }

    /// The sources one expanded path stands for.
    private static func resolve(name: String, path: String, options: CorpusOptions) throws(CorpusError)
        -> [SourcePlan] {
        switch FileSystem.kind(of: path, followingLinks: true) {
        case .failure(let failure):
            if failure.isNotFound {
                let resolved = name == path ? "" : " (resolved to \(path))"
                throw CorpusError(.pathNotFound, path: name, detail: "no such file or folder\(resolved)")
            }
            throw CorpusError(.unreadable, path: name, detail: "cannot be examined (\(failure))")
        case .success(.regular):
            if options.kind == .folder {
                throw CorpusError(.wrongPathType, path: name, detail: "is a file, but input kind 'folder' needs a "
                    + "folder of images; use kind 'webdataset', 'jsonl', 'csv' or 'tsv' for a file")
            }
            return [SourcePlan(display: name, path: path, refusal: nil)]
        case .success(.directory):
            if options.kind == .folder { return [SourcePlan(display: name, path: path, refusal: nil)] }
            return try members(ofFolder: name, path: path, options: options)
        case .success(let kind):
            throw CorpusError(.wrongPathType, path: name, detail: "is a \(FileSystem.describe(kind)), not a file "
                + "or folder")
        }
    }

    /// A folder's shards or lists, sorted by name in byte order. Links leading outside the folder are refused
    /// (each becomes one problem sample), as for image folders.
    private static func members(ofFolder name: String, path: String, options: CorpusOptions) throws(CorpusError)
        -> [SourcePlan] {
        let ext = memberExtension(options.kind)
        let entries: [DirectoryEntry]
        switch FileSystem.list(path) {
        case .success(let listed): entries = listed
        case .failure(let failure):
            throw CorpusError(.unreadable, path: name, detail: "the folder cannot be listed (\(failure))")
        }
        let prefix = name.hasSuffix("/") ? name : name + "/"
        let folderReal = FileSystem.realPath(path) ?? path
        var plans: [SourcePlan] = []
        var others = 0
        for entry in entries.sorted(by: { $0.name.lexicographicallyPrecedes($1.name) }) {
            guard entry.name.first != UInt8(ascii: "."), let file = entry.text,
                  file.lowercased().hasSuffix("." + ext) else {
                others += 1
                continue
            }
            let display = prefix + file
            let memberPath = path + "/" + file
            switch entry.kind {
            case .regular:
                plans.append(SourcePlan(display: display, path: memberPath, refusal: nil))
            case .symlink:
                let target = FileSystem.realPath(memberPath)
                let refusal: String?
                if let target, FileSystem.isInside(target, root: folderReal) {
                    let kind = try? FileSystem.kind(of: target, followingLinks: false).get()
                    refusal = kind?.isRegular == true ? nil : "symbolic link to something other than a regular file"
                } else if let target {
                    refusal = "symbolic link leading outside \(prefix) (to \(target)); links are never followed out "
                        + "of an input folder: name the file in the spec's paths instead"
                } else {
                    refusal = "broken symbolic link; nothing to read"
                }
                plans.append(SourcePlan(display: display, path: memberPath, refusal: refusal))
            case .directory, .other:
                plans.append(SourcePlan(display: display, path: memberPath,
                                        refusal: "is a \(FileSystem.describe(entry.kind)), not a .\(ext) file"))
            }
        }
        if plans.isEmpty {
            throw CorpusError(.noInputFiles, path: name, detail: "the folder has no .\(ext) files for input kind "
                + "'\(options.kind.rawValue)' (\(others) other entries)")
        }
        return plans
    }

    /// Reads a Parquet file's footer now, so a wrong column name (or a table of URLs) fails before any work is
    /// done. A damaged footer is left to the source, which reports it as a problem sample.
    private static func checkParquet(_ plan: SourcePlan, options: CorpusOptions) throws(CorpusError) {
        guard let file = try? ParquetFile(path: plan.path) else { return }
        let layout: ParquetLayout
        switch ParquetLayout.make(schema: file.schema, options: options) {
        case .failure(let why): throw CorpusError(.missingColumn, path: plan.display, detail: why.reason)
        case .success(let made): layout = made
        }
        // A path column of URLs: say how to download them, once, rather than refusing every row.
        guard case .path(let column) = layout.image, let first = file.rowGroups.firstIndex(where: { $0.rowCount > 0 }),
              let values = try? file.readRowGroup(first, columns: [column])[column] else { return }
        let sample = (0..<min(values.rowCount, 100)).compactMap { values.string(at: $0) }
        if let url = sample.first(where: { $0.hasPrefix("http://") || $0.hasPrefix("https://") || $0.hasPrefix("s3://") }) {
            throw CorpusError(.imagesNotDownloaded, path: plan.display, detail: "column \"\(column)\" holds URLs (such as "
                + "\(url.prefix(80).debugDescription)); " + ParquetLayout.downloadAdvice(column))
        }
    }

    /// Reads a CSV/TSV header now, so a wrong column name fails before any work is done.
    private static func checkHeader(_ plan: SourcePlan, format: DelimitedFormat, options: CorpusOptions)
        throws(CorpusError) {
        let header: DelimitedParser.Header
        do throws(SystemFailure) {
            header = try DelimitedParser(format: format).header(LineReader(path: plan.path))
        } catch {
            throw CorpusError(.unreadable, path: plan.display, detail: "cannot be read (\(error))")
        }
        switch header {
        case .unusable(let reason):
            throw CorpusError(.noHeader, path: plan.display, detail: reason)
        case .columns(let names):
            if let reason = DelimitedParser.missingColumns(in: names, options: options) {
                throw CorpusError(.missingColumn, path: plan.display, detail: reason)
            }
        }
    }
}

/// What a file was when a run read it: enough to tell, with one `stat`, that it changed since.
public struct FileIdentity: Sendable, Equatable, CustomStringConvertible {
    public var size: Int64
    /// Modification time in nanoseconds since the epoch.
    public var modifiedNanoseconds: Int64

    public init(size: Int64, modifiedNanoseconds: Int64) {
        self.size = size
        self.modifiedNanoseconds = modifiedNanoseconds
    }

    /// The identity of the file at `path` (links followed), or nil when there is none.
    public static func of(_ path: String) -> FileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileIdentity(size: Int64(info.st_size),
                            modifiedNanoseconds: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
    }

    /// "266240 bytes, modified 2026-12-03T08:10:37.521000123Z": nanoseconds shown, since they may be all that differs.
    public var description: String {
        let seconds = modifiedNanoseconds.quotientAndRemainder(dividingBy: 1_000_000_000)
        var stamp = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(seconds.quotient)))
        if stamp.hasSuffix("Z") { stamp.removeLast() }
        let fraction = String(seconds.remainder)
        return "\(size) bytes, modified \(stamp).\(String(repeating: "0", count: 9 - fraction.count))\(fraction)Z"
    }
}

extension CorpusReader {
    /// A Parquet source's row groups' row counts, from its footer; nil for other kinds, for a source refused before
    /// opening, and for a file whose footer cannot be read (the source yields one problem sample instead).
    public func parquetRowGroups(ofSource index: Int) -> [Int]? {
        let plan = plans[index]
        guard options.kind == .parquet, plan.refusal == nil,
              case .ready(let file, _) = ParquetOpening.open(path: plan.path, options: options) else { return nil }
        return file.rowGroups.map(\.rowCount)
    }

    /// The sources in read order: the name as the spec gives it, and the path opened (nil for a source refused
    /// before opening, such as a link leading out of a shard folder, and for a `pipe:` command, which is no file).
    public var sourceFiles: [(display: String, path: String?)] {
        plans.map { ($0.display, $0.refusal == nil && $0.command == nil ? $0.path : nil) }
    }
}

/// The samples of one source, numbered 0, 1, 2, ... within it (see ``CorpusReader/openSource(_:)``).
/// Not thread-safe: one consumer pulls with ``next()``.
public final class SourceStream {
    private var source: SampleSource?
    private var position = 0

    init(_ source: SampleSource) { self.source = source }

    /// Why the source stopped before its end (a `pipe:` command that failed), once ``next()`` returned nil.
    public private(set) var failure: SourceFailure?

    /// The next sample, or nil when the source is done (look at ``failure`` then).
    public func next() -> InputSample? {
        guard let source else { return nil }
        guard let sample = source.next(ordinal: position) else {
            failure = source.failure
            self.source = nil
            return nil
        }
        position += 1
        return sample
    }

    /// Reads past `count` samples (cheap for lists and folders, whose images are opened only when read, and for
    /// Parquet, whose whole row groups are skipped unread).
    /// Returns how many were actually there.
    @discardableResult
    public func skip(_ count: Int) -> Int {
        guard let source else { return 0 }
        let skipped = source.skip(count)
        position += skipped
        if skipped < count {
            failure = source.failure
            self.source = nil
        }
        return skipped
    }
}
