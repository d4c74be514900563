// Groups a shard's members into webdataset samples the way webdataset's `group_by_keys` does, and refuses
// hostile members per sample (recorded, never extracted, never thrown) so one bad member cannot cost a shard.

import Foundation

/// One webdataset sample: the run of adjacent members that share a key.
public struct WebDatasetSample: Sendable, Equatable {
    /// The member path up to the first dot of its base name, directory included: `train/000000123`.
    public let key: String
    /// Member bytes by extension: everything after the first dot of the base name, lowercased as webdataset does
    /// by default (`000001.seg.PNG` -> `seg.png`).
    public var members: [String: [UInt8]]
    /// Refused members, one line each: unsafe names, links, devices, fifos, duplicates, oversize members. A sample
    /// may have problems and no members (a hostile member on its own).
    public var problems: [String]
    /// Path of the shard it came from.
    public let shard: String
    /// Header offset of the sample's first member, for error reports and resume bookkeeping.
    public let firstHeaderOffset: Int64
    /// Members refused for their size (extension → bytes claimed): their data was never loaded.
    public var oversize: [String: Int]

    public init(key: String, members: [String: [UInt8]], problems: [String], shard: String, firstHeaderOffset: Int64,
                oversize: [String: Int] = [:]) {
        self.key = key
        self.oversize = oversize
        self.members = members
        self.problems = problems
        self.shard = shard
        self.firstHeaderOffset = firstHeaderOffset
    }
}

/// webdataset's key rule, kept in one place.
public enum WebDatasetKey {
    /// Splits a member name into (key, extension) like webdataset's `base_plus_ext`: the key is the path up to the
    /// first dot of the base name, the extension everything after it. Nil when the base name has no dot, or
    /// starts with one (webdataset skips such members; for `dir/.hidden` its regex would yield key `dir/`, which
    /// we treat as keyless instead).
    public static func split(_ name: String) -> (key: String, extension: String)? {
        let bytes = Array(name.utf8)
        let baseStart = (bytes.lastIndex(of: UInt8(ascii: "/")) ?? -1) + 1
        guard let dot = bytes[baseStart...].firstIndex(of: UInt8(ascii: ".")), dot > baseStart else { return nil }
        // Splitting at ASCII bytes keeps both halves valid UTF-8.
        let key = String(decoding: bytes[..<dot], as: UTF8.self)
        let ext = String(decoding: bytes[(dot + 1)...], as: UTF8.self)
        return (key, ext)
    }
}

/// Groups adjacent members sharing a key into samples.
///
/// Mirrors webdataset: extensions are lowercased; keyless members (no dot in the base name, `__meta__` files)
/// and directories are skipped without ending the current sample. Unsafe names, links, devices and fifos are
/// refused *per sample*, never extracted and never thrown:
/// - a regular file with an unsafe name groups like any file (webdataset would group it), so it lands in the
///   `problems` of its key's sample, which may then have no members;
/// - links, devices, fifos and keyless refused files do not end the current sample (webdataset skips them): they
///   join its `problems` if their key matches, else the next sample's if that has their key, else they form a
///   problem-only sample emitted after the current one, keyed by their key or, lacking one, their full name.
/// Duplicate extensions keep the first member.
public final class WebDatasetReader {
    /// The shard's path, copied into every sample.
    public let shard: String
    /// Members skipped because they have no webdataset key (no dot in the base name), e.g. `README`.
    public private(set) var ignoredMemberCount = 0

    /// Bounds on bookkeeping for hostile shards (see `add`).
    static let maxDeferred = 1024
    static let maxProblemsPerSample = 100

    private let tar: TarReader
    private var current: WebDatasetSample?
    /// Problem-only samples for refused links/devices that arrived while `current` was being built.
    private var deferred: [WebDatasetSample] = []
    private var ready: [WebDatasetSample] = []
    private var readyIndex = 0
    private var exhausted = false
    /// The archive's error, thrown once the samples read before it have been returned.
    private var damage: Error?

    /// Opens a shard. `maxMemberSize` bounds the bytes loaded for one member (see ``TarReader``).
    public init(url: URL, maxMemberSize: Int = 512 << 20) throws {
        tar = try TarReader(url: url, maxMemberSize: maxMemberSize)
        shard = url.path
    }

    /// Reads the shard `stream` produces (see ``TarReader/init(stream:name:maxMemberSize:)``). When the stream
    /// fails, the sample being built is dropped rather than returned with a problem: its members may be cut short
    /// by the failure, not by damage in the shard, and a retry reads it whole.
    public init(stream: ByteStream, name: String, maxMemberSize: Int = 512 << 20) {
        tar = TarReader(stream: stream, name: name, maxMemberSize: maxMemberSize)
        shard = name
    }

