// `capfilt caption`: BLIP captions for images, one JSON line per image in input order, identical to what
// transformers' generate() returns for each image.
import ArgumentParser
import CapfiltBLIP
import CapfiltTensor
import Foundation

struct CaptionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caption",
        abstract: "Write captions for images with a BLIP captioning model.",
        discussion: """
            Prints one JSON object per image, in input order:
              {"image": PATH, "caption": TEXT, "token_ids": [...]}
            token_ids is the sequence transformers' generate() returns ([DEC], prompt ids, generated ids, [SEP] when
            emitted); caption is its decoding with special tokens skipped. An unreadable image prints
            {"image": PATH, "error": MESSAGE}; the others still run and the exit status is 1.
            Defaults are transformers 5's: greedy decoding, 20 new tokens.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Text the caption starts with, e.g. \"a picture of\".")
    var prompt: String?
    @Option(name: .customLong("num-beams"), help: "Beam search with this many beams (1: greedy or sampling).")
    var numBeams = 1
    @Option(name: .customLong("max-new-tokens"), help: "Most tokens to generate after the prompt.")
    var maxNewTokens = 20
    @Option(name: .customLong("min-new-tokens"), help: "No [SEP] before this many new tokens.")
    var minNewTokens = 0
    @Option(name: .customLong("repetition-penalty"), help: "Penalty for tokens already in the sequence (1: none).")
    var repetitionPenalty: Float = 1
    @Option(name: .customLong("length-penalty"), help: "Beam search: exponent of the length normalization.")
    var lengthPenalty: Float = 1
    @Option(name: .customLong("early-stopping"), help: "Beam search: false (heuristic), true or never, as in transformers.")
    var earlyStopping = "false"
    @Flag(help: "Sample instead of greedy decoding (nucleus sampling with --top-p).")
    var sample = false
    @Option(name: .customLong("top-p"), help: "Sampling: keep the smallest set of tokens with this much probability.")
    var topP: Float = 1
    @Option(name: .customLong("top-k"), help: "Sampling: keep the k most likely tokens (0: off).")
    var topK = 50
    @Option(help: "Sampling: divide the logits by this.")
    var temperature: Float = 1
    @Option(help: "Sampling: seed; image i uses a stream derived from (seed, i).")
    var seed: UInt64 = 0
    @Option(name: .customLong("batch-size"), help: "Images per batch through the model.")
    var batchSize = 8

    @Argument(help: "Image files (JPEG, PNG, WebP).")
    var images: [String]

    func validate() throws {
        guard EarlyStopping(rawValue: earlyStopping) != nil else {
            throw ValidationError("--early-stopping must be false, true or never (got \(earlyStopping))")
        }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        do { try generationOptions.validate() } catch { throw ValidationError(String(describing: error)) }
    }

    var generationOptions: GenerationOptions {
        var o = GenerationOptions()
        o.maxNewTokens = maxNewTokens
        o.minNewTokens = minNewTokens
        o.numBeams = numBeams
        o.doSample = sample
        o.temperature = temperature
        o.topK = topK
        o.topP = topP
        o.repetitionPenalty = repetitionPenalty
        o.lengthPenalty = lengthPenalty
        o.earlyStopping = EarlyStopping(rawValue: earlyStopping) ?? .heuristic
        return o
    }

    func run() throws {
        modelOptions.configureBLAS()
        let folder = try ModelFolder(url: modelOptions.modelURL)
        let captioner = try folder.loadCaptioner(precision: modelOptions.precision)
        let decoderPrompt = captioner.decoderPrompt(encoded: prompt.map { folder.tokenizer.encode($0) })
        let side = captioner.config.vision.imageSize, imageFloats = 3 * side * side
        var failures = 0
        for start in stride(from: 0, to: images.count, by: batchSize) {
            let chunk = Array(images[start..<min(start + batchSize, images.count)])
            // Decode and preprocess; a bad image becomes its error line, in its place.
            var lines = [String?](repeating: nil, count: chunk.count)
            var pixels: [Float] = [], members: [Int] = []
            for (i, path) in chunk.enumerated() {
                do {
                    pixels += try folder.pixelValues(imageBytes: try readFile(path))
                    members.append(i)
                } catch {
                    lines[i] = JSONLine([("image", .string(path)), ("error", .string(String(describing: error)))]).text
                    failures += 1
                }
            }
            if !members.isEmpty {
                let embeddings = pixels.withUnsafeBufferPointer {
                    captioner.imageEmbeddings(pixels: $0.baseAddress!, batch: members.count)
                }
                precondition(pixels.count == members.count * imageFloats)
                let seeds = members.map { RandomSource.derive(seed, UInt64(start + $0)) }
                let outputs = try captioner.generate(imageEmbeddings: embeddings, prompt: decoderPrompt,
                                                     options: generationOptions, seeds: seeds)
                for (member, ids) in zip(members, outputs) {
                    lines[member] = JSONLine([
                        ("image", .string(chunk[member])),
                        ("caption", .string(folder.tokenizer.decode(ids, skipSpecialTokens: true))),
                        ("token_ids", .ints(ids)),
                    ]).text
                }
            }
            for line in lines { if let line { emit(line) } }
        }
        if failures > 0 { throw ExitCode(1) }
    }
}
