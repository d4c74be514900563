// A pickle reader that only builds data. It knows the opcodes a torch state dict uses and exactly three
// kinds of globals (collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch.<Type>Storage), and
// interprets even those itself: nothing in the file is ever called. Any other global, and the opcodes that
// construct arbitrary objects (INST, OBJ, NEWOBJ, EXT*), are refused where they appear.

/// A storage named by BINPERSID `('storage', <StorageType>, key, location, numel)`.
struct StorageReference: Equatable, Sendable {
    /// The zip entry is `<archive>/data/<key>`.
    let key: String
    let elementType: ElementType
    /// Elements in the whole storage.
    let elementCount: Int
    /// The device it was saved from, e.g. `cpu` or `cuda:0` (the bytes are the same either way).
    let location: String
}

/// A tensor rebuilt by `_rebuild_tensor_v2(storage, storage_offset, size, stride, ...)`: a strided view.
struct TensorRecord: Sendable {
    let storage: StorageReference
    /// In elements.
    let storageOffset: Int
    let shape: [Int]
    /// In elements, one per dimension.
    let strides: [Int]
}

/// A mutable pickle dict; a class because pickles mutate containers after memoising them.
final class PickleDict {
    var items: [(key: PickleValue, value: PickleValue)] = []
}

/// A mutable pickle list.
final class PickleList {
    var items: [PickleValue] = []
}

/// The whitelisted globals, as data.
enum PickleGlobal {
    case orderedDict
    case rebuildTensorV2
    case storageType(ElementType, name: String)
}

/// Everything the restricted unpickler can build.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    case global(PickleGlobal)
    case storage(StorageReference)
    case tensor(TensorRecord)

    /// A short description of the value's kind, for messages.
    var kindName: String {
        switch self {
        case .none: return "None"
        case .bool: return "a bool"
        case .int: return "an int"
        case .float: return "a float"
        case .string: return "a str"
        case .bytes: return "bytes"
        case .tuple: return "a tuple"
        case .list: return "a list"
        case .dict: return "a dict"
        case let .global(g):
            switch g {
            case .orderedDict: return "collections.OrderedDict"
            case .rebuildTensorV2: return "torch._utils._rebuild_tensor_v2"
            case let .storageType(_, name): return "torch.\(name)"
            }
        case .storage: return "a storage"
        case .tensor: return "a tensor"
        }
    }
}

/// Interprets a pickle (protocols 2-5, binary opcodes) into `PickleValue`s without executing anything.
struct RestrictedUnpickler {
    /// The legacy storage classes torch pickles, by class name.
    static let storageTypes: [String: ElementType] = [
        "FloatStorage": .float32, "HalfStorage": .float16, "BFloat16Storage": .bfloat16, "DoubleStorage": .float64,
        "LongStorage": .int64, "IntStorage": .int32, "ShortStorage": .int16, "CharStorage": .int8,
        "ByteStorage": .uint8, "BoolStorage": .bool,
    ]

