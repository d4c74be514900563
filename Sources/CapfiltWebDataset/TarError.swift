// Errors for tar reading and writing. A damaged shard is the caller's to record and skip, so every error names
// the shard, the byte offset where the damage starts, and what to do about it.

/// A tar archive could not be opened, read or written.
///
/// Per-member trouble (unsafe names, links, oversize members) is *not* an error: it is reported as data by
/// ``TarReader/next()`` and ``WebDatasetReader/nextSample()``. A `TarError` means the archive as a whole cannot be
/// read past ``offset``; members returned before the error are intact.
public struct TarError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong.
    public enum Kind: Sendable, Equatable {
        /// The file could not be opened or created.
        case cannotOpen
        /// The operating system reported an I/O error while reading.
        case readFailed
        /// The file is empty: a tar archive holds at least one header or end-of-archive block.
        case emptyArchive
        /// The archive ends inside a header, a member's data, or between an extended header and its member.
        case truncated
        /// A header block's checksum does not match its contents.
        case badChecksum
        /// A header field that frames the archive (size, extended-header record) cannot be parsed.
        case badHeader
        /// The operating system reported an I/O error while writing or syncing.
        case writeFailed
        /// ``TarWriter/add(name:bytes:)`` was given a name that readers would refuse.
        case invalidMemberName
        /// An argument is out of the range the format can hold.
        case invalidArgument
        /// ``TarWriter/add(name:bytes:)`` was called after ``TarWriter/finish()``.
        case writerFinished
        /// The program whose output is the archive (a `pipe:` input's command) failed: it could not start, or it
        /// exited with an error status or on a signal. What it wrote may be incomplete, so none of it is trusted
        /// past the samples already returned.
        case streamFailed
    }

    /// What went wrong.
    public let kind: Kind
    /// The archive's path.
    public let path: String
    /// Byte offset of the header block where the problem starts, when there is one.
    public let offset: Int64?
    /// The specifics: which member, which field, how many bytes were expected.
    public let detail: String

    public init(_ kind: Kind, path: String, offset: Int64? = nil, detail: String) {
        self.kind = kind
        self.path = path
        self.offset = offset
        self.detail = detail
    }

    public var description: String {
        let location = offset.map { "\(path) at byte \($0)" } ?? path
        return "\(location): \(detail). \(advice)"
    }

    /// What the operator should do; the message ends with it.
    private var advice: String {
        switch kind {
        case .cannotOpen:
            return "Check that the path exists and is readable (or that its directory is writable)."
        case .readFailed:
            return "Check the disk or network filesystem, then retry the shard."
        case .emptyArchive:
            return "The shard was probably created but never written (a killed writer); regenerate or re-download it."
        case .truncated:
            return "The shard was cut short (often a killed writer or an interrupted copy); regenerate or "
                + "re-download it. Members before this offset are intact."
        case .badChecksum:
            return "The header is corrupt (disk or transfer damage); regenerate or re-download the shard. "
                + "Members before this offset are intact."
        case .badHeader:
            return "The header is malformed; regenerate the shard with a standard tar writer. "
                + "Members before this offset are intact."
        case .writeFailed:
            return "Check free space and permissions on the output directory, then rerun the shard."
        case .invalidMemberName:
            return "Use a relative name of safe path components, e.g. '000123.jpg'."
        case .invalidArgument:
            return "Pass a value within the documented range."
        case .writerFinished:
            return "Create a new TarWriter for the next shard."
        case .streamFailed:
            return "Run the command in a shell to see why it fails (credentials, network, a wrong URL), then retry the shard."
        }
    }
}