    /// Next sample, or nil when the shard is done. Throws ``TarError`` when the archive itself is damaged, after
    /// every sample read before the damage: the one being built then comes with its intact members and a
    /// problem saying that members after them may be lost (Python's tarfile reads those members too).
    public func nextSample() throws -> WebDatasetSample? {
        while readyIndex == ready.count {
            ready.removeAll(keepingCapacity: true)
            readyIndex = 0
            if let damage {
                self.damage = nil
                throw damage
            }
            if exhausted { return nil }
            do {
                if let member = try tar.next() {
                    add(entry: member.entry, data: member.data, problem: member.problem)
                } else {
                    exhausted = true
                    closeCurrent()
                }
            } catch let error as TarError where error.kind == .streamFailed {
                exhausted = true
                current = nil
                deferred.removeAll()
                damage = error
            } catch {
                exhausted = true
                let offset = (error as? TarError)?.offset.map { " at byte \($0)" } ?? ""
                current?.record("the shard is damaged\(offset), after this sample's last intact member; members "
                    + "that followed are lost")
                closeCurrent()
                damage = error
            }
        }
        let sample = ready[readyIndex]
        readyIndex += 1
        return sample
    }

    // MARK: Grouping

    private func add(entry: TarEntry, data: [UInt8], problem: String?) {
        if entry.kind == .directory { return }
        let split = WebDatasetKey.split(entry.name)
        let refusal = problem ?? MemberName.unsafeReason(entry.name) ?? Self.kindRefusal(entry)

        guard entry.kind == .file, let split else {
            // Not a sample member for webdataset: a keyless file or a link/device/fifo/unknown type.
            guard let refusal else {
                ignoredMemberCount += 1
                return
            }
            let key = split?.key ?? entry.name
            let line = Self.describe(entry, refusal)
            if current?.key == key {
                current?.record(line)
            } else if let last = deferred.indices.last, deferred[last].key == key {
                deferred[last].record(line)
            } else {
                deferred.append(problemSample(key: key, line: line, entry: entry))
                // A shard of nothing but distinct symlinks inside one sample must not grow memory without bound;
                // past this many, emit them now, ahead of the sample they interrupted.
                if deferred.count >= Self.maxDeferred {
                    ready.append(contentsOf: deferred)
                    deferred.removeAll()
                }
            }
            return
        }

        if current?.key != split.key {
            // Refused links/devices just before this key's first file belong to this sample (a symlinked
            // `000002.jpg` followed by `000002.txt`): webdataset would have skipped them inside the same run.
            let adopted = deferred.filter { $0.key == split.key }
            deferred.removeAll { $0.key == split.key }
            closeCurrent()
            current = WebDatasetSample(key: split.key, members: [:], problems: adopted.flatMap(\.problems),
                                       shard: shard,
                                       firstHeaderOffset: adopted.first?.firstHeaderOffset ?? entry.headerOffset)
        }
        let ext = split.extension.lowercased()
        if let refusal {
            current?.record(Self.describe(entry, refusal))
            if entry.size > tar.maxMemberSize && current?.oversize[ext] == nil { current?.oversize[ext] = entry.size }
        } else if current?.members[ext] != nil {
            current?.record(Self.describe(entry, "duplicate '.\(ext)' member in this sample; kept the first"))
        } else {
            current?.members[ext] = data
        }
    }

    private func closeCurrent() {
        if let sample = current { ready.append(sample) }
        current = nil
        ready.append(contentsOf: deferred)
        deferred.removeAll()
    }

    private func problemSample(key: String, line: String, entry: TarEntry) -> WebDatasetSample {
        WebDatasetSample(key: key, members: [:], problems: [line], shard: shard, firstHeaderOffset: entry.headerOffset)
    }

    /// Why a member of this kind is never extracted; nil for regular files.
    private static func kindRefusal(_ entry: TarEntry) -> String? {
        switch entry.kind {
        case .file, .directory: return nil
        case .symlink: return "symbolic link to '\(entry.linkName)'; links are never followed"
        case .hardlink: return "hard link to '\(entry.linkName)'; links are never followed"
        case .characterDevice: return "character device; only regular files are read"
        case .blockDevice: return "block device; only regular files are read"
        case .fifo: return "fifo; only regular files are read"
        case .other(let flag):
            let shown = flag >= 0x20 && flag < 0x7f ? "'\(Character(Unicode.Scalar(flag)))'" : "0x\(String(flag, radix: 16))"
            return "unsupported member type \(shown); only regular files are read"
        }
    }

    private static func describe(_ entry: TarEntry, _ reason: String) -> String {
        // Names may hold control characters; debugDescription escapes them so the line stays one line.
        "\(entry.name.debugDescription) at byte \(entry.headerOffset): \(reason); refused"
    }
}

extension WebDatasetSample {
    /// Appends a problem line, keeping at most `WebDatasetReader.maxProblemsPerSample` plus one summary line, so a
    /// run of a million duplicates costs a counter, not a million strings.
    mutating func record(_ line: String) {
        let limit = WebDatasetReader.maxProblemsPerSample
        if problems.count < limit {
            problems.append(line)
        } else if problems.count == limit {
            problems.append("1 more problem omitted")
        } else if let summary = problems.last, let count = Int(summary.prefix { $0 != " " }) {
            problems[problems.count - 1] = "\(count + 1) more problems omitted"
        }
    }
}
