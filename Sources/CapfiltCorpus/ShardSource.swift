// Samples from one webdataset shard, in tar order. A damaged shard is not an error for the run: the samples
// before the damage come as usual, then one problem sample says where and why the rest was lost.

import CapfiltWebDataset
import Foundation

/// One source of samples: a shard, a list file, a folder tree. Sources never throw; what goes wrong is a sample.
protocol SampleSource: AnyObject {
    /// The next sample, numbered `ordinal`, or nil when the source is exhausted.
    func next(ordinal: Int) -> InputSample?
    /// Reads past up to `count` samples; returns how many there were. Sources that can skip without reading
    /// (Parquet row groups) do; the others read and drop (`skipBySamples`).
    func skip(_ count: Int) -> Int
    /// Why the source ended before its end, when it could not be read through for a reason outside the input's
    /// bytes (a `pipe:` command that failed): set once `next` returned nil. A retry may succeed, so this is not a
    /// problem sample, which would be committed as the input's truth.
    var failure: SourceFailure? { get }
}

extension SampleSource {
    func skip(_ count: Int) -> Int { skipBySamples(count) }
    var failure: SourceFailure? { nil }

    /// Reads past up to `count` samples one by one.
    func skipBySamples(_ count: Int) -> Int {
        var skipped = 0
        while skipped < count, next(ordinal: 0) != nil { skipped += 1 }
        return skipped
    }
}

/// A source that yields one problem sample and ends: for an input refused before it is opened (a shard-folder
/// member that is a symlink leading outside the folder).
final class RefusedSource: SampleSource {
    private let location: SampleLocation
    private let reason: String
    private var done = false

    init(location: SampleLocation, reason: String) {
        self.location = location
        self.reason = reason
    }

    func next(ordinal: Int) -> InputSample? {
        if done { return nil }
        done = true
        return .problem(ordinal: ordinal, key: "(refused source)", location: location, reason: reason,
                        problem: "\(location.source): \(reason)", cause: .sourceRefused)
    }
}

/// A source that could not be read through, and why (see ``SampleSource/failure``).
public struct SourceFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The source as the spec names it.
    public let source: String
    /// What happened, without the source's name: "the command exited with status 1 after writing 0 bytes; ...".
    public let detail: String
    /// The whole message: the source, what happened, what to do.
    public let description: String
}

/// Reads one shard through ``WebDatasetReader``: a file, or the output of a `pipe:` command.
final class ShardSource: SampleSource {
    private let display: String
    private let path: String
    /// The shell command whose output is the shard (a `pipe:` input), run in `directory`.
    private let command: (text: String, directory: String)?
    private let options: CorpusOptions
    private var reader: WebDatasetReader?
    private var done = false
    private(set) var failure: SourceFailure?

    init(display: String, path: String, command: (text: String, directory: String)? = nil, options: CorpusOptions) {
        self.display = display
        self.path = path
        self.command = command
        self.options = options
    }

    private func open() throws -> WebDatasetReader {
        guard let command else {
            return try WebDatasetReader(url: URL(fileURLWithPath: path), maxMemberSize: options.maxMemberSize)
        }
        let stream = try CommandStream(command: command.text, display: display, directory: command.directory)
        return WebDatasetReader(stream: stream, name: display, maxMemberSize: options.maxMemberSize)
    }

    func next(ordinal: Int) -> InputSample? {
        if done { return nil }
        do {
            let reader = try self.reader ?? open()
            self.reader = reader
            guard let sample = try reader.nextSample() else {
                done = true
                self.reader = nil
                return nil
            }
            return makeSample(sample, ordinal: ordinal)
        } catch let error as TarError where error.kind == .streamFailed {
            done = true
            reader = nil
            failure = SourceFailure(source: display, detail: error.detail, description: error.description)
            return nil
        } catch {
            // The tar reader is finished after any error; this sample stands for everything after the damage.
            done = true
            reader = nil
            return damageSample(error, ordinal: ordinal)
        }
    }

    private func makeSample(_ sample: WebDatasetSample, ordinal: Int) -> InputSample {
        var problems = sample.problems
        let image: ImagePayload
        if let ext = options.imageExtensions.first(where: { sample.members[$0] != nil }),
           let bytes = sample.members[ext] {
            image = .bytes(bytes, fileExtension: ext)
        } else if let (ext, size) = options.imageExtensions.lazy.compactMap({ ext in sample.oversize[ext].map { (ext, $0) } }).first {
            image = .refused(reason: "the .\(ext) member has \(size) bytes, over the \(options.maxMemberSize)-byte "
                + "limit (limits.max_image_bytes); not read", cause: .memberTooLarge)
        } else if !sample.problems.isEmpty && sample.members.keys.allSatisfy({ !options.imageExtensions.contains($0) }) {
            image = .refused(reason: sample.members.isEmpty ? "no member of this sample was accepted (see problems)"
                                 : "its image member was refused (see problems)", cause: .memberRefused)
        } else {
            let found = sample.members.keys.sorted().map { "." + $0 }.joined(separator: ", ")
            let wanted = options.imageExtensions.map { "." + $0 }.joined(separator: ", ")
            image = .missing(reason: "no image member (found \(found)); expected one of \(wanted)")
        }
        let text = sample.members[options.captionExtension].map(TextField.decoding) ?? .missing
        var metadata: [String: String] = [:]
        if let json = sample.members["json"] {
            if let raw = String(validating: json, as: UTF8.self) {
                metadata["json"] = raw
            } else {
                problems.append(".json member is not valid UTF-8 (\(json.count) bytes); metadata dropped")
            }
        }
        return InputSample(ordinal: ordinal, sourceKey: sample.key,
                           location: SampleLocation(source: display, position: "offset \(sample.firstHeaderOffset)"),
                           image: image, text: text, metadata: metadata, problems: problems)
    }

    private func damageSample(_ error: Error, ordinal: Int) -> InputSample {
        let offset = (error as? TarError)?.offset
        let position = offset.map { "offset \($0)" } ?? "offset 0"
        let reason: String
        switch (error as? TarError)?.kind {
        case .cannotOpen?: reason = "the shard cannot be opened; none of its samples were read"
        case .emptyArchive?: reason = "the shard is empty (0 bytes); none of its samples were read"
        default: reason = "the shard is damaged at byte \(offset ?? 0); samples from there on were not read"
        }
        return InputSample.problem(ordinal: ordinal, key: "(damaged shard at byte \(offset ?? 0))",
                                   location: SampleLocation(source: display, position: position), reason: reason,
                                   problem: Self.describe(error, display: display),
                                   cause: (error as? TarError)?.kind == .cannotOpen ? .sourceRefused : .shardDamaged)
    }

    /// The error's text with the shard named as the spec names it, so problem lines do not depend on the mount.
    static func describe(_ error: Error, display: String) -> String {
        guard let tar = error as? TarError else { return "\(display): \(error)" }
        return TarError(tar.kind, path: display, offset: tar.offset, detail: tar.detail).description
    }
}
