// Options shared by the model commands.
import ArgumentParser
import CapfiltTensor
import Foundation

struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "A BLIP model folder in Hugging Face layout (config.json, weights, tokenizer, preprocessor config).")
    var model: String

    @Option(name: .long, help: "OpenBLAS threads (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: "Arithmetic of the linear layers: fp32 (exact, as transformers), bf16 or int8 (faster; agreement in BENCHMARKS.md).")
    var precision: Precision = .fp32

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    var modelURL: URL { URL(fileURLWithPath: model) }

    func configureBLAS() {
        BLAS.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
    }
}

extension Precision: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument) }
}

/// Reads a whole file, with an error that names it.
func readFile(_ path: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            throw CLIError(isDirectory.boolValue ? "\(path) is a folder, not an image file" : "\(path) cannot be read (permissions?)")
        }
        throw CLIError("\(path) does not exist")
    }
    return [UInt8](data)
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Writes a line to standard output and flushes it, so a consumer sees each result as it is produced.
func emit(_ line: String) {
    FileHandle.standardOutput.write((line + "\n").data(using: .utf8) ?? Data())
}