    private let bytes: UnsafeRawBufferPointer
    /// The checkpoint file and the entry name, for messages.
    private let path: String
    private let entryName: String
    private var position = 0
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]

    /// Interprets `bytes` (the `data.pkl` entry `entryName` of the checkpoint at `path`) and returns the
    /// value STOP leaves on the stack.
    static func load(_ bytes: UnsafeRawBufferPointer, path: String, entryName: String) throws -> PickleValue {
        var unpickler = RestrictedUnpickler(bytes: bytes, path: path, entryName: entryName)
        return try unpickler.run()
    }

    private init(bytes: UnsafeRawBufferPointer, path: String, entryName: String) {
        self.bytes = bytes
        self.path = path
        self.entryName = entryName
    }

    // MARK: - Errors

    private static let fixIfCorrupt = "Re-download the checkpoint or re-save it with torch.save(model.state_dict(), f)"
    private static let fixIfHostile = "Do not use this file: it may be malicious. Get the checkpoint from a trusted source, preferably as model.safetensors"

    private func invalid(_ problem: String, at offset: Int) -> WeightsError {
        WeightsError(.invalidPickle, path: path,
                     problem: "\(entryName) byte \(offset): \(problem)", fix: Self.fixIfCorrupt)
    }

    private func forbidden(_ problem: String, at offset: Int) -> WeightsError {
        WeightsError(.forbiddenPickle, path: path,
                     problem: "\(entryName) byte \(offset): \(problem); a state dict never needs it, so it was refused and nothing was executed",
                     fix: Self.fixIfHostile)
    }

    // MARK: - Reading the byte stream

    private mutating func read(_ count: Int, at opcodeOffset: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, count <= bytes.count - position else {
            throw invalid("the pickle ends in the middle of an opcode argument (needs \(count) bytes)", at: opcodeOffset)
        }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
    }

    private mutating func readUInt<T: FixedWidthInteger & UnsignedInteger>(_: T.Type, at offset: Int) throws -> T {
        let raw = try read(MemoryLayout<T>.size, at: offset)
        return T(littleEndian: raw.loadUnaligned(as: T.self))
    }

    /// A length field, checked against what is left of the pickle before anything is allocated.
    private mutating func readLength<T: FixedWidthInteger & UnsignedInteger>(_: T.Type, at offset: Int) throws -> Int {
        let n = try readUInt(T.self, at: offset)
        guard n <= UInt64(bytes.count - position) else {
            throw invalid("a length of \(n) bytes runs past the end of the pickle", at: offset)
        }
        return Int(n)
    }

    private mutating func readLine(at offset: Int) throws -> String {
        guard let newline = bytes[position...].firstIndex(of: 0x0a) else {
            throw invalid("an unterminated text argument", at: offset)
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<newline]), as: UTF8.self)
        position = newline + 1
        return text
    }

    private func utf8(_ raw: UnsafeRawBufferPointer, at offset: Int) throws -> String {
        guard let s = String(validating: raw, as: UTF8.self) else { throw invalid("a string that is not UTF-8", at: offset) }
        return s
    }

    // MARK: - Stack helpers

    private mutating func pop(at offset: Int) throws -> PickleValue {
        guard let top = stack.popLast(), stack.count >= (marks.last ?? 0) else {
            throw invalid("an opcode needs a value but the stack is empty", at: offset)
        }
        return top
    }

    private mutating func popToMark(at offset: Int) throws -> [PickleValue] {
        guard let mark = marks.popLast() else { throw invalid("an opcode needs a MARK but there is none", at: offset) }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    private func top(at offset: Int) throws -> PickleValue {
        guard let top = stack.last, stack.count > (marks.last ?? 0) else {
            throw invalid("an opcode needs a value but the stack is empty", at: offset)
        }
        return top
    }

    // MARK: - The interpreter

    private mutating func run() throws -> PickleValue {
        while position < bytes.count {
            let offset = position
            let opcode = bytes[position]
            position += 1
            switch opcode {
            case 0x80: // PROTO
                let version = try read(1, at: offset)[0]
                guard version <= 5 else { throw invalid("unknown pickle protocol \(version)", at: offset) }
            case 0x95: // FRAME: a length hint only
                _ = try read(8, at: offset)
            case 0x2e: // STOP
                return try pop(at: offset)

            case 0x63: // GLOBAL "module\nname\n"
                let module = try readLine(at: offset)
                let name = try readLine(at: offset)
                stack.append(.global(try resolveGlobal(module: module, name: name, at: offset)))
            case 0x93: // STACK_GLOBAL
                let nameValue = try pop(at: offset)
                let moduleValue = try pop(at: offset)
                guard case let .string(name) = nameValue, case let .string(module) = moduleValue else {
                    throw invalid("STACK_GLOBAL needs two strings", at: offset)
                }
                stack.append(.global(try resolveGlobal(module: module, name: name, at: offset)))

            case 0x28: // MARK
                marks.append(stack.count)
            case 0x29: // EMPTY_TUPLE
                stack.append(.tuple([]))
            case 0x74: // TUPLE
                stack.append(.tuple(try popToMark(at: offset)))
            case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
                let n = Int(opcode - 0x84)
                var items: [PickleValue] = []
                for _ in 0..<n { items.append(try pop(at: offset)) }
                stack.append(.tuple(items.reversed()))
            case 0x5d: // EMPTY_LIST
                stack.append(.list(PickleList()))
            case 0x6c: // LIST
                let list = PickleList()
                list.items = try popToMark(at: offset)
                stack.append(.list(list))
            case 0x61: // APPEND
                let value = try pop(at: offset)
                guard case let .list(list) = try top(at: offset) else { throw invalid("APPEND to a non-list", at: offset) }
                list.items.append(value)
            case 0x65: // APPENDS
                let values = try popToMark(at: offset)
                guard case let .list(list) = try top(at: offset) else { throw invalid("APPENDS to a non-list", at: offset) }
                list.items.append(contentsOf: values)
            case 0x7d: // EMPTY_DICT
                stack.append(.dict(PickleDict()))
            case 0x64: // DICT
                let items = try popToMark(at: offset)
                guard items.count % 2 == 0 else { throw invalid("DICT with an odd number of items", at: offset) }
                let dict = PickleDict()
                for i in stride(from: 0, to: items.count, by: 2) { dict.items.append((items[i], items[i + 1])) }
                stack.append(.dict(dict))
            case 0x73: // SETITEM
                let value = try pop(at: offset)
                let key = try pop(at: offset)
                guard case let .dict(dict) = try top(at: offset) else { throw invalid("SETITEM on a non-dict", at: offset) }
                dict.items.append((key, value))
            case 0x75: // SETITEMS
                let items = try popToMark(at: offset)
                guard items.count % 2 == 0 else { throw invalid("SETITEMS with an odd number of items", at: offset) }
                guard case let .dict(dict) = try top(at: offset) else { throw invalid("SETITEMS on a non-dict", at: offset) }
                for i in stride(from: 0, to: items.count, by: 2) { dict.items.append((items[i], items[i + 1])) }

            case 0x71: // BINPUT
                memo[Int(try read(1, at: offset)[0])] = try top(at: offset)
            case 0x72: // LONG_BINPUT
                memo[Int(try readUInt(UInt32.self, at: offset))] = try top(at: offset)
            case 0x94: // MEMOIZE
                memo[memo.count] = try top(at: offset)
            case 0x68, 0x6a: // BINGET, LONG_BINGET
                let index = opcode == 0x68 ? Int(try read(1, at: offset)[0]) : Int(try readUInt(UInt32.self, at: offset))
                guard let value = memo[index] else { throw invalid("BINGET of memo slot \(index), which was never set", at: offset) }
                stack.append(value)

            case 0x4e: // NONE
                stack.append(.none)
            case 0x88: // NEWTRUE
                stack.append(.bool(true))
            case 0x89: // NEWFALSE
                stack.append(.bool(false))
            case 0x4b: // BININT1
                stack.append(.int(Int(try read(1, at: offset)[0])))
            case 0x4d: // BININT2
                stack.append(.int(Int(try readUInt(UInt16.self, at: offset))))
            case 0x4a: // BININT (signed 32-bit)
                stack.append(.int(Int(Int32(bitPattern: try readUInt(UInt32.self, at: offset)))))
            case 0x8a, 0x8b: // LONG1, LONG4: little-endian two's complement
                let n = opcode == 0x8a ? Int(try read(1, at: offset)[0]) : try readLength(UInt32.self, at: offset)
                guard n <= 8 else { throw invalid("an integer of \(n) bytes, too large for this reader", at: offset) }
                let raw = try read(n, at: offset)
                var value: UInt64 = 0
                for (i, b) in raw.enumerated() { value |= UInt64(b) << (8 * UInt64(i)) }
                if n > 0 && n < 8 && raw[n - 1] & 0x80 != 0 { value |= ~0 << (8 * UInt64(n)) }  // sign-extend
                stack.append(.int(Int(Int64(bitPattern: value))))
            case 0x47: // BINFLOAT: big-endian double
                let raw = try read(8, at: offset)
                stack.append(.float(Double(bitPattern: UInt64(bigEndian: raw.loadUnaligned(as: UInt64.self)))))

            case 0x58: // BINUNICODE
                let n = try readLength(UInt32.self, at: offset)
                stack.append(.string(try utf8(try read(n, at: offset), at: offset)))
            case 0x8c: // SHORT_BINUNICODE
                let n = Int(try read(1, at: offset)[0])
                stack.append(.string(try utf8(try read(n, at: offset), at: offset)))
            case 0x8d: // BINUNICODE8
                let n = try readLength(UInt64.self, at: offset)
                stack.append(.string(try utf8(try read(n, at: offset), at: offset)))
            case 0x55, 0x54: // SHORT_BINSTRING, BINSTRING: Python 2 str; torch's loader decodes them as text
                let n = opcode == 0x55 ? Int(try read(1, at: offset)[0]) : try readLength(UInt32.self, at: offset)
                stack.append(.string(String(decoding: try read(n, at: offset), as: UTF8.self)))
            case 0x43, 0x42, 0x8e: // SHORT_BINBYTES, BINBYTES, BINBYTES8
                let n: Int
                switch opcode {
                case 0x43: n = Int(try read(1, at: offset)[0])
                case 0x42: n = try readLength(UInt32.self, at: offset)
                default: n = try readLength(UInt64.self, at: offset)
                }
                stack.append(.bytes(Array(try read(n, at: offset))))

            case 0x51: // BINPERSID
                stack.append(.storage(try persistentStorage(try pop(at: offset), at: offset)))
            case 0x52: // REDUCE
                let args = try pop(at: offset)
                let callable = try pop(at: offset)
                stack.append(try reduce(callable, args, at: offset))
            case 0x62: // BUILD: only the OrderedDict's `_metadata` attribute, which is ignored
                let state = try pop(at: offset)
                let target = try top(at: offset)
                guard case .dict = target else {
                    throw forbidden("BUILD sets the state of \(target.kindName) (with \(state.kindName))", at: offset)
                }

            case 0x69: throw forbidden("opcode INST (0x69) constructs an arbitrary object", at: offset)
            case 0x6f: throw forbidden("opcode OBJ (0x6f) constructs an arbitrary object", at: offset)
            case 0x81: throw forbidden("opcode NEWOBJ (0x81) constructs an arbitrary object", at: offset)
            case 0x92: throw forbidden("opcode NEWOBJ_EX (0x92) constructs an arbitrary object", at: offset)
            case 0x82, 0x83, 0x84:
                throw forbidden("opcode EXT\(opcode == 0x82 ? 1 : opcode == 0x83 ? 2 : 4) (0x\(String(opcode, radix: 16))) loads a registered extension object", at: offset)
            case 0x50: throw forbidden("opcode PERSID (0x50) loads a text persistent id", at: offset)
            default:
                throw invalid("opcode 0x\(String(opcode, radix: 16)) is not one a state dict uses", at: offset)
            }
        }
        throw invalid("the pickle ends without STOP", at: position)
    }

    private func resolveGlobal(module: String, name: String, at offset: Int) throws -> PickleGlobal {
        switch (module, name) {
        case ("collections", "OrderedDict"): return .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): return .rebuildTensorV2
        case ("torch", _):
            if let type = Self.storageTypes[name] { return .storageType(type, name: name) }
            if name.hasSuffix("Storage") {
                throw WeightsError(.unknownElementType, path: path,
                                   problem: "\(entryName) byte \(offset): storage type torch.\(name) is not supported (known: \(Self.storageTypes.keys.sorted().joined(separator: ", ")))",
                                   fix: "Convert the checkpoint to float32 (state_dict values .float()) and save it again")
            }
        default: break
        }
        throw forbidden("GLOBAL '\(module).\(name)' is not one of collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch.<Type>Storage", at: offset)
    }

    /// BINPERSID's id must be `('storage', <StorageType>, key, location, numel)`.
    private func persistentStorage(_ id: PickleValue, at offset: Int) throws -> StorageReference {
        guard case let .tuple(items) = id, items.count == 5, case .string("storage") = items[0] else {
            throw invalid("BINPERSID with \(id.kindName) instead of ('storage', type, key, location, numel)", at: offset)
        }
        guard case let .global(.storageType(elementType, _)) = items[1] else {
            throw invalid("BINPERSID storage type is \(items[1].kindName), not a torch.<Type>Storage", at: offset)
        }
        guard case let .string(key) = items[2], case let .string(location) = items[3],
              case let .int(count) = items[4], count >= 0 else {
            throw invalid("BINPERSID key, location or numel has the wrong type", at: offset)
        }
        return StorageReference(key: key, elementType: elementType, elementCount: count, location: location)
    }

    private func reduce(_ callable: PickleValue, _ argsValue: PickleValue, at offset: Int) throws -> PickleValue {
        guard case let .tuple(args) = argsValue else { throw invalid("REDUCE arguments are \(argsValue.kindName), not a tuple", at: offset) }
        guard case let .global(global) = callable else {
            throw forbidden("REDUCE calls \(callable.kindName), which is not a whitelisted callable", at: offset)
        }
        switch global {
        case .orderedDict:
            let dict = PickleDict()
            if args.isEmpty { return .dict(dict) }
            // OrderedDict([(key, value), ...])
            guard args.count == 1, case let .list(pairs) = args[0] else {
                throw invalid("OrderedDict called with \(args.count) arguments", at: offset)
            }
            for pair in pairs.items {
                guard case let .tuple(kv) = pair, kv.count == 2 else { throw invalid("OrderedDict item is not a pair", at: offset) }
                dict.items.append((kv[0], kv[1]))
            }
            return .dict(dict)
        case .rebuildTensorV2:
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            guard args.count == 6 || args.count == 7 else {
                throw invalid("_rebuild_tensor_v2 called with \(args.count) arguments instead of 6 or 7", at: offset)
            }
            guard case let .storage(storage) = args[0] else {
                throw invalid("_rebuild_tensor_v2 storage is \(args[0].kindName)", at: offset)
            }
            guard case let .int(storageOffset) = args[1], storageOffset >= 0 else {
                throw invalid("_rebuild_tensor_v2 storage_offset is not a non-negative int", at: offset)
            }
            guard let shape = Self.intTuple(args[2]), let strides = Self.intTuple(args[3]), shape.count == strides.count,
                  shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
                throw invalid("_rebuild_tensor_v2 size and stride are not matching tuples of non-negative ints", at: offset)
            }
            return .tensor(TensorRecord(storage: storage, storageOffset: storageOffset, shape: shape, strides: strides))
        case let .storageType(_, name):
            throw forbidden("REDUCE calls torch.\(name)", at: offset)
        }
    }

    private static func intTuple(_ value: PickleValue) -> [Int]? {
        guard case let .tuple(items) = value else { return nil }
        var ints: [Int] = []
        for item in items {
            guard case let .int(n) = item else { return nil }
            ints.append(n)
        }
        return ints
    }
}
