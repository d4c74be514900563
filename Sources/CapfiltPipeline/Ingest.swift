// Ingest and decode: an input sample becomes a ledger row (checks, image hash, web-text problems) and, when
// its image is usable, the pixel tensors of both models. Every problem is a status and a reason, never an
// exception: the run goes on.
import CapfiltBLIP
import CapfiltCorpus
import CapfiltDigest
import CapfiltImage
import Foundation

/// Reason codes recorded in the ledger, the manifests and the stats, one per cause. Stable: users filter on
/// them (the list with meanings: Manifests/reasons.json). Input refusals come from `InputRefusal`.
public enum Reason {
    public static let imageMissing = "image_missing"
    public static let imageEmpty = "image_empty"
    public static let imageUnreadable = "image_unreadable"
    public static let imageTooManyBytes = "image_too_many_bytes"
    public static let imageUnsupported = "image_unsupported_format"
    public static let imageTooLarge = "image_too_large"
    public static let imageCorrupt = "image_corrupt"
    public static let duplicateImage = "duplicate_image"
    public static let duplicateKey = "duplicate_key"
    public static let noTextMatched = "no_text_matched"
    public static let modelOutputInvalid = "model_output_invalid"

    /// Every code a row can carry, for the docs and the tests that hold them stable.
    public static let all: [String] = [imageMissing, imageEmpty, imageUnreadable, imageTooManyBytes, imageUnsupported,
                                       imageTooLarge, imageCorrupt, duplicateImage, duplicateKey, noTextMatched,
                                       modelOutputInvalid] + InputRefusal.allCases.map(\.rawValue).filter { $0 != imageTooManyBytes }
}

/// A sample ready for the model stages: its row, and pixel values `(3, S, S)` per model.
struct IngestedSample {
    var record: SampleRecord
    var captionPixels: [Float]?
    var filterPixels: [Float]?
    /// The image as read, with the member extension to export it under (kept samples leave with it).
    var image: (bytes: [UInt8], fileExtension: String)?
}

struct Ingestor {
    let spec: PipelineSpec
    let captionFolder: ModelFolder
    let filterFolder: ModelFolder

    /// The key of sample `position` of unit `unit` when the input's own key cannot be used: unit and position,
    /// zero-padded, joined by `_` (never a dot, never the same for two samples of a run).
    static func derivedKey(unit: Int, position: Int) -> String {
        JobPlan.pad(unit, 5) + "_" + JobPlan.pad(position, 6)
    }

