// Decoding JPEG, PNG and WebP bytes into the RGB image transformers' convert_to_rgb would produce from
// PIL.Image.open on the same bytes, and encoding RGB as JPEG or WebP (for `output.image_format`). The only
// Swift file that imports CImageCodecs: C status codes and raw pointers stop here.
import CImageCodecs
import Foundation

/// Decodes image files. All entry points are pure functions of the bytes and are safe to call concurrently.
public enum ImageDecoder {
    /// The format from the magic number (Pillow's own checks), or nil when it is none of the three.
    public static func sniff(_ bytes: UnsafeRawBufferPointer) -> ImageFormat? {
        guard let base = bytes.baseAddress else { return nil }
        return format(cic_sniff(base.assumingMemoryBound(to: UInt8.self), bytes.count))
    }

    /// Reads format and dimensions from the header only, without decoding pixels,
    /// so absurd sizes can be refused cheaply.
    public static func readHeader(_ bytes: UnsafeRawBufferPointer) throws(ImageError) -> ImageHeader {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { throw ImageError(.empty) }
        var info = cic_info()
        let status = cic_read_header(base.assumingMemoryBound(to: UInt8.self), bytes.count, &info)
        let sniffed = format(info.format)
        guard status == Int32(CIC_OK), let sniffed else {
            throw error(status: status, info: &info, bytes: bytes)
        }
        return ImageHeader(format: sniffed, width: Int(info.width), height: Int(info.height))
    }

    /// Decodes and converts to RGB exactly as transformers' `convert_to_rgb` does on a PIL image opened
    /// from these bytes (Pillow 13): alpha and tRNS colours are composited onto white, grey is
    /// replicated, palettes are looked up, CMYK goes through Pillow's formula. EXIF orientation is not
    /// applied, as `Image.open` does not apply it. An animated WebP gives its first frame.
    public static func decodeRGB(
        _ bytes: UnsafeRawBufferPointer, limits: ImageLimits = .default
    ) throws(ImageError) -> RGBImage {
        let header = try readHeader(bytes)
        try limits.check(header)
        guard let base = bytes.baseAddress else { throw ImageError(.empty) }
        let (width, height) = (header.width, header.height)
        let count = width * height * 3
        var info = cic_info()
        var status = Int32(CIC_OK)
        // The decoder writes straight into the array's storage: no intermediate copy of the pixels.
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            status = cic_decode_rgb(
                base.assumingMemoryBound(to: UInt8.self), bytes.count, buffer.baseAddress,
                Int32(width), Int32(height), &info)
            initialized = status == Int32(CIC_OK) ? count : 0
        }
        guard status == Int32(CIC_OK) else {
            throw error(status: status, info: &info, bytes: bytes)
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    // MARK: - Convenience overloads

    public static func sniff(_ bytes: [UInt8]) -> ImageFormat? {
        bytes.withUnsafeBytes { sniff($0) }
    }

    public static func sniff(_ data: Data) -> ImageFormat? {
        data.withUnsafeBytes { sniff($0) }
    }

    public static func readHeader(_ bytes: [UInt8]) throws(ImageError) -> ImageHeader {
        try bytes.withUnsafeBytes { buffer in Result { () throws(ImageError) in try readHeader(buffer) } }.get()
    }

    public static func readHeader(_ data: Data) throws(ImageError) -> ImageHeader {
        try data.withUnsafeBytes { buffer in Result { () throws(ImageError) in try readHeader(buffer) } }.get()
    }

    public static func decodeRGB(_ bytes: [UInt8], limits: ImageLimits = .default) throws(ImageError) -> RGBImage {
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(ImageError) in try decodeRGB(buffer, limits: limits) }
        }.get()
    }

    public static func decodeRGB(_ data: Data, limits: ImageLimits = .default) throws(ImageError) -> RGBImage {
        try data.withUnsafeBytes { buffer in
            Result { () throws(ImageError) in try decodeRGB(buffer, limits: limits) }
        }.get()
    }

    // MARK: - Mapping C results

    private static func format(_ code: Int32) -> ImageFormat? {
        switch code {
        case Int32(CIC_FORMAT_JPEG): return .jpeg
        case Int32(CIC_FORMAT_PNG): return .png
        case Int32(CIC_FORMAT_WEBP): return .webp
        default: return nil
        }
    }

    private static func error(status: Int32, info: inout cic_info, bytes: UnsafeRawBufferPointer) -> ImageError {
        let format = format(info.format)
        let message = withUnsafeBytes(of: &info.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        switch status {
        case Int32(CIC_TRUNCATED):
            return ImageError(.truncated, format: format, detail: message)
        case Int32(CIC_UNSUPPORTED):
            return ImageError(.unsupportedFormat, format: format, detail: message)
        case Int32(CIC_UNKNOWN_FORMAT):
            return ImageError(.unsupportedFormat, format: nil, detail: describeUnknown(bytes))
        case Int32(CIC_NO_MEMORY):
            return ImageError(
                .tooLarge(width: Int(info.width), height: Int(info.height), limit: "available memory"),
                format: format, detail: message)
        default:
            return ImageError(.corrupt(message), format: format)
        }
    }

    /// Names common formats we do not decode, so the ledger says "GIF" rather than "unknown".
    private static func describeUnknown(_ bytes: UnsafeRawBufferPointer) -> String {
        func starts(with prefix: String, at offset: Int = 0) -> Bool {
            let p = Array(prefix.utf8)
            guard bytes.count >= offset + p.count else { return false }
            return zip(bytes[offset..<(offset + p.count)], p).allSatisfy { $0 == $1 }
        }
        if starts(with: "GIF8") { return "GIF file" }
        if starts(with: "BM") { return "BMP file" }
        if starts(with: "II*\u{0}") || starts(with: "MM\u{0}*") { return "TIFF file" }
        if starts(with: "ftypavif", at: 4) || starts(with: "ftypavis", at: 4) { return "AVIF file" }
        if starts(with: "ftyp", at: 4) { return "HEIF/ISO media file" }
        if starts(with: "RIFF") && starts(with: "WEBP", at: 8) { return "WebP file without a VP8/VP8L/VP8X chunk" }
        if starts(with: "<") || starts(with: "\u{FEFF}<") { return "text/HTML/SVG, not an image" }
        let head = bytes.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
        return "not a JPEG, PNG or WebP file; it starts with \(head)"
    }
}

