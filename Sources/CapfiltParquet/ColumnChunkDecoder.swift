// Turns one column chunk's bytes (dictionary page, data pages v1/v2) into a typed `ParquetColumn`. Every page
// count is checked against what the chunk declared and the read limits before anything is decoded, so memory is
// bounded by the chunk's declared value count, which ParquetFile has already bounded.

/// Decodes the pages of one column chunk.
struct ColumnChunkDecoder {
    let descriptor: ParquetColumnDescriptor
    let codec: ParquetCompression
    let declaredValues: Int
    let rowCount: Int
    let limits: ParquetReadLimits

    /// The level at and above which a level position holds a slot: a list element, or any row of a flat column.
    private var slotLevel: Int { descriptor.listLevels?.element ?? 0 }

    func decode(chunk: [UInt8], chunkOffset: Int64) throws -> ParquetColumn {
        var position = 0
        var dictionary: ParquetValues?
        var definitionLevels: [UInt8] = []
        var repetitionLevels: [UInt8] = []
        var values = ValueAccumulator(type: descriptor.physicalType)
        var validity: [Bool] = []
        var valuesRead = 0
        var sawDataPage = false
        if descriptor.maxDefinitionLevel > 0 { definitionLevels.reserveCapacity(min(declaredValues, 1 << 20)) }

        while valuesRead < declaredValues {
            let pageStart = position
            let place = "page at byte \(chunkOffset + Int64(pageStart))"
            guard position < chunk.count else {
                throw FormatError(.corrupt, "the chunk ends after \(valuesRead) of its \(declaredValues) values")
            }
            var thrift = ThriftCompactReader(bytes: chunk, start: position)
            let header: PageHeader
            do {
                header = try PageHeader(thrift.readStruct(named: "PageHeader"))
            } catch let error as FormatError {
                throw FormatError(error.kind, "\(place): \(error.detail)")
            }
            position = thrift.position
            guard header.compressedSize <= chunk.count - position else {
                throw FormatError(.badLength, "\(place): compressed_page_size \(header.compressedSize) runs past the "
                    + "chunk (\(chunk.count - position) bytes left)")
            }
            guard header.uncompressedSize <= limits.maxPageBytes else {
                throw FormatError(.badLength, "\(place): uncompressed_page_size \(header.uncompressedSize) exceeds the "
                    + "limit of \(limits.maxPageBytes) bytes (ParquetReadLimits.maxPageBytes)")
            }
            let body = position..<position + header.compressedSize
            position = body.upperBound
            do {
                switch header.type {
                case .indexPage:
                    continue
                case .dictionaryPage:
                    guard let info = header.dictionary else { throw FormatError(.badThrift, "dictionary_page_header is missing") }
                    guard dictionary == nil, !sawDataPage else {
                        throw FormatError(.corrupt, "a second dictionary page, or one after data pages")
                    }
                    guard info.encoding == .plain || info.encoding == .plainDictionary else {
                        throw FormatError(.unsupported, "dictionary page encoding \(info.encoding)")
                    }
                    guard info.numValues <= limits.maxValuesPerColumnChunk else {
                        throw FormatError(.badLength, "the dictionary claims \(info.numValues) entries, over the limit of "
                            + "\(limits.maxValuesPerColumnChunk) (ParquetReadLimits.maxValuesPerColumnChunk)")
                    }
                    let page = try decompress(chunk[body], expectedSize: header.uncompressedSize)
                    var cursor = ByteCursor(page)
                    dictionary = try decodeDense(encoding: .plain, cursor: &cursor, count: info.numValues, dictionary: nil)
                case .dataPage:
                    guard let info = header.v1 else { throw FormatError(.badThrift, "data_page_header is missing") }
                    sawDataPage = true
                    try checkCount(info.numValues, read: valuesRead)
                    let page = try decompress(chunk[body], expectedSize: header.uncompressedSize)
                    var cursor = ByteCursor(page)
                    let rep = try levels(&cursor, max: descriptor.maxRepetitionLevel, count: info.numValues,
                                         encoding: info.repetitionEncoding, lengthPrefixed: true, what: "repetition levels")
                    let def = try levels(&cursor, max: descriptor.maxDefinitionLevel, count: info.numValues,
                                         encoding: info.definitionEncoding, lengthPrefixed: true, what: "definition levels")
                    try appendPage(values: &cursor, encoding: info.encoding, levelCount: info.numValues, def: def, rep: rep,
                                   dictionary: dictionary, into: &values, validity: &validity,
                                   definitionLevels: &definitionLevels, repetitionLevels: &repetitionLevels)
                    valuesRead += info.numValues
                case .dataPageV2:
                    guard let info = header.v2 else { throw FormatError(.badThrift, "data_page_header_v2 is missing") }
                    sawDataPage = true
                    try checkCount(info.numValues, read: valuesRead)
                    let levelBytes = info.repetitionBytes + info.definitionBytes
                    guard levelBytes <= body.count, levelBytes <= header.uncompressedSize else {
                        throw FormatError(.badLength, "level byte lengths \(info.repetitionBytes) + \(info.definitionBytes) "
                            + "exceed the page (\(body.count) bytes)")
                    }
                    var repCursor = ByteCursor(chunk, from: body.lowerBound, to: body.lowerBound + info.repetitionBytes)
                    var defCursor = ByteCursor(chunk, from: repCursor.end, to: repCursor.end + info.definitionBytes)
                    let rep = try levels(&repCursor, max: descriptor.maxRepetitionLevel, count: info.numValues,
                                         encoding: .rle, lengthPrefixed: false, what: "repetition levels")
                    let def = try levels(&defCursor, max: descriptor.maxDefinitionLevel, count: info.numValues,
                                         encoding: .rle, lengthPrefixed: false, what: "definition levels")
                    let valueBytes = chunk[(body.lowerBound + levelBytes)..<body.upperBound]
                    let valueSize = header.uncompressedSize - levelBytes
                    let page = info.isCompressed ? try decompress(valueBytes, expectedSize: valueSize) : Array(valueBytes)
                    var cursor = ByteCursor(page)
                    try appendPage(values: &cursor, encoding: info.encoding, levelCount: info.numValues, def: def, rep: rep,
                                   dictionary: dictionary, into: &values, validity: &validity,
                                   definitionLevels: &definitionLevels, repetitionLevels: &repetitionLevels)
                    valuesRead += info.numValues
                }
            } catch let error as FormatError {
                throw FormatError(error.kind, "\(place): \(error.detail)")
            }
        }
        return try assemble(values: values, validity: validity, definitionLevels: definitionLevels,
                            repetitionLevels: repetitionLevels, levelCount: valuesRead)
    }

