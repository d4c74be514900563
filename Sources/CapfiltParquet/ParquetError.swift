// The one error type of CapfiltParquet. Input files come from the web and from other tools, so every error names
// the file, where in it the trouble is (footer, row group, column, page) and what to do about it.

/// A Parquet file could not be opened, read or written.
///
/// `description` is one line: the path, the location (column path, row group, byte offset when known), the detail
/// and the advice for `kind`.
public struct ParquetError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong.
    public enum Kind: Sendable, Equatable {
        /// The file could not be opened, created, read or written by the operating system.
        case io
        /// The file does not start and end with the `PAR1` magic: it is not a Parquet file.
        case notParquet
        /// The file ends before a structure it declares (footer, column chunk, page) is complete.
        case truncated
        /// A length, offset or count in the file is negative, past the end of the file or past a read limit.
        case badLength
        /// The Thrift metadata (footer or a page header) cannot be decoded.
        case badThrift
        /// The metadata is decodable but inconsistent (schema tree, value counts, level ranges, encoded data).
        case corrupt
        /// The file uses a feature this reader does not implement (an encoding, a codec, nesting, INT96).
        case unsupported
        /// A page failed to decompress.
        case decompression
        /// The caller asked for something the file does not have, or gave the writer inconsistent input.
        case invalidArgument
    }

    /// What went wrong.
    public let kind: Kind
    /// The file's path.
    public let path: String
    /// Where: "footer", "row group 2, column image.bytes, page at byte 4711", ...
    public let location: String?
    /// The specifics: which field, which value, what was expected.
    public let detail: String

    public init(_ kind: Kind, path: String, location: String? = nil, detail: String) {
        self.kind = kind
        self.path = path
        self.location = location
        self.detail = detail
    }

    public var description: String {
        let place = location.map { "\(path) (\($0))" } ?? path
        return "\(place): \(detail). \(advice)"
    }

    /// What the operator should do; the message ends with it.
    private var advice: String {
        switch kind {
        case .io:
            return "Check that the path exists and is readable (or its directory writable) and that the disk is healthy."
        case .notParquet:
            return "Give a .parquet file (written by pyarrow, datasets, Spark, DuckDB, img2dataset); for CSV, JSONL "
                + "or tar shards use the matching input kind."
        case .truncated:
            return "The file was cut short (an interrupted download or a killed writer); download or write it again."
        case .badLength, .badThrift, .corrupt:
            return "The file is damaged or was not written by a conforming Parquet writer; regenerate or re-download it."
        case .unsupported:
            return "Rewrite the file with pyarrow defaults, e.g. pyarrow.parquet.write_table(pq.read_table(src), dst)."
        case .decompression:
            return "The compressed page is damaged; regenerate or re-download the file."
        case .invalidArgument:
            return "Check the column names (ParquetFile.schema lists them) and the values passed."
        }
    }
}
