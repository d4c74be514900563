// `capfilt score`: BLIP ITM probability and ITC cosine of one image against texts.
import ArgumentParser
import CapfiltBLIP
import Foundation

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Score texts against an image with a BLIP image-text matching model.",
        discussion: """
            Prints one JSON object per text:
              {"image": PATH, "text": TEXT, "itm": P_MATCH, "itc": COSINE}
            itm is softmax(ITM logits)[1], the probability that the text matches; itc is the cosine similarity of the
            ITC projections. If the image cannot be read, prints {"image": PATH, "error": MESSAGE} and exits with 1.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "The image file (JPEG, PNG, WebP).")
    var image: String

    @Option(name: .customLong("text"), help: "A text to score; repeat for several.")
    var texts: [String] = []

    func validate() throws {
        if texts.isEmpty { throw ValidationError("give at least one --text") }
    }

    func run() throws {
        modelOptions.configureBLAS()
        let folder = try ModelFolder(url: modelOptions.modelURL)
        let retriever = try folder.loadRetriever(precision: modelOptions.precision)
        let pixels: [Float]
        do {
            pixels = try folder.pixelValues(imageBytes: try readFile(image))
        } catch {
            emit(JSONLine([("image", .string(image)), ("error", .string(String(describing: error)))]).text)
            throw ExitCode(1)
        }
        let embeddings = pixels.withUnsafeBufferPointer { retriever.imageEmbeddings(pixels: $0.baseAddress!, batch: 1) }
        let maxLength = retriever.config.text.maxPositionEmbeddings
        let ids = texts.map { folder.tokenizer.encode($0, maxLength: maxLength) }
        let scores = try retriever.scores(imageEmbeds: embeddings.data, texts: ids)
        for (text, score) in zip(texts, scores) {
            emit(JSONLine([("image", .string(image)), ("text", .string(text)),
                           ("itm", .float(score.itm)), ("itc", .float(score.itc))]).text)
        }
    }
}