    private func checkCount(_ pageValues: Int, read: Int) throws {
        guard pageValues <= declaredValues - read else {
            throw FormatError(.corrupt, "the page holds \(pageValues) values but the chunk has only \(declaredValues - read) left")
        }
    }

    private func decompress(_ bytes: ArraySlice<UInt8>, expectedSize: Int) throws -> [UInt8] {
        switch codec {
        case .uncompressed:
            guard bytes.count == expectedSize else {
                throw FormatError(.corrupt, "an uncompressed page has \(bytes.count) bytes but claims \(expectedSize)")
            }
            return Array(bytes)
        case .snappy: return try Snappy.decompress(bytes, expectedSize: expectedSize)
        case .zstd: return try Zstd.decompress(bytes, expectedSize: expectedSize)
        case .gzip: return try Zlib.decompress(bytes, expectedSize: expectedSize)
        default: throw FormatError(.unsupported, "compression codec \(codec)")
        }
    }

    /// Decodes `count` levels in 0...max, or none when max is 0 (the column cannot have them).
    private func levels(_ cursor: inout ByteCursor, max: Int, count: Int, encoding: ParquetEncoding, lengthPrefixed: Bool,
                        what: String) throws -> [UInt8]? {
        guard max > 0 else { return nil }
        guard encoding == .rle else { throw FormatError(.unsupported, "\(what) encoding \(encoding)") }
        var window = cursor
        if lengthPrefixed {
            let length = Int(try cursor.uint32LE(what))
            window = ByteCursor(cursor.bytes, from: cursor.position, to: cursor.position + min(length, cursor.remaining))
            guard length <= cursor.remaining else {
                throw FormatError(.corrupt, "\(what) claim \(length) bytes but the page has \(cursor.remaining) left")
            }
            cursor.position += length
        }
        let raw = try decodeRLEHybrid(&window, bitWidth: bitWidth(forMax: max), count: count, what: what)
        var out = [UInt8](repeating: 0, count: count)
        for (i, level) in raw.enumerated() {
            guard level <= UInt32(max) else { throw FormatError(.corrupt, "\(what): level \(level) exceeds the maximum \(max)") }
            out[i] = UInt8(level)
        }
        return out
    }

