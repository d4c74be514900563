// The input half of a pipeline spec: which layout, which paths, which columns or member extensions. Plain data;
// CorpusReader checks it once, up front, so a typo fails before hours of work rather than during them.

/// What the pipeline spec says about the input corpus.
public struct CorpusSpec: Sendable, Equatable {
    /// The input layouts users have.
    public enum Kind: String, Sendable, CaseIterable, Codable {
        /// webdataset tar shards (img2dataset's `output_format="webdataset"`).
        case webdataset
        /// One JSON object per line.
        case jsonl
        /// Comma-separated values with a header row, RFC 4180 quoting.
        case csv
        /// Tab-separated values with a header row, no quoting (IANA text/tab-separated-values).
        case tsv
        /// A directory tree of images with optional caption sidecars (img2dataset's `output_format="files"`).
        case folder
        /// Parquet files: Hugging Face image datasets (an image struct `{bytes, path}`), img2dataset's
        /// `output_format="parquet"` (image bytes in a binary column), or metadata tables naming image files.
        case parquet
    }

    /// Input layout.
    public var kind: Kind
    /// Files, folders or brace patterns such as `"data/{00000..00099}.tar"`, relative to the spec's base directory
    /// or absolute. For `webdataset`, a folder stands for its `.tar` files sorted by name; for the list kinds, a
    /// folder stands for its `.jsonl` / `.csv` / `.tsv` files sorted by name; for `folder`, each path is a tree.
    /// For `webdataset`, a path `pipe:COMMAND` is a shell command whose standard output is the shard
    /// (`pipe:aws s3 cp s3://bucket/{00000..00099}.tar -`), run in the base directory when its shard is read.
    public var paths: [String]
    /// List or Parquet column holding the image: a path (relative to the list file's folder, or absolute) or, for
    /// Parquet, image bytes or a Hugging Face image struct `{bytes, path}`.
    public var imageColumn: String
    /// List column holding the caption.
    public var captionColumn: String
    /// List column holding the sample key; nil derives keys from ordinals.
    public var keyColumn: String?
    /// Shard member extension, or folder sidecar extension, that holds the caption.
    public var captionExtension: String
    /// Image member or file extensions, most preferred first (a shard sample with both `.jpg` and `.png` members
    /// uses the one listed first here). Compared case-insensitively.
    public var imageExtensions: [String]
    /// The folder list inputs may name image files in (relative to the base directory, or absolute). nil: each
    /// list file's own folder. A path resolving outside it (`..`, an absolute path, a link) is refused per sample
    /// with `path_outside_root`: a list from a stranger must not pull other files of the machine into a dataset.
    public var root: String? = nil
    /// Lets lists name any file this user can read (the explicit opt-out of `root`).
    public var allowAnyPath = false

    public init(kind: Kind, paths: [String], imageColumn: String = "image", captionColumn: String = "caption",
                keyColumn: String? = nil, captionExtension: String = "txt",
                imageExtensions: [String] = ["jpg", "jpeg", "png", "webp"]) {
        self.kind = kind
        self.paths = paths
        self.imageColumn = imageColumn
        self.captionColumn = captionColumn
        self.keyColumn = keyColumn
        self.captionExtension = captionExtension
        self.imageExtensions = imageExtensions
    }
}

/// The spec after validation: extensions lowercased and without leading dots.
struct CorpusOptions: Sendable {
    let kind: CorpusSpec.Kind
    let imageColumn: String
    let captionColumn: String
    let keyColumn: String?
    let captionExtension: String
    /// Most preferred first, duplicates removed.
    let imageExtensions: [String]
    /// Bytes a shard member may have before the tar reader refuses it (and the sample's image goes missing).
    let maxMemberSize: Int
    /// Canonical `root`, when the spec names one (resolved by CorpusReader against the base directory).
    var rootReal: String?
    let allowAnyPath: Bool

    init(_ spec: CorpusSpec, maxMemberSize: Int) throws(CorpusError) {
        func normalized(_ ext: String) -> String {
            String(ext.drop { $0 == "." }).lowercased()
        }
        kind = spec.kind
        self.maxMemberSize = maxMemberSize
        allowAnyPath = spec.allowAnyPath
        captionExtension = normalized(spec.captionExtension)
        var seen = Set<String>()
        imageExtensions = spec.imageExtensions.map(normalized).filter { seen.insert($0).inserted }
        if spec.paths.isEmpty {
            throw CorpusError(.invalidSpec, detail: "the corpus spec lists no input paths")
        }
        if imageExtensions.isEmpty || imageExtensions.contains("") {
            throw CorpusError(.invalidSpec, detail: "input.image_extensions \(spec.imageExtensions) must be non-empty "
                + "extensions such as \"jpg\"")
        }
        if captionExtension.isEmpty {
            throw CorpusError(.invalidSpec, detail: "input.caption_extension is empty; the default is \"txt\"")
        }
        if imageExtensions.contains(captionExtension) {
            throw CorpusError(.invalidSpec, detail: "input.caption_extension \"\(captionExtension)\" is also listed in "
                + "input.image_extensions; a member cannot be both the image and the caption")
        }
        let columns = [("input.image_column", spec.imageColumn), ("input.caption_column", spec.captionColumn),
                       ("input.key_column", spec.keyColumn ?? "-")]
        for (name, value) in columns where value.isEmpty {
            throw CorpusError(.invalidSpec, detail: "\(name) is empty")
        }
        if spec.imageColumn == spec.captionColumn || spec.keyColumn == spec.imageColumn
            || spec.keyColumn == spec.captionColumn {
            throw CorpusError(.invalidSpec, detail: "input.image_column \"\(spec.imageColumn)\", input.caption_column "
                + "\"\(spec.captionColumn)\" and input.key_column \(spec.keyColumn.map { "\"\($0)\"" } ?? "nil") "
                + "must name different columns")
        }
        imageColumn = spec.imageColumn
        captionColumn = spec.captionColumn
        keyColumn = spec.keyColumn
    }

    /// The lowercased extension after the last dot of a file name, if it is one of `imageExtensions`.
    func imageExtension(ofFileName name: String) -> String? {
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return nil }
        let ext = name[name.index(after: dot)...].lowercased()
        return imageExtensions.contains(ext) ? ext : nil
    }
}
