// The chosen samples' thumbnails: small JPEGs the report folder carries. A kept sample's image comes from its
// unit's kept images (units/U/images.A.tar, as the merge reads them); a dropped or failed sample's image was
// never kept, so its unit's input is read again up to it (the same reader the worker used, the same size
// limits), and its bytes must still have the SHA-256 the run recorded. One pass per unit that has chosen
// samples; only the chosen images are decoded.
import CapfiltCorpus
import CapfiltDigest
import CapfiltImage
import CapfiltWebDataset
import Foundation

public enum Thumbnails {
    /// Longest side of a thumbnail, in pixels.
    public static let side = 192
    public static let quality = 85

    /// Makes the thumbnails of every chosen sample: returns the JPEG bytes by file name ("thumbs/ID.jpg") and
    /// sets each sample's `thumbnail`, or `noThumbnail` with why there is none.
    public static func make(_ report: inout RunReport, runFolder: URL) throws -> [String: [UInt8]] {
        let merge = try Merge(folder: runFolder)
        let spec = merge.spec
        // Every chosen sample once, by unit, then position.
        var wanted: [Int: [Int: ReportSample]] = [:]
        for samples in report.sections.values {
            for s in samples { wanted[s.unit, default: [:]][s.position] = s }
        }
        var images: [String: Result<[UInt8], ThumbnailFailure>] = [:]
        var corpus: Result<CorpusReader, ThumbnailFailure>?
        for unit in wanted.keys.sorted() {
            let samples = wanted[unit] ?? [:]
            let folder = UnitFolder(runFolder: runFolder, unit: unit)
            // Kept samples: from the unit's kept images.
            let kept = Set(samples.values.filter { $0.status == .kept }.map(\.position))
            if !kept.isEmpty, let result = folder.result() {
                if let reader = try? TarReader(url: folder.url.appendingPathComponent(result.images), maxMemberSize: spec.maxMemberBytes) {
                    while let member = try? reader.next() {
                        guard let position = Int(member.entry.name.prefix { $0 != "." }), kept.contains(position),
                              let sample = samples[position] else { continue }
                        images[sample.id] = checked(member.data, sample)
                    }
                }
            }
            // The others (and any kept image not found): the input again.
            let others = samples.values.filter { images[$0.id] == nil && $0.imageSHA256 != nil }
            guard let last = others.map(\.position).max() else { continue }
            if corpus == nil {
                do {
                    let reader = try CorpusReader(spec: spec.input, baseDirectory: spec.baseDirectory, maxMemberSize: spec.maxMemberBytes)
                    corpus = reader.sourceCount == merge.plan.sources.count
                        ? .success(reader) : .failure(.init(why: "the input has changed since the run (other sources)"))
                } catch {
                    corpus = .failure(.init(why: "the input cannot be read again (\(error))"))
                }
            }
            guard case .success(let reader)? = corpus else {
                if case .failure(let failure)? = corpus { for s in others { images[s.id] = .failure(failure) } }
                continue
            }
            let byPosition = Dictionary(uniqueKeysWithValues: others.map { ($0.position, $0) })
            let input = merge.plan.openUnit(unit, corpus: reader)
            do {
                while let next = try input.next(), next.position <= last {
                    guard let chosen = byPosition[next.position] else { continue }
                    switch CorpusReader.readImage(next.sample.image, maxBytes: spec.limits.maxImageBytes) {
                    case .success(let (bytes, _)): images[chosen.id] = checked(bytes, chosen)
                    case .failure(let failure): images[chosen.id] = .failure(.init(why: "the image cannot be read again: \(failure)"))
                    }
                }
            } catch {
                for s in others where images[s.id] == nil { images[s.id] = .failure(.init(why: "the input cannot be read again (\(error))")) }
            }
        }

        var files: [String: [UInt8]] = [:]
        for section in ReportSection.allCases {
            guard var samples = report.sections[section] else { continue }
            for i in samples.indices {
                let id = samples[i].id
                let name = "thumbs/\(id).jpg"
                if files[name] == nil, case .success(let bytes)? = images[id] {
                    switch thumbnail(bytes, limits: spec.limits.imageLimits) {
                    case .success(let jpeg): files[name] = jpeg
                    case .failure(let failure): images[id] = .failure(failure)
                    }
                }
                if files[name] != nil {
                    samples[i].thumbnail = name
                } else if case .failure(let failure)? = images[id] {
                    samples[i].noThumbnail = failure.why
                } else {
                    samples[i].noThumbnail = samples[i].imageSHA256 == nil ? "no image" : "the image was not found again"
                }
            }
            report.sections[section] = samples
        }
        return files
    }

    /// `bytes` when they are the image the run read.
    private static func checked(_ bytes: [UInt8], _ sample: ReportSample) -> Result<[UInt8], ThumbnailFailure> {
        if let sha = sample.imageSHA256, SHA256.hex(SHA256.hash(bytes)) != sha {
            return .failure(.init(why: "the input has changed since the run (other image bytes)"))
        }
        return .success(bytes)
    }

    /// A JPEG of at most `side` pixels on its longest side, or why the image does not decode.
    public static func thumbnail(_ bytes: [UInt8], limits: ImageLimits = .default) -> Result<[UInt8], ThumbnailFailure> {
        do {
            let image = try ImageDecoder.decodeRGB(bytes, limits: limits)
            let scale = min(1, Double(side) / Double(max(image.width, image.height)))
            let width = max(1, Int((Double(image.width) * scale).rounded()))
            let height = max(1, Int((Double(image.height) * scale).rounded()))
            let small = width == image.width && height == image.height
                ? image : PillowResample.resize(image, width: width, height: height, filter: .bicubic)
            return .success(try ImageEncoder.encode(small, as: .jpeg, quality: quality))
        } catch {
            return .failure(.init(why: "the image does not decode: \(error)"))
        }
    }
}

public struct ThumbnailFailure: Error, Sendable, Equatable {
    public var why: String
}