    /// Decodes a page's present values densely, then lays them out as slots with nulls between.
    private func appendPage(values cursor: inout ByteCursor, encoding: ParquetEncoding, levelCount: Int, def: [UInt8]?,
                            rep: [UInt8]?, dictionary: ParquetValues?, into values: inout ValueAccumulator,
                            validity: inout [Bool], definitionLevels: inout [UInt8], repetitionLevels: inout [UInt8]) throws {
        let maxDef = UInt8(descriptor.maxDefinitionLevel)
        var pageSlots: [Bool]?
        if let def {
            let slot = UInt8(slotLevel)
            var slots: [Bool] = []
            slots.reserveCapacity(levelCount)
            for level in def where level >= slot { slots.append(level == maxDef) }
            pageSlots = slots
        }
        let present = pageSlots.map { slots in slots.reduce(0) { $0 + ($1 ? 1 : 0) } } ?? levelCount
        if encoding == .plain && descriptor.physicalType == .byteArray {
            // The bulk of image datasets: copied once, from the page straight into the column.
            try values.appendPlainByteArrays(&cursor, present: present, slots: pageSlots, what: "PLAIN BYTE_ARRAY values")
        } else {
            values.append(try decodeDense(encoding: encoding, cursor: &cursor, count: present, dictionary: dictionary),
                          slots: pageSlots)
        }
        guard let def, let pageSlots else { return }
        validity.append(contentsOf: pageSlots)
        definitionLevels.append(contentsOf: def)
        if let rep { repetitionLevels.append(contentsOf: rep) }
    }

    /// Decodes `count` present values of the column's physical type.
    private func decodeDense(encoding: ParquetEncoding, cursor: inout ByteCursor, count: Int,
                             dictionary: ParquetValues?) throws -> ParquetValues {
        let type = descriptor.physicalType
        let what = "\(encoding) \(type) values"
        func unsupported() -> FormatError {
            FormatError(.unsupported, "encoding \(encoding) for \(type) values")
        }
        // An all-null page: some writers leave the value section empty whatever the encoding.
        if count == 0 && cursor.remaining == 0 {
            return ValueAccumulator(type: type).result
        }
        switch encoding {
        case .plainDictionary, .rleDictionary:
            guard let dictionary else { throw FormatError(.corrupt, "dictionary-encoded values but no dictionary page") }
            let width = Int(try cursor.byte("the dictionary index bit width"))
            let indices = try decodeRLEHybrid(&cursor, bitWidth: width, count: count, what: "dictionary indices")
            return try gather(dictionary, indices)
        case .plain:
            switch type {
            case .boolean:
                let range = try cursor.take((count + 7) / 8, what)
                return .boolean((0..<count).map { cursor.bytes[range.lowerBound + $0 >> 3] >> UInt8($0 & 7) & 1 == 1 })
            case .int32:
                let range = try cursor.take(count * 4, what)
                return .int32((0..<count).map { Int32(bitPattern: le32(cursor.bytes, range.lowerBound + 4 * $0)) })
            case .int64:
                let range = try cursor.take(count * 8, what)
                return .int64((0..<count).map { Int64(bitPattern: le64(cursor.bytes, range.lowerBound + 8 * $0)) })
            case .float:
                let range = try cursor.take(count * 4, what)
                return .float((0..<count).map { Float(bitPattern: le32(cursor.bytes, range.lowerBound + 4 * $0)) })
            case .double:
                let range = try cursor.take(count * 8, what)
                return .double((0..<count).map { Double(bitPattern: le64(cursor.bytes, range.lowerBound + 8 * $0)) })
            case .byteArray:
                var out = ParquetByteArrays()
                try decodePlainByteArrays(&cursor, count: count, into: &out, what: what)
                return .byteArray(out)
            case .fixedLenByteArray:
                let width = descriptor.typeLength ?? 0
                let range = try cursor.take(count * width, what)
                var out = ParquetByteArrays()
                out.reserve(values: count, bytes: range.count)
                for i in 0..<count { out.append(cursor.bytes[(range.lowerBound + i * width)..<(range.lowerBound + (i + 1) * width)]) }
                return .fixedLenByteArray(out)
            case .int96:
                throw FormatError(.unsupported, "INT96 values (legacy timestamps); write timestamps as INT64")
            }
        case .rle:
            guard type == .boolean else { throw unsupported() }
            let length = Int(try cursor.uint32LE(what))
            guard length <= cursor.remaining else { throw FormatError(.corrupt, "\(what) claim \(length) bytes past the page") }
            var window = ByteCursor(cursor.bytes, from: cursor.position, to: cursor.position + length)
            cursor.position += length
            return .boolean(try decodeRLEHybrid(&window, bitWidth: 1, count: count, what: what).map { $0 == 1 })
        case .deltaBinaryPacked:
            let decoded = try decodeDeltaBinaryPacked(&cursor, count: count, what: what)
            switch type {
            case .int32: return .int32(decoded.map { Int32(truncatingIfNeeded: $0) })
            case .int64: return .int64(decoded)
            default: throw unsupported()
            }
        case .deltaLengthByteArray:
            guard type == .byteArray else { throw unsupported() }
            var out = ParquetByteArrays()
            try decodeDeltaLengthByteArrays(&cursor, count: count, into: &out, what: what)
            return .byteArray(out)
        case .deltaByteArray:
            var out = ParquetByteArrays()
            try decodeDeltaByteArrays(&cursor, count: count, into: &out, what: what)
            switch type {
            case .byteArray: return .byteArray(out)
            case .fixedLenByteArray:
                let width = descriptor.typeLength ?? 0
                for i in 0..<out.count where out[i].count != width {
                    throw FormatError(.corrupt, "\(what): a value has \(out[i].count) bytes, not \(width)")
                }
                return .fixedLenByteArray(out)
            default: throw unsupported()
            }
        case .byteStreamSplit:
            switch type {
            case .float:
                return .float(try decodeByteStreamSplit(&cursor, count: count, width: 4, what: what).map { Float(bitPattern: UInt32(truncatingIfNeeded: $0)) })
            case .double:
                return .double(try decodeByteStreamSplit(&cursor, count: count, width: 8, what: what).map { Double(bitPattern: $0) })
            case .int32:
                return .int32(try decodeByteStreamSplit(&cursor, count: count, width: 4, what: what).map { Int32(truncatingIfNeeded: $0) })
            case .int64:
                return .int64(try decodeByteStreamSplit(&cursor, count: count, width: 8, what: what).map { Int64(bitPattern: $0) })
            case .fixedLenByteArray:
                // Byte b of value i sits at b * count + i, for values of any width.
                let width = descriptor.typeLength ?? 0
                let range = try cursor.take(count * width, what)
                var out = ParquetByteArrays()
                out.reserve(values: count, bytes: range.count)
                for i in 0..<count {
                    out.append((0..<width).map { cursor.bytes[range.lowerBound + $0 * count + i] })
                }
                return .fixedLenByteArray(out)
            default: throw unsupported()
            }
        default:
            throw unsupported()
        }
    }