    /// Whether the input's own key can be the output key: a webdataset key of letters, digits, `_` and `-` (up to
    /// 128), and not of the derived form (digits `_` digits), which could collide with another sample's.
    static func isUsableKey(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard (1...128).contains(bytes.count),
              bytes.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F || $0 == 0x2D }) else {
            return false
        }
        let parts = key.split(separator: "_", omittingEmptySubsequences: false)
        return !(parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) })
    }

    /// Whether this input's keys are its own (shard keys, a list's key column, folder paths), not numbered by us.
    var inputHasKeys: Bool {
        spec.input.kind == .webdataset || spec.input.kind == .folder || spec.input.keyColumn != nil
    }

    /// Reads and checks a new sample. `earlier` finds an earlier sample with the same image bytes or key
    /// (the ledger plus the rows of the current batch).
    func ingest(_ input: InputSample, unit: Int, position: Int, duplicateImage: (String) throws -> SampleRecord?,
                duplicateKey: (String, String) throws -> String?) throws -> IngestedSample {
        let derived = Self.derivedKey(unit: unit, position: position)
        let sourceKey = inputHasKeys ? input.sourceKey : derived
        var record = SampleRecord(ordinal: position, key: inputHasKeys && Self.isUsableKey(sourceKey) ? sourceKey : derived,
                                  sourceKey: sourceKey, source: input.location.source, position: input.location.position,
                                  stage: .ingested, status: .pending)
        (record.webText, record.webTextProblem) = checkText(input.text)
        record.inputFields = input.inputFields
        let problems = input.problems.isEmpty ? nil : input.problems.joined(separator: "; ")
        func fail(_ reason: String, _ detail: String) -> IngestedSample {
            record.stage = .done
            record.status = .failed
            record.reason = reason
            record.detail = [detail, problems].compactMap { $0 }.joined(separator: "; ")
            return IngestedSample(record: record)
        }

        if let first = try duplicateKey(record.source, record.sourceKey) {
            record.key = derived
            return fail(Reason.duplicateKey, "the key \"\(record.sourceKey)\" already appeared in \(record.source) (sample \(first))")
        }
        let bytes: [UInt8], fileExtension: String
        switch CorpusReader.readImage(input.image, maxBytes: spec.limits.maxImageBytes) {
        case .success(let (data, ext)): bytes = data; fileExtension = ext
        case .failure(let failure): return fail(Self.reason(failure), String(describing: failure))
        }
        record.imageBytes = bytes.count
        record.imageSHA256 = SHA256.hex(SHA256.hash(bytes))

        // Header first: an absurd size is refused before any pixel is decoded.
        let header: ImageHeader
        do {
            header = try bytes.withUnsafeBytes { try ImageDecoder.readHeader($0) }
        } catch {
            return fail(Self.reason(error), String(describing: error))
        }
        record.imageFormat = header.format.rawValue
        record.width = header.width
        record.height = header.height
        if header.width > spec.limits.maxImageSide || header.height > spec.limits.maxImageSide
            || header.width * header.height > spec.limits.maxImagePixels {
            return fail(Reason.imageTooLarge, "\(header.width)×\(header.height) is over the limits (max side \(spec.limits.maxImageSide), max pixels \(spec.limits.maxImagePixels)); raise limits in the spec to accept it")
        }

        if let sha = record.imageSHA256, let first = try duplicateImage(sha) {
            record.duplicateOf = first.ordinal
            if spec.duplicates == .drop || first.status == .failed {
                record.stage = .done
                record.status = first.status == .failed ? .failed : .duplicate
                record.reason = first.status == .failed ? first.reason : Reason.duplicateImage
                record.detail = "same image bytes as sample \(first.key)"
                return IngestedSample(record: record)
            }
        }

        do {
            let image = try ImageDecoder.decodeRGB(bytes, limits: imageLimits)
            let captionPixels = captionFolder.imageProcessor.pixelValues(image)
            let filterPixels = filterFolder.imageProcessor.config == captionFolder.imageProcessor.config
                ? captionPixels : filterFolder.imageProcessor.pixelValues(image)
            return IngestedSample(record: record, captionPixels: captionPixels, filterPixels: filterPixels,
                                  image: (bytes, fileExtension))
        } catch {
            return fail(Self.reason(error), String(describing: error))
        }
    }

    /// Throws when the input at a committed row's position is not what the run read there: another key, source
    /// or text, or (for shard members, whose bytes are at hand) other image bytes.
    func checkUnchanged(_ record: SampleRecord, input: InputSample) throws {
        var differences: [String] = []
        if record.source != input.location.source || record.position != input.location.position {
            differences.append("it was at \(record.source), \(record.position), now \(input.location.source), \(input.location.position)")
        }
        if inputHasKeys && record.sourceKey != input.sourceKey { differences.append("its key was \(record.sourceKey.debugDescription), now \(input.sourceKey.debugDescription)") }
        let (text, problem) = checkText(input.text)
        if text != record.webText || problem != record.webTextProblem { differences.append("its text changed") }
        if case .bytes(let bytes, _) = input.image, let sha = record.imageSHA256, SHA256.hex(SHA256.hash(bytes)) != sha {
            differences.append("its image bytes changed")
        }
        guard differences.isEmpty else {
            throw PipelineError("the input changed since this run read it: sample \(record.key) (\(record.source), \(record.position)): \(differences.joined(separator: "; ")). Resuming would mix old and new outputs. Restore the input, or start over with --new-run.")
        }
    }

    /// Decodes a sample ingested by an earlier, interrupted run (its checks are in the ledger already).
    func redecode(_ record: SampleRecord, input: InputSample) throws -> IngestedSample {
        guard case .success(let (bytes, fileExtension)) = CorpusReader.readImage(input.image, maxBytes: spec.limits.maxImageBytes),
              SHA256.hex(SHA256.hash(bytes)) == record.imageSHA256,
              let image = try? ImageDecoder.decodeRGB(bytes, limits: imageLimits) else {
            throw PipelineError("the input changed since this run read it: the image of sample \(record.key) (\(record.source), \(record.position)) is no longer the one ingested. Restore the input, or start over with --new-run.")
        }
        let captionPixels = captionFolder.imageProcessor.pixelValues(image)
        let filterPixels = filterFolder.imageProcessor.config == captionFolder.imageProcessor.config
            ? captionPixels : filterFolder.imageProcessor.pixelValues(image)
        return IngestedSample(record: record, captionPixels: captionPixels, filterPixels: filterPixels,
                              image: (bytes, fileExtension))
    }

    private var imageLimits: ImageLimits { spec.limits.imageLimits }

    /// The web text, or why it cannot be used.
    func checkText(_ field: TextField) -> (String?, String?) {
        switch field {
        case .missing: return (nil, "missing")
        case .invalidUTF8: return (nil, "invalid_utf8")
        case .text(let text):
            if text.isEmpty { return (nil, "empty") }
            if text.unicodeScalars.allSatisfy({ $0.properties.isWhitespace || $0.properties.generalCategory == .control }) {
                return (nil, "whitespace_only")
            }
            if text.count > spec.limits.maxTextCharacters { return (nil, "too_long") }
            return (text, nil)
        }
    }

    static func reason(_ failure: Any) -> String {
        if let e = failure as? ImageReadFailure {
            switch e {
            case .missing, .notFound: return Reason.imageMissing
            case .refused(_, let cause): return cause.rawValue
            case .empty: return Reason.imageEmpty
            case .tooLarge: return Reason.imageTooManyBytes
            case .notARegularFile, .permissionDenied, .readFailed: return Reason.imageUnreadable
            }
        }
        if let e = failure as? ImageError {
            switch e.kind {
            case .empty: return Reason.imageEmpty
            case .unsupportedFormat: return Reason.imageUnsupported
            case .tooLarge: return Reason.imageTooLarge
            default: return Reason.imageCorrupt
            }
        }
        return Reason.imageCorrupt
    }
}
