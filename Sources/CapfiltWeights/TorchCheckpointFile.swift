// Reader for `pytorch_model.bin` as written by torch.save (torch >= 1.6): a zip holding `data.pkl` (the
// state dict as a pickle, read by the restricted unpickler) and one raw storage per `data/<key>` entry.
// Storages are shared between tensors (tied weights) and tensors are strided views into them.
import CapfiltTensor
import Foundation

/// A memory-mapped, read-only torch zip checkpoint holding a flat state dict.
public final class TorchCheckpointFile: TensorSource {
    public let path: String
    public let descriptors: [String: TensorDescriptor]
    private let file: MappedFile
    /// Each tensor's strided view.
    private let records: [String: TensorRecord]
    /// Byte offset in the file of each storage's data, by storage key.
    private let storageStart: [String: Int]
    /// From the `byteorder` entry; absent in older files, which are little-endian.
    private let bigEndian: Bool

    private static let fixIfCorrupt = "Re-download the checkpoint, or re-save it with torch.save(model.state_dict(), f)"

    /// Opens `url`, reads the zip directory and the pickle, and checks that every tensor's view lies inside
    /// a storage entry of the right size. No tensor data is read until `float32Tensor` asks.
    public convenience init(url: URL) throws {
        try self.init(file: MappedFile(url: url))
    }