    private func gather(_ dictionary: ParquetValues, _ indices: [UInt32]) throws -> ParquetValues {
        let size = dictionary.count
        for index in indices where Int(index) >= size {
            throw FormatError(.corrupt, "dictionary index \(index) is past the dictionary's \(size) entries")
        }
        switch dictionary {
        case .boolean(let d): return .boolean(indices.map { d[Int($0)] })
        case .int32(let d): return .int32(indices.map { d[Int($0)] })
        case .int64(let d): return .int64(indices.map { d[Int($0)] })
        case .float(let d): return .float(indices.map { d[Int($0)] })
        case .double(let d): return .double(indices.map { d[Int($0)] })
        case .byteArray(let d), .fixedLenByteArray(let d):
            var out = ParquetByteArrays()
            var total = 0
            for index in indices { total += d[Int(index)].count }
            out.reserve(values: indices.count, bytes: total)
            for index in indices { out.append(d[Int(index)]) }
            if case .fixedLenByteArray = dictionary { return .fixedLenByteArray(out) }
            return .byteArray(out)
        }
    }

    /// Checks the levels against the row group and builds list offsets.
    private func assemble(values: ValueAccumulator, validity: [Bool], definitionLevels: [UInt8],
                          repetitionLevels: [UInt8], levelCount: Int) throws -> ParquetColumn {
        var listOffsets: [Int] = []
        var listValidity: [Bool] = []
        if let list = descriptor.listLevels {
            listOffsets.reserveCapacity(rowCount + 1)
            listValidity.reserveCapacity(rowCount)
            var slots = 0
            for (i, rep) in repetitionLevels.enumerated() {
                let def = Int(definitionLevels[i])
                if rep == 0 {
                    listOffsets.append(slots)
                    listValidity.append(def >= list.list)
                } else if i == 0 {
                    throw FormatError(.corrupt, "the first repetition level is \(rep), not 0")
                }
                if def >= list.element { slots += 1 }
            }
            listOffsets.append(slots)
            guard listValidity.count == rowCount else {
                throw FormatError(.corrupt, "the column holds \(listValidity.count) rows but the row group has \(rowCount)")
            }
        } else if levelCount != rowCount {
            throw FormatError(.corrupt, "the column holds \(levelCount) values but the row group has \(rowCount) rows")
        }
        return ParquetColumn(descriptor: descriptor, rowCount: rowCount, values: values.result, validity: validity,
                             definitionLevels: definitionLevels, listOffsets: listOffsets, listValidity: listValidity)
    }
}

