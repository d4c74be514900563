// Finds the weights in a Hugging Face model folder (single file or sharded, safetensors preferred, as
// transformers does) and fingerprints them. The same resolution serves both, so the digest always
// describes the bytes actually loaded.
import CapfiltDigest
import CapfiltTensor
import Foundation

/// Weight discovery in a model folder.
public enum CheckpointFolder {
    /// File names looked for, in order of preference.
    public static let candidateNames = [
        "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
    ]

    /// The weight files of a folder.
    enum Layout {
        case safetensors(URL)
        case torch(URL)
        /// An `*.index.json` and its shard files (sorted by name, unique); `safetensors` says which reader.
        case sharded(index: URL, shards: [URL], weightMap: [(tensor: String, shard: String)], safetensors: Bool)

        /// Every file whose bytes make up the checkpoint, sorted by file name.
        var files: [URL] {
            switch self {
            case let .safetensors(url), let .torch(url): return [url]
            case let .sharded(index, shards, _, _):
                return ([index] + shards).sorted { $0.lastPathComponent < $1.lastPathComponent }
            }
        }
    }

    /// A reader for the folder's weights: `model.safetensors` if present, else a sharded
    /// `model.safetensors.index.json`, else `pytorch_model.bin`, else `pytorch_model.bin.index.json`.
    /// A folder with none of these is a `.noCheckpoint` error listing what it holds.
    public static func tensorSource(in folder: URL) throws -> TensorSource {
        switch try layout(in: folder) {
        case let .safetensors(url): return try SafeTensorsFile(url: url)
        case let .torch(url): return try TorchCheckpointFile(url: url)
        case let .sharded(index, shards, weightMap, safetensors):
            return try ShardedTensorSource(index: index, shards: shards, weightMap: weightMap, safetensors: safetensors)
        }
    }

    /// Lower-case hex SHA-256 identifying the weights `tensorSource(in:)` loads.
    ///
    /// For a single file it is the SHA-256 of the file (as `sha256sum` prints it, and as the Hub shows it
    /// for LFS files). For a sharded checkpoint it is the SHA-256 of the text `sha256sum` prints for the
    /// index and the shards sorted by file name: lines `<hex>  <file name>\n`.
    public static func weightsDigest(in folder: URL) throws -> String {
        let files = try layout(in: folder).files
        func hash(_ url: URL) throws -> String {
            do { return try SHA256.hash(file: url) } catch {
                throw WeightsError(.fileUnreadable, path: url.path, problem: "cannot hash: \(error)",
                                   fix: "Check that the file is readable")
            }
        }
        if files.count == 1, let only = files.first { return try hash(only) }
        var listing = ""
        for url in files { listing += "\(try hash(url))  \(url.lastPathComponent)\n" }
        var hasher = SHA256()
        hasher.update(Array(listing.utf8))
        return SHA256.hex(hasher.finalize())
    }

    /// Resolves which files hold the weights.
    static func layout(in folder: URL) throws -> Layout {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw WeightsError(.noCheckpoint, path: folder.path, problem: "no such folder",
                               fix: "Pass the model folder (the one holding config.json and the weights)")
        }
        func present(_ name: String) -> URL? {
            let url = folder.appendingPathComponent(name)
            return manager.fileExists(atPath: url.path) ? url : nil
        }
        if let url = present("model.safetensors") { return .safetensors(url) }
        if let url = present("model.safetensors.index.json") { return try sharded(index: url, safetensors: true) }
        if let url = present("pytorch_model.bin") { return .torch(url) }
        if let url = present("pytorch_model.bin.index.json") { return try sharded(index: url, safetensors: false) }

