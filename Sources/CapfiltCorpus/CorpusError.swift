// Input-level errors: the spec or the paths it names are wrong, found before any sample is read. Everything
// that goes wrong with one sample (or one damaged shard) is data on the sample instead, never one of these.

/// The corpus spec cannot be read as written. The message names the path or column and ends with what to do.
public struct CorpusError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What is wrong.
    public enum Kind: Sendable, Equatable {
        /// The spec itself is inconsistent (no paths, empty extension, one column named twice).
        case invalidSpec
        /// A brace pattern does not parse.
        case badPattern
        /// A path does not exist.
        case pathNotFound
        /// A path exists but is the wrong type for the kind (a file where a folder is needed, a fifo, ...).
        case wrongPathType
        /// A folder holds none of the files the kind reads (no `.tar` shards, no `.jsonl` lists).
        case noInputFiles
        /// A path exists but cannot be opened or listed (permissions, I/O error).
        case unreadable
        /// A CSV/TSV list has no header row.
        case noHeader
        /// A CSV/TSV header or a Parquet schema lacks a column the spec names.
        case missingColumn
        /// A file is not of the input kind the spec gives (a Parquet file as `webdataset`, COCO JSON as `jsonl`),
        /// or holds what capfilt cannot read as is (a table of image URLs).
        case wrongFileKind
        /// The input names its images by URL: they must be downloaded first.
        case imagesNotDownloaded
        /// A `pipe:` command failed (could not start, exited with an error status or on a signal) while its shard
        /// was read: the source's samples from there on are not read. A retry may succeed.
        case sourceFailed
    }

    /// What is wrong.
    public let kind: Kind
    /// The path as the spec writes it (pattern expanded), when one is involved.
    public let path: String?
    /// The specifics: which column, which columns were found, the operating system's reason.
    public let detail: String

    public init(_ kind: Kind, path: String? = nil, detail: String) {
        self.kind = kind
        self.path = path
        self.detail = detail
    }

    public var description: String {
        (path.map { "\($0): " } ?? "") + detail + ". " + advice
    }

    /// What the operator should do; the message ends with it.
    private var advice: String {
        switch kind {
        case .invalidSpec:
            return "Fix the input section of the pipeline spec."
        case .badPattern:
            return "Write shard ranges as {00000..00099} or lists as {a,b}, as for webdataset and img2dataset."
        case .pathNotFound:
            return "Check the path (relative paths are resolved against the pipeline spec's folder) and that the "
                + "volume is mounted."
        case .wrongPathType:
            return "Point the spec at a regular file or a folder, as the input kind needs."
        case .noInputFiles:
            return "Check the folder and the input kind in the spec, or list the files explicitly."
        case .unreadable:
            return "Check the permissions of the path and its folders, then rerun."
        case .noHeader:
            return "Add a header row naming the columns (e.g. image,caption) or convert the list to JSONL."
        case .missingColumn:
            return "Set input.image_column / input.caption_column / input.key_column in the spec to one of the "
                + "columns found, or fix the header row."
        case .wrongFileKind:
            return "Set input.kind to what the file is, or convert the file."
        case .imagesNotDownloaded:
            return "Download the images first, then point capfilt at what the downloader wrote."
        case .sourceFailed:
            return "Run the command in a shell to see why it fails (credentials, network, a wrong URL), then read the source again."
        }
    }
}
