// Reading an image payload into bytes, with a size cap checked before reading and a failure that names its cause
// (missing file, folder, permissions, empty file, oversize), so the run report can count each cause separately.

import Foundation

/// Why an image could not be read. `code` is a stable identifier for histograms; `description` names the path and
/// says what to do.
public enum ImageReadFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The payload was already `.missing`; the reason is the reader's.
    case missing(reason: String)
    /// The payload was `.refused`; the cause is the stable code.
    case refused(reason: String, cause: InputRefusal)
    /// No file at the path (or a folder on the way is missing).
    case notFound(path: String)
    /// The path is a directory, fifo, socket or device; `kind` names which.
    case notARegularFile(path: String, kind: String)
    /// The file or a folder on the way is not readable by this user.
    case permissionDenied(path: String)
    /// The file (or member) has zero bytes.
    case empty(path: String)
    /// The file (or member) is larger than the cap; it was not read.
    case tooLarge(path: String, bytes: Int64, limit: Int)
    /// The operating system reported an error while opening or reading.
    case readFailed(path: String, reason: String)

    /// Short stable name for counting failures by cause: "missing", "not_found", "not_a_file",
    /// "permission_denied", "empty", "too_large", "read_failed".
    public var code: String {
        switch self {
        case .missing: return "missing"
        case .refused(_, let cause): return cause.rawValue
        case .notFound: return "not_found"
        case .notARegularFile: return "not_a_file"
        case .permissionDenied: return "permission_denied"
        case .empty: return "empty"
        case .tooLarge: return "too_large"
        case .readFailed: return "read_failed"
        }
    }

    public var description: String {
        switch self {
        case .missing(let reason), .refused(let reason, _):
            return reason
        case .notFound(let path):
            return "\(path): no such file. Check the list's paths (relative ones resolve against the list's folder)."
        case .notARegularFile(let path, let kind):
            return "\(path): is a \(kind), not an image file. Point the list at image files."
        case .permissionDenied(let path):
            return "\(path): permission denied. Make the file and its folders readable by the user running capfilt."
        case .empty(let path):
            return "\(path): the file is empty (0 bytes), probably a failed download. Re-download or drop it."
        case .tooLarge(let path, let bytes, let limit):
            return "\(path): \(bytes) bytes, over the \(limit)-byte image limit; not read. Resize the image or "
                + "raise the limit in the spec."
        case .readFailed(let path, let reason):
            return "\(path): cannot be read (\(reason)). Check the disk or network filesystem, then rerun."
        }
    }

    init(_ failure: FileSystem.ReadFailure, path: String, limit: Int) {
        switch failure {
        case .notFound: self = .notFound(path: path)
        case .permissionDenied: self = .permissionDenied(path: path)
        case .notRegular(let kind): self = .notARegularFile(path: path, kind: kind)
        case .empty: self = .empty(path: path)
        case .tooLarge(let size): self = .tooLarge(path: path, bytes: size, limit: limit)
        case .failed(let system): self = .readFailed(path: path, reason: system.description)
        }
    }
}

extension FileSystem.ReadFailure {
    /// A few words for a problem line.
    var summary: String {
        switch self {
        case .notFound: return "no such file"
        case .permissionDenied: return "permission denied"
        case .notRegular(let kind): return "it is a \(kind)"
        case .empty: return "empty file"
        case .tooLarge(let size): return "\(size) bytes, too large"
        case .failed(let system): return system.description
        }
    }
}

extension CorpusReader {
    /// The image's bytes and lowercased extension ("jpg", "png", ...; "" when the file name has none).
    ///
    /// `.bytes` are returned as they are, after the same size checks; `.file` is opened (following links: list
    /// inputs may point anywhere, and folder inputs already resolved theirs inside the folder), its size checked on
    /// the open descriptor, and only then read, so a file over `maxBytes` costs one `fstat`. Fifos and devices are
    /// refused without blocking. `.missing` fails with its reason.
    public static func readImage(_ payload: ImagePayload, maxBytes: Int)
        -> Result<([UInt8], String), ImageReadFailure> {
        switch payload {
        case .missing(let reason):
            return .failure(.missing(reason: reason))
        case .refused(let reason, let cause):
            return .failure(.refused(reason: reason, cause: cause))
        case .bytes(let bytes, let ext):
            if bytes.isEmpty { return .failure(.empty(path: "the shard member .\(ext)")) }
            if bytes.count > maxBytes {
                return .failure(.tooLarge(path: "the shard member .\(ext)", bytes: Int64(bytes.count), limit: maxBytes))
            }
            return .success((bytes, ext))
        case .file(let url):
            let path = url.path
            switch FileSystem.readFile(path, maxBytes: max(0, maxBytes)) {
            case .success(let bytes):
                return .success((bytes, url.pathExtension.lowercased()))
            case .failure(let failure):
                return .failure(ImageReadFailure(failure, path: path, limit: maxBytes))
            }
        }
    }
}