        let found = ((try? manager.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
        let listing = found.isEmpty ? "nothing" : found.prefix(20).joined(separator: ", ") + (found.count > 20 ? ", ... (\(found.count) entries)" : "")
        throw WeightsError(.noCheckpoint, path: folder.path,
                           problem: "no weight file: found \(listing); expected one of \(candidateNames.joined(separator: ", "))",
                           fix: "Download the model's weights into this folder (e.g. huggingface-cli download <repo> --local-dir <folder>)")
    }

    /// Reads an index `{"weight_map": {tensor: shard file}}`; shard names must be plain file names.
    private static func sharded(index: URL, safetensors: Bool) throws -> Layout {
        let path = index.path
        let fix = "Re-download the index and its shards together"
        let data: Data
        do { data = try Data(contentsOf: index) } catch {
            throw WeightsError(.fileUnreadable, path: path, problem: "cannot read: \(error.localizedDescription)",
                               fix: "Check that the file is readable")
        }
        let json: JSONValue
        do { json = try JSONParser.parse([UInt8](data)) } catch {
            throw WeightsError(.invalidJSON, path: path, problem: "invalid JSON at byte \(error.offset): \(error.message)", fix: fix)
        }
        guard let members = json["weight_map"]?.objectMembers else {
            throw WeightsError(.invalidIndex, path: path, problem: "no \"weight_map\" object", fix: fix)
        }
        var weightMap: [(tensor: String, shard: String)] = []
        var shardNames = Set<String>()
        for (tensor, value) in members {
            guard let shard = value.stringValue, !shard.isEmpty, !shard.contains("/"), shard != "..", shard != "." else {
                throw WeightsError(.invalidIndex, path: path, tensor: tensor,
                                   problem: "weight_map entry \(value.stringValue.map { "\"\($0)\"" } ?? value.kindName) is not a file name in the same folder", fix: fix)
            }
            weightMap.append((tensor, shard))
            shardNames.insert(shard)
        }
        let folder = index.deletingLastPathComponent()
        let shards = shardNames.sorted().map { folder.appendingPathComponent($0) }
        for shard in shards where !FileManager.default.fileExists(atPath: shard.path) {
            throw WeightsError(.invalidIndex, path: path,
                               problem: "shard \(shard.lastPathComponent) named by the index is missing", fix: fix)
        }
        return .sharded(index: index, shards: shards, weightMap: weightMap, safetensors: safetensors)
    }
}

/// The union of several shard files, checked against their index.
final class ShardedTensorSource: TensorSource {
    let path: String
    let descriptors: [String: TensorDescriptor]
    /// The shard that holds each tensor.
    private let owners: [String: any TensorSource]

    init(index: URL, shards: [URL], weightMap: [(tensor: String, shard: String)], safetensors: Bool) throws {
        path = index.path
        var descriptors: [String: TensorDescriptor] = [:]
        var owners: [String: any TensorSource] = [:]
        var ownerFile: [String: String] = [:]
        for url in shards {
            let source: any TensorSource = safetensors ? try SafeTensorsFile(url: url) : try TorchCheckpointFile(url: url)
            for (name, descriptor) in source.descriptors {
                if let other = ownerFile[name] {
                    throw WeightsError(.duplicateTensor, path: index.path, tensor: name,
                                       problem: "it is stored in two shards, \(other) and \(url.lastPathComponent)",
                                       fix: "Re-download the index and its shards together")
                }
                descriptors[name] = descriptor
                owners[name] = source
                ownerFile[name] = url.lastPathComponent
            }
        }
        for (tensor, shard) in weightMap where ownerFile[tensor] != shard {
            let actual = ownerFile[tensor].map { "it is in \($0)" } ?? "no shard holds it"
            throw WeightsError(.invalidIndex, path: index.path, tensor: tensor,
                               problem: "the index places it in \(shard) but \(actual)",
                               fix: "Re-download the index and its shards together")
        }
        self.descriptors = descriptors
        self.owners = owners
    }

    func float32Tensor(named name: String) throws -> Tensor {
        _ = try floatingDescriptor(name)
        guard let owner = owners[name] else { return Tensor(zeros: []) }  // unreachable: descriptors and owners agree
        return try owner.float32Tensor(named: name)
    }
}
