// The one error type of checkpoint reading and strict loading: it names the file, the tensor (or zip entry,
// or pickle global) and the problem, and says what to do about it.

/// A checkpoint could not be read, or does not match what the model needs.
///
/// `description` reads `<path>: tensor '<name>': <problem>. <fix>`; tests and callers switch on `kind`.
public struct WeightsError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong, coarsely; `problem` has the details.
    public enum Kind: String, Sendable, CaseIterable {
        /// The file or folder could not be opened, stat'ed or mapped.
        case fileUnreadable
        /// A folder holds no weight file this reader knows.
        case noCheckpoint
        /// The file ends before data its own header promises (an interrupted download or copy).
        case truncatedFile
        /// The safetensors header length or header structure is wrong.
        case invalidHeader
        /// A JSON header or index is not valid JSON.
        case invalidJSON
        /// A dtype or storage type this reader does not know.
        case unknownElementType
        /// Tensor data offsets are reversed, out of range, overlapping or leave holes.
        case invalidOffsets
        /// A tensor's byte size disagrees with its shape and element type.
        case sizeMismatch
        /// The zip structure of a torch checkpoint is broken.
        case invalidZip
        /// A zip entry that must be read is compressed (torch writes them STORED).
        case compressedEntry
        /// A zip entry the pickle refers to (`data/<key>`) is absent.
        case missingEntry
        /// A file in a format this reader deliberately does not support (e.g. pre-1.6 torch.save).
        case unsupportedFormat
        /// The pickle asks for something a state dict never needs (a foreign global, INST, OBJ, ...):
        /// refused before anything could run.
        case forbiddenPickle
        /// The pickle is malformed or does not describe a flat state dict.
        case invalidPickle
        /// A sharded checkpoint's `*.index.json` disagrees with its shards.
        case invalidIndex
        /// The same tensor name appears twice.
        case duplicateTensor
        /// The model needs a tensor the checkpoint lacks.
        case missingTensor
        /// A tensor has a different shape from the one the model needs.
        case shapeMismatch
        /// The checkpoint holds tensors nothing consumed.
        case unusedTensors
        /// A tensor's element type cannot become fp32 (integers and booleans).
        case unsupportedConversion
        /// A tensor holds NaN or infinite values.
        case nonFiniteValues
    }

    /// What went wrong.
    public let kind: Kind
    /// The file (or folder) concerned.
    public let path: String
    /// The tensor concerned, when there is one.
    public let tensorName: String?
    /// What is wrong, precisely (offsets, shapes, globals, entry names).
    public let problem: String
    /// What to do about it.
    public let fix: String

    /// Makes an error; `problem` and `fix` are sentences without the final period.
    public init(_ kind: Kind, path: String, tensor: String? = nil, problem: String, fix: String) {
        self.kind = kind
        self.path = path
        self.tensorName = tensor
        self.problem = problem
        self.fix = fix
    }

    public var description: String {
        var text = path + ": "
        if let tensorName { text += "tensor '\(tensorName)': " }
        return text + problem + ". " + fix + "."
    }
}
