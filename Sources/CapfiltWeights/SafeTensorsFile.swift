// Reader for the safetensors format: an 8-byte little-endian header length, a JSON header, then the raw
// little-endian tensor bytes. Every header entry is validated up front so a corrupt or truncated file fails
// at open time with the tensor named, not later in the middle of a model load.
import CapfiltTensor
import Foundation

/// A memory-mapped, read-only `.safetensors` file.
public final class SafeTensorsFile: TensorSource {
    public let path: String
    public let descriptors: [String: TensorDescriptor]
    /// The free-form `__metadata__` strings (e.g. `{"format": "pt"}`).
    public let metadata: [String: String]
    private let file: MappedFile
    /// Byte offset of each tensor's data within the file (header already skipped).
    private let dataStart: [String: Int]

    /// Headers larger than this are refused before parsing (the reference implementation uses the same cap).
    static let maxHeaderLength = 100_000_000

    /// Opens and validates `url`: header length, JSON, every entry's dtype, shape and `data_offsets`
    /// (begin <= end, inside the file, size == elements x element size, no overlaps or holes).
    public convenience init(url: URL) throws {
        try self.init(file: MappedFile(url: url))
    }

    /// Validates an already mapped file.
    init(file: MappedFile) throws {
        let path = file.path
        self.file = file
        self.path = path
        let fileSize = file.bytes.count
        let fixIfCorrupt = "Re-download or re-convert the checkpoint; compare its size and SHA-256 with the source"

        guard fileSize >= 8 else {
            throw WeightsError(.truncatedFile, path: path,
                               problem: "the file has \(fileSize) bytes, fewer than the 8-byte header length",
                               fix: fixIfCorrupt)
        }
        let headerLength = file.load(UInt64.self, at: 0)
        guard headerLength <= UInt64(fileSize - 8) else {
            throw WeightsError(.invalidHeader, path: path,
                               problem: "the header length \(headerLength) runs past the end of the file (\(fileSize) bytes): the file is truncated or not a safetensors file",
                               fix: fixIfCorrupt)
        }
        guard headerLength <= UInt64(Self.maxHeaderLength) else {
            throw WeightsError(.invalidHeader, path: path,
                               problem: "the header length \(headerLength) exceeds the \(Self.maxHeaderLength)-byte limit",
                               fix: fixIfCorrupt)
        }
        let headerEnd = 8 + Int(headerLength)
        let header: JSONValue
        do {
            header = try JSONParser.parse(UnsafeRawBufferPointer(rebasing: file.bytes[8..<headerEnd]))
        } catch {
            throw WeightsError(.invalidJSON, path: path,
                               problem: "the JSON header is invalid at byte \(8 + error.offset) of the file: \(error.message)",
                               fix: fixIfCorrupt)
        }
        guard let members = header.objectMembers else {
            throw WeightsError(.invalidHeader, path: path,
                               problem: "the JSON header is \(header.kindName), not an object of tensors",
                               fix: fixIfCorrupt)
        }

        let dataLength = fileSize - headerEnd
        var descriptors: [String: TensorDescriptor] = [:]
        var spans: [(name: String, begin: Int, end: Int)] = []
        var metadata: [String: String] = [:]
        for (name, entry) in members {
            if name == "__metadata__" {
                guard let pairs = entry.objectMembers else {
                    throw WeightsError(.invalidHeader, path: path,
                                       problem: "__metadata__ is \(entry.kindName), not an object of strings",
                                       fix: fixIfCorrupt)
                }
                for (key, value) in pairs {
                    guard let text = value.stringValue else {
                        throw WeightsError(.invalidHeader, path: path,
                                           problem: "__metadata__ value for \"\(key)\" is \(value.kindName), not a string",
                                           fix: fixIfCorrupt)
                    }
                    metadata[key] = text
                }
                continue
            }
            func bad(_ problem: String) -> WeightsError {
                WeightsError(.invalidHeader, path: path, tensor: name, problem: problem, fix: fixIfCorrupt)
            }
            guard entry.objectMembers != nil else { throw bad("the header entry is \(entry.kindName), not an object") }
            guard let dtypeText = entry["dtype"]?.stringValue else { throw bad("the header entry has no string \"dtype\"") }
            guard let elementType = ElementType(rawValue: dtypeText) else {
                throw WeightsError(.unknownElementType, path: path, tensor: name,
                                   problem: "unknown dtype \"\(dtypeText)\" (known: \(ElementType.allCases.map(\.rawValue).joined(separator: ", ")))",
                                   fix: "Convert the checkpoint to F32, F16 or BF16 with safetensors' save_file")
            }
            guard let shapeValues = entry["shape"]?.arrayElements else { throw bad("the header entry has no \"shape\" array") }
            var shape: [Int] = []
            for value in shapeValues {
                guard let n = value.intValue, n >= 0 else { throw bad("\"shape\" holds \(value), not non-negative integers") }
                shape.append(n)
            }
            guard let offsets = entry["data_offsets"]?.arrayElements, offsets.count == 2,
                  let begin = offsets[0].intValue, let end = offsets[1].intValue, begin >= 0, end >= 0 else {
                throw bad("\"data_offsets\" is not a pair of non-negative integers")
            }
            guard begin <= end else {
                throw WeightsError(.invalidOffsets, path: path, tensor: name,
                                   problem: "data_offsets [\(begin), \(end)) are reversed (begin > end)",
                                   fix: fixIfCorrupt)
            }
            guard let byteCount = checkedByteCount(shape: shape, elementType: elementType) else {
                throw WeightsError(.sizeMismatch, path: path, tensor: name,
                                   problem: "shape \(shape) of \(dtypeText) overflows a 64-bit byte count",
                                   fix: fixIfCorrupt)
            }
            guard byteCount == end - begin else {
                throw WeightsError(.sizeMismatch, path: path, tensor: name,
                                   problem: "shape \(shape) of \(dtypeText) needs \(byteCount) bytes but data_offsets [\(begin), \(end)) hold \(end - begin)",
                                   fix: fixIfCorrupt)
            }
            descriptors[name] = TensorDescriptor(name: name, elementType: elementType, shape: shape)
            spans.append((name, begin, end))
        }

        // The data section must be tiled exactly: sorted by begin, each tensor starts where the last ended.
        spans.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expectedBegin = 0
        var previous: String?
        for span in spans {
            if span.begin != expectedBegin {
                if span.begin > dataLength {
                    throw WeightsError(.invalidOffsets, path: path, tensor: span.name,
                                       problem: "data_offsets [\(span.begin), \(span.end)) lie outside the \(dataLength)-byte data section",
                                       fix: fixIfCorrupt)
                }
                let neighbour = previous.map { " and '\($0)'" } ?? ""
                let what = span.begin < expectedBegin ? "overlap" : "leave a hole of \(span.begin - expectedBegin) bytes"
                throw WeightsError(.invalidOffsets, path: path, tensor: span.name,
                                   problem: "data_offsets [\(span.begin), \(span.end)) of this tensor\(neighbour) \(what) (expected it to begin at \(expectedBegin))",
                                   fix: fixIfCorrupt)
            }
            if span.end > dataLength {
                throw WeightsError(.truncatedFile, path: path, tensor: span.name,
                                   problem: "data_offsets [\(span.begin), \(span.end)) run past the end of the file: the data section has only \(dataLength) bytes, so the file is truncated",
                                   fix: fixIfCorrupt)
            }
            expectedBegin = span.end
            previous = span.name
        }
        if expectedBegin != dataLength {
            throw WeightsError(.invalidOffsets, path: path,
                               problem: "the data section has \(dataLength - expectedBegin) trailing bytes that belong to no tensor",
                               fix: fixIfCorrupt)
        }

        self.descriptors = descriptors
        self.metadata = metadata
        self.dataStart = Dictionary(uniqueKeysWithValues: spans.map { ($0.name, headerEnd + $0.begin) })
    }

    public func float32Tensor(named name: String) throws -> Tensor {
        let descriptor = try floatingDescriptor(name)
        // F32 in the file's (little-endian) order, 4-byte aligned: used in place, no copy.
        if descriptor.elementType == .float32, let start = dataStart[name], let base = file.bytes.baseAddress,
           (Int(bitPattern: base) + start) % MemoryLayout<Float>.alignment == 0 {
            return Tensor(borrowing: (base + start).assumingMemoryBound(to: Float.self), shape: descriptor.shape, owner: file, fileMapping: file.isFileMapping)
        }
        let tensor = Tensor(zeros: descriptor.shape)
        guard let start = dataStart[name], let base = file.bytes.baseAddress, tensor.count > 0 else { return tensor }
        ElementConversion.convert(base + start, type: descriptor.elementType, bigEndian: false,
                                  count: tensor.count, into: tensor.data)
        return tensor
    }
}

/// Elements x element size, or nil if it overflows `Int`.
func checkedByteCount(shape: [Int], elementType: ElementType) -> Int? {
    var total = elementType.byteSize
    for n in shape {
        let (product, overflow) = total.multipliedReportingOverflow(by: n)
        if overflow { return nil }
        total = product
    }
    return total
}
