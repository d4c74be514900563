// The two commands as a user runs them: the built binary, JSON lines on stdout, error lines in place of bad
// images, exit statuses. Outputs are checked against transformers' goldens.
import Foundation
import XCTest

private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private let blip = root.appendingPathComponent("Tests/Fixtures/blip")

struct Run {
    let status: Int32
    let stdout: String
    let stderr: String
    var lines: [[String: Any]] {
        stdout.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }
}

/// The capfilt binary next to the test bundle (same build configuration).
func capfiltBinary() throws -> URL {
    var dir = Bundle.main.bundleURL
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("capfilt")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    for config in ["debug", "release"] {
        let candidate = root.appendingPathComponent(".build/\(config)/capfilt")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    throw XCTSkip("capfilt binary not found; build it first (swift build)")
}

func capfilt(_ arguments: [String]) throws -> Run {
    let process = Process()
    process.executableURL = try capfiltBinary()
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Run(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
               stderr: String(decoding: stderr, as: UTF8.self))
}

final class CLITests: XCTestCase {
    private var goldens: [String: [String: Any]] {
        let data = try! Data(contentsOf: blip.appendingPathComponent("goldens.json"))
        return (try! JSONSerialization.jsonObject(with: data) as! [String: Any])["images"] as! [String: [String: Any]]
    }
    private let images = ["rgb_80x60.png", "rgb_100x75.jpg", "gray_50x50.png", "rgba_64x48.png"]

    func testCaptionPrintsTransformersTokenIDsInInputOrder() throws {
        let run = try capfilt(["caption", "--model", blip.appendingPathComponent("caption-bin").path, "--batch-size", "3"]
                              + images.map { blip.appendingPathComponent("images/\($0)").path })
        XCTAssertEqual(run.status, 0, run.stderr)
        let lines = run.lines
        XCTAssertEqual(lines.count, images.count)
        for (line, name) in zip(lines, images) {
            XCTAssertEqual(line["image"] as? String, blip.appendingPathComponent("images/\(name)").path)
            XCTAssertEqual((line["token_ids"] as? [Int]), goldens[name]!["greedy"] as? [Int], name)
            XCTAssertEqual(line["caption"] as? String, goldens[name]!["caption_text"] as? String, name)
        }
    }

    func testBeamSearchWithPromptFromTheCommandLine() throws {
        let name = "gray_70x90.jpg"
        let run = try capfilt(["caption", "--model", blip.appendingPathComponent("caption-st").path, "--num-beams", "3",
                               "--prompt", "a picture of", blip.appendingPathComponent("images/\(name)").path])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.lines.first?["token_ids"] as? [Int], goldens[name]!["beam3_prompt"] as? [Int])
    }

    /// A bad image gets an error line in its place; the others still run; the exit status is 1.
    func testUnreadableImagesBecomeErrorLines() throws {
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: temp) }
        let corrupt = temp.appendingPathComponent("corrupt.jpg")
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 1, 2, 3]).write(to: corrupt)
        let missing = temp.appendingPathComponent("missing.png")
        let good = blip.appendingPathComponent("images/rgb_80x60.png")
        let run = try capfilt(["caption", "--model", blip.appendingPathComponent("caption-st").path,
                               corrupt.path, good.path, missing.path])
        XCTAssertEqual(run.status, 1)
        let lines = run.lines
        XCTAssertEqual(lines.map { $0["image"] as? String }, [corrupt.path, good.path, missing.path])
        XCTAssertNotNil(lines[0]["error"] as? String)
        XCTAssertEqual(lines[1]["token_ids"] as? [Int], goldens["rgb_80x60.png"]!["greedy"] as? [Int])
        XCTAssertTrue((lines[2]["error"] as? String ?? "").contains("does not exist"), "\(lines[2])")
    }

    func testScoreMatchesTransformers() throws {
        let name = "rgb_64x64.png"
        let texts = ["a woman sitting on the beach with her dog", "click to enlarge"]
        let run = try capfilt(["score", "--model", blip.appendingPathComponent("itm-bin").path,
                               "--image", blip.appendingPathComponent("images/\(name)").path]
                              + texts.flatMap { ["--text", $0] })
        XCTAssertEqual(run.status, 0, run.stderr)
        let itm = goldens[name]!["itm"] as! [Double], itc = goldens[name]!["itc"] as! [Double]
        for (line, index) in zip(run.lines, [1, 3]) {
            XCTAssertEqual(line["itm"] as! Double, itm[index], accuracy: 1e-4)
            XCTAssertEqual(line["itc"] as! Double, itc[index], accuracy: 1e-4)
        }
        XCTAssertEqual(run.lines.map { $0["text"] as? String }, texts)
    }

    /// `capfilt bench` on models whose QKV width exceeds their MLP width (the tiny fixtures: 3·48 > 96) runs
    /// and prints its JSON in every precision this CPU has (its sgemm reference once overran its buffers there).
    func testBenchRunsOnSmallModels() throws {
        for precision in ["fp32", "bf16", "int8"] {
            let run = try capfilt(["bench", "--caption", blip.appendingPathComponent("caption-st").path,
                                   "--itm", blip.appendingPathComponent("itm-st").path, "--repeats", "1",
                                   "--precision", precision, "--only", "vision_forward_batch8_per_image",
                                   blip.appendingPathComponent("images/rgb_80x60.png").path])
            if run.status != 0, run.stderr.contains("this CPU does not have") { continue }  // a mode this CPU lacks
            XCTAssertEqual(run.status, 0, "\(precision): \(run.stderr)")
            XCTAssertNotNil(run.lines.first?["vision_forward_batch8_per_image_s"] as? Double, precision)
            XCTAssertNotNil(run.lines.first?["peak_rss_mb"] as? Int, precision)
        }
    }

    func testBrokenModelFolderIsOneClearMessage() throws {
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-model-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: blip.appendingPathComponent("caption-st"), to: temp)
        defer { try? FileManager.default.removeItem(at: temp) }
        let weights = temp.appendingPathComponent("model.safetensors")
        let bytes = try Data(contentsOf: weights)
        try bytes.prefix(bytes.count / 2).write(to: weights)  // truncated download
        let run = try capfilt(["caption", "--model", temp.path, blip.appendingPathComponent("images/rgb_80x60.png").path])
        XCTAssertEqual(run.status, 1)
        XCTAssertTrue(run.stderr.contains("model.safetensors"), run.stderr)
        XCTAssertEqual(run.stdout, "")
    }

    func testInvalidFlagsExitWithUsageStatus() throws {
        let run = try capfilt(["caption", "--model", blip.path, "--top-p", "1.5", "x.jpg"])
        XCTAssertEqual(run.status, 64)
        XCTAssertTrue(run.stderr.contains("--top-p"), run.stderr)
        let noText = try capfilt(["score", "--model", blip.path, "--image", "x.jpg"])
        XCTAssertEqual(noText.status, 64)
        XCTAssertTrue(noText.stderr.contains("--text"), noText.stderr)
    }
}