    /// Reads an already mapped file.
    init(file: MappedFile) throws {
        let path = file.path
        self.file = file
        self.path = path
        let archive = try ZipArchive(file: file)

        // All entries sit under one top folder whose name varies (`archive/`, `pytorch_model/`, ...).
        let pickleEntries = archive.entries.filter { entry in
            guard entry.name.hasSuffix("/data.pkl") else { return false }
            return !entry.name.dropLast("/data.pkl".count).contains("/")
        }
        guard let pickleEntry = pickleEntries.first else {
            throw WeightsError(.invalidZip, path: path,
                               problem: "the zip has no <folder>/data.pkl entry, so it is not a torch.save checkpoint (entries: \(archive.entries.prefix(5).map(\.name).joined(separator: ", ")))",
                               fix: Self.fixIfCorrupt)
        }
        guard pickleEntries.count == 1 else {
            throw WeightsError(.invalidZip, path: path,
                               problem: "the zip has several data.pkl entries (\(pickleEntries.map(\.name).joined(separator: ", ")))",
                               fix: "Use a file written by a single torch.save call")
        }
        let prefix = String(pickleEntry.name.dropLast("data.pkl".count))

        var bigEndian = false
        if let index = archive.byName[prefix + "byteorder"] {
            let range = try archive.dataRange(of: archive.entries[index])
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: file.bytes[range]), as: UTF8.self)
            switch text.trimmingCharacters(in: .whitespacesAndNewlines) {
            case "little": bigEndian = false
            case "big": bigEndian = true
            default:
                throw WeightsError(.invalidZip, path: path,
                                   problem: "entry \(prefix)byteorder says \"\(text)\", not little or big",
                                   fix: Self.fixIfCorrupt)
            }
        }
        self.bigEndian = bigEndian

        let pickleRange = try archive.dataRange(of: pickleEntry)
        let pickleBytes = UnsafeRawBufferPointer(rebasing: file.bytes[pickleRange])
        // The pickle is small and drives everything else, so its CRC is worth checking.
        let crc = ZipArchive.crc32(pickleBytes)
        guard crc == pickleEntry.crc32 else {
            throw WeightsError(.invalidZip, path: path,
                               problem: "entry \(pickleEntry.name) fails its CRC-32 check (stored \(String(pickleEntry.crc32, radix: 16)), computed \(String(crc, radix: 16)))",
                               fix: Self.fixIfCorrupt)
        }
        let root = try RestrictedUnpickler.load(pickleBytes, path: path, entryName: pickleEntry.name)
        guard case let .dict(stateDict) = root else {
            throw WeightsError(.invalidPickle, path: path,
                               problem: "\(pickleEntry.name) holds \(root.kindName), not a state dict",
                               fix: "Save model.state_dict() itself, not a wrapper object")
        }

        var descriptors: [String: TensorDescriptor] = [:]
        var records: [String: TensorRecord] = [:]
        var storages: [String: StorageReference] = [:]
        var storageStart: [String: Int] = [:]
        for (keyValue, value) in stateDict.items {
            guard case let .string(name) = keyValue else {
                throw WeightsError(.invalidPickle, path: path,
                                   problem: "the state dict has a key that is \(keyValue.kindName), not a string",
                                   fix: "Save model.state_dict() itself")
            }
            guard case let .tensor(record) = value else {
                throw WeightsError(.invalidPickle, path: path, tensor: name,
                                   problem: "the value is \(value.kindName), not a tensor, so this is not a flat state dict",
                                   fix: "Save model.state_dict() itself (e.g. checkpoint[\"model\"] if it is nested)")
            }
            let storage = record.storage
            if let seen = storages[storage.key], seen != storage {
                throw WeightsError(.invalidPickle, path: path, tensor: name,
                                   problem: "storage '\(storage.key)' is described twice, differently (\(seen.elementType.rawValue) x \(seen.elementCount) vs \(storage.elementType.rawValue) x \(storage.elementCount))",
                                   fix: Self.fixIfCorrupt)
            }
            if storages[storage.key] == nil {
                let entryName = prefix + "data/" + storage.key
                guard let index = archive.byName[entryName] else {
                    throw WeightsError(.missingEntry, path: path, tensor: name,
                                       problem: "its storage '\(storage.key)' should be the zip entry \(entryName), which is missing",
                                       fix: Self.fixIfCorrupt)
                }
                let range: Range<Int>
                do { range = try archive.dataRange(of: archive.entries[index]) } catch let error as WeightsError {
                    // Same problem, but say which tensor needed the entry.
                    throw WeightsError(error.kind, path: error.path, tensor: name, problem: error.problem, fix: error.fix)
                }
                guard let expected = checkedByteCount(shape: [storage.elementCount], elementType: storage.elementType),
                      expected == range.count else {
                    throw WeightsError(.sizeMismatch, path: path, tensor: name,
                                       problem: "storage entry \(entryName) has \(range.count) bytes but the pickle describes \(storage.elementCount) x \(storage.elementType.rawValue)",
                                       fix: Self.fixIfCorrupt)
                }
                storages[storage.key] = storage
                storageStart[storage.key] = range.lowerBound
            }
            try Self.checkView(record, name: name, path: path)
            if records[name] != nil {
                throw WeightsError(.duplicateTensor, path: path, tensor: name,
                                   problem: "the state dict names this tensor twice", fix: Self.fixIfCorrupt)
            }
            records[name] = record
            descriptors[name] = TensorDescriptor(name: name, elementType: storage.elementType, shape: record.shape)
        }
        self.descriptors = descriptors
        self.records = records
        self.storageStart = storageStart
    }

    /// Every element of the view must lie inside the storage: offset + sum((size - 1) x stride) < numel.
    private static func checkView(_ record: TensorRecord, name: String, path: String) throws {
        var elements = 1
        var lastIndex = record.storageOffset
        var overflow = false
        for (size, stride) in zip(record.shape, record.strides) {
            let (e, o1) = elements.multipliedReportingOverflow(by: size)
            elements = e
            overflow = overflow || o1
            if size > 0 {
                let (step, o2) = (size - 1).multipliedReportingOverflow(by: stride)
                let (sum, o3) = lastIndex.addingReportingOverflow(step)
                lastIndex = sum
                overflow = overflow || o2 || o3
            }
        }
        if overflow || (elements > 0 && lastIndex >= record.storage.elementCount) {
            throw WeightsError(.invalidOffsets, path: path, tensor: name,
                               problem: "the view (offset \(record.storageOffset), size \(record.shape), stride \(record.strides)) reaches past the \(record.storage.elementCount) elements of storage '\(record.storage.key)'",
                               fix: fixIfCorrupt)
        }
    }

    public func float32Tensor(named name: String) throws -> Tensor {
        let descriptor = try floatingDescriptor(name)
        // A contiguous little-endian F32 view, 4-byte aligned: used in place, no copy.
        if descriptor.elementType == .float32, !bigEndian, let record = records[name],
           let start = storageStart[record.storage.key], let base = file.bytes.baseAddress,
           record.strides == contiguousStrides(record.shape) {
            let address = base + start + record.storageOffset * MemoryLayout<Float>.size
            if Int(bitPattern: address) % MemoryLayout<Float>.alignment == 0 {
                return Tensor(borrowing: address.assumingMemoryBound(to: Float.self), shape: descriptor.shape, owner: file, fileMapping: file.isFileMapping)
            }
        }
        let tensor = Tensor(zeros: descriptor.shape)
        guard let record = records[name], let start = storageStart[record.storage.key],
              let base = file.bytes.baseAddress, tensor.count > 0 else { return tensor }
        ElementConversion.gather(base + start, type: descriptor.elementType, bigEndian: bigEndian,
                                 shape: record.shape, strides: record.strides, offset: record.storageOffset,
                                 into: tensor.data)
        return tensor
    }
}

/// Row-major strides of `shape`, in elements.
private func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var step = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i] = step
        step *= max(shape[i], 1)
    }
    return strides
}
