// What every checkpoint reader offers the model code: a table of tensor descriptors and an exact fp32 copy
// of any floating-point tensor on request.
import CapfiltTensor

/// Element types of stored tensors, spelled as in safetensors headers.
public enum ElementType: String, Sendable, CaseIterable {
    case float32 = "F32", float16 = "F16", bfloat16 = "BF16", float64 = "F64"
    case int64 = "I64", int32 = "I32", int16 = "I16", int8 = "I8", uint8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }

    /// Whether `float32Tensor` can convert it (exactly, or by IEEE round-to-nearest-even for F64).
    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float16, .bfloat16, .float64: return true
        case .int64, .int32, .int16, .int8, .uint8, .bool: return false
        }
    }
}

/// Name, element type and shape of one stored tensor.
public struct TensorDescriptor: Sendable, Equatable {
    /// The state-dict key, e.g. `vision_model.embeddings.class_embedding`.
    public let name: String
    /// How the elements are stored.
    public let elementType: ElementType
    /// Dimensions, outermost first; `[]` for a scalar.
    public let shape: [Int]

    /// A descriptor.
    public init(name: String, elementType: ElementType, shape: [Int]) {
        self.name = name
        self.elementType = elementType
        self.shape = shape
    }

    /// Number of elements (1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A read-only checkpoint: safetensors, torch zip, or a sharded set of either.
public protocol TensorSource: AnyObject, Sendable {
    /// The file (or index file) read, for messages.
    var path: String { get }
    /// Every tensor in the checkpoint, by name.
    var descriptors: [String: TensorDescriptor] { get }
    /// A dense row-major fp32 copy of tensor `name`.
    ///
    /// F16, BF16 and F32 convert exactly; F64 rounds to nearest even (as torch's `.float()`). Integer and
    /// boolean tensors throw `WeightsError.Kind.unsupportedConversion`; an unknown name throws `.missingTensor`.
    func float32Tensor(named name: String) throws -> Tensor
}

extension TensorSource {
    /// The descriptor of `name`, or a `.missingTensor` error, and a `.unsupportedConversion` error for
    /// element types that are not floating point.
    func floatingDescriptor(_ name: String) throws -> TensorDescriptor {
        guard let descriptor = descriptors[name] else {
            throw WeightsError(.missingTensor, path: path, tensor: name,
                               problem: "no tensor of that name in the file (it has \(descriptors.count) tensors)",
                               fix: "Check the name against the checkpoint, or use a checkpoint of the expected model")
        }
        guard descriptor.elementType.isFloatingPoint else {
            throw WeightsError(.unsupportedConversion, path: path, tensor: name,
                               problem: "element type \(descriptor.elementType.rawValue) is not floating point, so it has no fp32 value",
                               fix: "Do not load it as a weight; if it is a legacy buffer such as position_ids, mark it used instead")
        }
        return descriptor
    }
}