/// Encodes RGB images: libjpeg-turbo (baseline, 4:2:0, as Pillow's `save("JPEG")`) and libwebp (lossy). The same
/// pixels and quality give the same bytes with the same library versions.
public enum ImageEncoder {
    /// `image` as a JPEG or WebP file at `quality` (1-100). PNG is not an encoding target.
    public static func encode(_ image: RGBImage, as format: ImageFormat, quality: Int) throws(ImageError) -> [UInt8] {
        guard format != .png else { throw ImageError(.unsupportedFormat, format: .png, detail: "PNG is not an encoding target") }
        guard image.width > 0, image.height > 0, (1...100).contains(quality) else {
            throw ImageError(.unsupportedFormat, format: format, detail: "cannot encode a \(image.width)x\(image.height) image at quality \(quality)")
        }
        var info = cic_info()
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        let status = image.pixels.withUnsafeBufferPointer { rgb in
            format == .jpeg
                ? cic_jpeg_encode(rgb.baseAddress, Int32(image.width), Int32(image.height), Int32(quality), &out, &size, &info)
                : cic_webp_encode(rgb.baseAddress, Int32(image.width), Int32(image.height), Int32(quality), &out, &size, &info)
        }
        defer { free(out) }
        guard status == Int32(CIC_OK), let out else {
            let message = withUnsafeBytes(of: &info.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw ImageError(.corrupt(message), format: format, detail: message)
        }
        return Array(UnsafeBufferPointer(start: out, count: size))
    }
}