@inline(__always) private func le32(_ b: [UInt8], _ i: Int) -> UInt32 {
    UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
}

@inline(__always) private func le64(_ b: [UInt8], _ i: Int) -> UInt64 {
    UInt64(le32(b, i)) | UInt64(le32(b, i + 4)) << 32
}

/// Collects slots page by page in the column's physical type.
struct ValueAccumulator {
    private(set) var result: ParquetValues

    init(type: ParquetPhysicalType) {
        switch type {
        case .boolean: result = .boolean([])
        case .int32: result = .int32([])
        case .int64, .int96: result = .int64([])
        case .float: result = .float([])
        case .double: result = .double([])
        case .byteArray: result = .byteArray(ParquetByteArrays())
        case .fixedLenByteArray: result = .fixedLenByteArray(ParquetByteArrays())
        }
    }

    /// Decodes `present` PLAIN byte arrays from `cursor` straight into the column, with empty slots for nulls.
    mutating func appendPlainByteArrays(_ cursor: inout ByteCursor, present: Int, slots: [Bool]?, what: String) throws {
        guard case .byteArray(var out) = result else {
            preconditionFailure("PLAIN byte arrays decoded into a \(result) column")
        }
        result = .boolean([])  // `out` is now the buffer's only owner
        defer { result = .byteArray(out) }
        out.reserve(values: slots?.count ?? present, bytes: max(0, cursor.remaining - 4 * present))
        func next() throws {
            let length = Int(try cursor.uint32LE(what))
            out.append(cursor.bytes[try cursor.take(length, what)])
        }
        guard let slots else {
            for _ in 0..<present { try next() }
            return
        }
        for isPresent in slots {
            if isPresent { try next() } else { out.appendEmpty() }
        }
    }

    /// Appends `dense` (present values only) as slots: `slots[i]` says whether slot i is present; nil = all present.
    mutating func append(_ dense: ParquetValues, slots: [Bool]?) {
        func spread<T>(_ out: inout [T], _ values: [T], zero: T) {
            guard let slots else { return out.append(contentsOf: values) }
            reserveGrowing(&out, out.count + slots.count)
            var next = 0
            for present in slots {
                if present {
                    out.append(values[next])
                    next += 1
                } else {
                    out.append(zero)
                }
            }
        }
        func spreadBytes(_ out: inout ParquetByteArrays, _ values: ParquetByteArrays) {
            out.reserve(values: slots?.count ?? values.count, bytes: values.bytes.count)
            var next = 0
            for present in slots ?? [Bool](repeating: true, count: values.count) {
                if present {
                    out.append(values[next])
                    next += 1
                } else {
                    out.appendEmpty()
                }
            }
        }
        // Each case empties `result` before appending so `out` is the array's only owner (no copy per page).
        switch (result, dense) {
        case (.boolean(var out), .boolean(let v)): result = .boolean([]); spread(&out, v, zero: false); result = .boolean(out)
        case (.int32(var out), .int32(let v)): result = .int32([]); spread(&out, v, zero: 0); result = .int32(out)
        case (.int64(var out), .int64(let v)): result = .int64([]); spread(&out, v, zero: 0); result = .int64(out)
        case (.float(var out), .float(let v)): result = .float([]); spread(&out, v, zero: 0); result = .float(out)
        case (.double(var out), .double(let v)): result = .double([]); spread(&out, v, zero: 0); result = .double(out)
        case (.byteArray(var out), .byteArray(let v)):
            result = .boolean([])
            spreadBytes(&out, v)
            result = .byteArray(out)
        case (.fixedLenByteArray(var out), .fixedLenByteArray(let v)):
            result = .boolean([])
            spreadBytes(&out, v)
            result = .fixedLenByteArray(out)
        default:
            // decodeDense returns the column's own physical type; a mismatch is a bug in this module.
            preconditionFailure("decoded \(dense) into a \(result) column")
        }
    }
}
