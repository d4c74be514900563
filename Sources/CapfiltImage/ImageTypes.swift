// The values CapfiltImage hands out: decoded RGB images, header facts, size limits and typed errors.
// Everything here is plain data; decoding lives in ImageDecoder.swift, resizing in PillowResample.swift.

/// The container formats CapfiltImage decodes.
public enum ImageFormat: String, Sendable, CaseIterable {
    case jpeg, png, webp
}

/// Format and dimensions read from a file's header, before any pixel is decoded.
public struct ImageHeader: Sendable, Equatable {
    public let format: ImageFormat
    /// Pixels; for an animated WebP, the canvas.
    public let width: Int
    public let height: Int

    public init(format: ImageFormat, width: Int, height: Int) {
        self.format = format
        self.width = width
        self.height = height
    }
}

/// An 8-bit RGB image, rows top to bottom, pixels interleaved: `pixels` has shape `(H, W, 3)`.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `height * width * 3` bytes, HWC.
    public var pixels: [UInt8]

    /// Wraps `pixels`, which must hold `height * width * 3` bytes.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0, "image size \(width)x\(height) must be positive")
        precondition(pixels.count == width * height * 3, "\(pixels.count) bytes for a \(width)x\(height) RGB image")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// Sizes refused from the header, before any memory is spent on pixels.
public struct ImageLimits: Sendable, Equatable {
    /// Most pixels (width × height) a decoded image may have.
    public var maxPixels: Int
    public var maxWidth: Int
    public var maxHeight: Int

    public init(maxPixels: Int = 89_478_485, maxWidth: Int = 65_535, maxHeight: Int = 65_535) {
        self.maxPixels = maxPixels
        self.maxWidth = maxWidth
        self.maxHeight = maxHeight
    }

    /// Pillow's `Image.MAX_IMAGE_PIXELS` (89,478,485, about 256 MiB of RGBA), the size above which Pillow
    /// starts warning about decompression bombs; 65,535 per side is the largest JPEG.
    public static let `default` = ImageLimits()

    /// Throws `tooLarge` when `header` exceeds a limit.
    public func check(_ header: ImageHeader) throws(ImageError) {
        let (w, h) = (header.width, header.height)
        if w > maxWidth {
            throw ImageError(.tooLarge(width: w, height: h, limit: "maxWidth \(maxWidth)"), format: header.format)
        }
        if h > maxHeight {
            throw ImageError(.tooLarge(width: w, height: h, limit: "maxHeight \(maxHeight)"), format: header.format)
        }
        let (pixels, overflow) = w.multipliedReportingOverflow(by: h)
        if overflow || pixels > maxPixels {
            throw ImageError(.tooLarge(width: w, height: h, limit: "maxPixels \(maxPixels)"), format: header.format)
        }
    }
}

/// Why an image could not be decoded. Per-sample data for the pipeline's ledger, never a crash.
public struct ImageError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong, coarse enough to count in stats.
    public enum Kind: Sendable, Equatable {
        /// Zero bytes.
        case empty
        /// Not JPEG, PNG or WebP, or a variant of them that cannot be decoded (12-bit or lossless JPEG, ...).
        case unsupportedFormat
        /// The data is damaged; the payload is the codec library's message.
        case corrupt(String)
        /// The data ends before the image does.
        case truncated
        /// The header announces more pixels than `ImageLimits` allow; `limit` names the limit hit.
        case tooLarge(width: Int, height: Int, limit: String)
    }

    public let kind: Kind
    /// The format sniffed from the first bytes, when there was one.
    public let format: ImageFormat?
    /// More words on the cause, e.g. "Premature end of JPEG file"; empty when `kind` says it all.
    public let detail: String

    public init(_ kind: Kind, format: ImageFormat? = nil, detail: String = "") {
        self.kind = kind
        self.format = format
        self.detail = detail
    }

    /// One line: what is wrong, the codec's reason, and what to do about it.
    public var description: String {
        let name = format.map { $0.rawValue.uppercased() } ?? "image"
        let reason = detail.isEmpty ? "" : " (\(detail))"
        switch kind {
        case .empty:
            return "image data is empty (0 bytes): the download or archive member has no content; "
                + "re-fetch it or drop the sample"
        case .unsupportedFormat:
            return "unsupported image\(reason): only JPEG, PNG and WebP are decoded; "
                + "convert the file to one of them or drop the sample"
        case .corrupt(let message):
            return "corrupt \(name) data (\(message)): the file is damaged; re-download it or drop the sample"
        case .truncated:
            return "truncated \(name) data\(reason): the file is cut short; re-download it or drop the sample"
        case .tooLarge(let width, let height, let limit):
            return "\(name) of \(width)x\(height) pixels exceeds \(limit): raise ImageLimits if such images "
                + "are expected, otherwise drop the sample"
        }
    }
}
