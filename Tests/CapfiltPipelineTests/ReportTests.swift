// `capfilt report RUN`: the page has the run's counts (checked against the merged manifests, read here
// independently), is self-contained, shows thumbnails that decode (dropped samples' from the input read again),
// escapes hostile web texts, and is the same bytes for the same run and seed. The browser check (Chromium opens
// it from disk) is Scripts/report/test-report-browser.sh.
import CapfiltDigest
import CapfiltImage
@testable import CapfiltPipeline
import CapfiltWebDataset
import Foundation
import XCTest

final class ReportTests: XCTestCase {
    /// The merged manifests' rows, read with JSONSerialization (not the report's reader).
    private func manifestRows(_ out: URL) throws -> [[String: Any]] {
        let shards = out.appendingPathComponent("shards")
        var rows: [[String: Any]] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: shards.path).filter({ $0.hasSuffix(".jsonl") }).sorted() {
            let data = try Data(contentsOf: shards.appendingPathComponent(name))
            for line in data.split(separator: 0x0A) {
                rows.append(try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]))
            }
        }
        return rows
    }

    /// `attribute="value"` pairs of every tag matching `prefix` (e.g. `<rect class="bar"`) inside the chart.
    private func bars(_ html: String, chart: String) throws -> [[String: String]] {
        let start = try XCTUnwrap(html.range(of: "data-chart=\"\(chart)\""), "chart \(chart)")
        let end = try XCTUnwrap(html.range(of: "</svg>", range: start.upperBound..<html.endIndex))
        let svg = html[start.upperBound..<end.lowerBound]
        return svg.components(separatedBy: "<rect ").dropFirst().map { tag in
            var attributes: [String: String] = [:]
            let head = tag.prefix { $0 != ">" }
            for part in head.components(separatedBy: "\" ") {
                let pair = part.split(separator: "=", maxSplits: 1)
                if pair.count == 2 { attributes[pair[0].trimmingCharacters(in: .whitespaces)] = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"/ ")) }
            }
            return attributes
        }
    }

    private func sum(_ bars: [[String: String]], where test: ([String: String]) -> Bool = { _ in true }) -> Int {
        bars.filter(test).reduce(0) { $0 + (Int($1["data-count"] ?? "") ?? 0) }
    }

    func testTheReportHasTheRunsCountsAndThumbnails() throws {
        let corpus = try TestCorpus.make(batchSize: 4)
        defer { corpus.remove() }
        let run = try runCapfilt(["run", corpus.specPath, "--threads", "1", "--quiet"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let report = try runCapfilt(["report", corpus.output.path])
        XCTAssertEqual(report.status, 0, report.stderr)
        XCTAssertTrue(report.stderr.contains("report/index.html"), report.stderr)
        let folder = corpus.output.appendingPathComponent("report")
        let html = try String(contentsOf: folder.appendingPathComponent("index.html"), encoding: .utf8)

        // The run's numbers, from its run manifest and merged manifests.
        let runManifest = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: corpus.output.appendingPathComponent("capfilt_run.json"))) as? [String: Any])
        let totals = try XCTUnwrap(runManifest["totals"] as? [String: Int])
        let reasons = try XCTUnwrap(runManifest["status_dict"] as? [String: Int])
        let rows = try manifestRows(corpus.output)
        XCTAssertEqual(rows.count, totals["input_samples"])
        let judged = rows.filter { ["kept", "filtered"].contains($0["status"] as? String) }
        let webScored = judged.filter { $0["web_text_scored"] as? Bool == true }
        let syntheticScored = judged.flatMap { row in
            zip(row["synthetic_captions"] as? [String] ?? [], row["synthetic_itm"] as? [Double] ?? []).filter { !$0.0.isEmpty }
        }
        XCTAssertGreaterThan(webScored.count, 10)
        XCTAssertGreaterThan(totals["failed"] ?? 0, 3)
        XCTAssertGreaterThan(totals["duplicate"] ?? 0, 0)

        let outcome = try bars(html, chart: "outcome")
        for status in ["kept", "filtered", "failed", "duplicate"] {
            XCTAssertEqual(sum(outcome) { $0["data-status"] == status }, totals[status], status)
        }
        let reasonBars = try bars(html, chart: "reasons")
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: reasonBars.map { ($0["data-label"] ?? "", Int($0["data-count"] ?? "") ?? -1) }), reasons)
        XCTAssertEqual(try bars(html, chart: "funnel").map { Int($0["data-count"] ?? "") }, [
            totals["input_samples"], totals["input_samples"]! - totals["failed"]!,
            totals["kept"]! + totals["filtered"]!, totals["kept"]!,
        ])
        XCTAssertEqual(sum(try bars(html, chart: "itm-web")), webScored.count)
        XCTAssertEqual(sum(try bars(html, chart: "itc-web")), webScored.count)
        XCTAssertEqual(sum(try bars(html, chart: "itm-synthetic")), syntheticScored.count)
        // Web texts above the threshold: the bins from 0.5 up (the threshold is on a bin edge).
        XCTAssertEqual(sum(try bars(html, chart: "itm-web")) { Float($0["data-low"] ?? "") ?? 0 >= 0.4999 },
                       webScored.filter { ($0["web_text_itm"] as? Double ?? 0) >= 0.5 }.count)
        let mainWeb = rows.filter { $0["status"] as? String == "kept" && $0["main_caption_source"] as? String == "web" }.count
        XCTAssertEqual(sum(try bars(html, chart: "main-caption")) { $0["data-source"] == "web" }, mainWeb)
        let units = try bars(html, chart: "keep-rate")
        XCTAssertEqual(units.reduce(0) { $0 + (Int($1["data-kept"] ?? "") ?? 0) }, totals["kept"])
        XCTAssertEqual(units.reduce(0) { $0 + (Int($1["data-input"] ?? "") ?? 0) }, totals["input_samples"])

        // Sections: counts of the run, and cards of the right verdicts.
        func section(_ name: String) throws -> (count: Int, shown: Int, body: Substring) {
            let start = try XCTUnwrap(html.range(of: "data-section=\"\(name)\""))
            let tail = html[start.lowerBound...]
            let head = tail.prefix { $0 != ">" }
            func attribute(_ a: String) -> Int {
                guard let r = head.range(of: "\(a)=\"") else { return -1 }
                return Int(head[r.upperBound...].prefix { $0 != "\"" }) ?? -1
            }
            let end = tail.range(of: "</section>")?.lowerBound ?? tail.endIndex
            return (attribute("data-count"), attribute("data-shown"), tail[..<end])
        }
        XCTAssertEqual(try section("failed").count, totals["failed"])
        XCTAssertEqual(try section("dropped").count, totals["filtered"]! + totals["duplicate"]!)
        XCTAssertEqual(try section("kept").count + section("replaced").count, totals["kept"])
        for name in ["kept", "replaced", "dropped", "failed"] {
            let s = try section(name)
            XCTAssertEqual(s.shown, min(s.count, RunReport.defaultPerSection), name)
            XCTAssertEqual(s.body.components(separatedBy: "<figure class=\"sample\"").count - 1, s.shown, name)
        }
        let failedCards = try section("failed").body
        XCTAssertFalse(failedCards.contains("data-status=\"kept\""))
        XCTAssertTrue(failedCards.contains("image_corrupt"))
        // Duplicates were never kept: their thumbnails come from the input, read again.
        let dropped = try section("dropped").body
        let duplicateCard = try XCTUnwrap(dropped.components(separatedBy: "<figure ").first { $0.contains("data-status=\"duplicate\"") })
        XCTAssertTrue(duplicateCard.contains("<img class=\"thumb\" src=\"thumbs/"), duplicateCard)

        // Self-contained: nothing from the network, no script, every image a decodable thumbnail in the folder.
        for forbidden in ["http://", "https://", "<script", "src=\"/", "url("] { XCTAssertFalse(html.contains(forbidden), forbidden) }
        let sources = html.components(separatedBy: "<img ").dropFirst().compactMap { tag -> String? in
            guard let r = tag.range(of: "src=\"") else { return nil }
            return String(tag[r.upperBound...].prefix { $0 != "\"" })
        }
        XCTAssertGreaterThan(sources.count, 20)
        for src in Set(sources) {
            XCTAssertTrue(src.hasPrefix("thumbs/") && !src.contains(".."), src)
            let bytes = [UInt8](try Data(contentsOf: folder.appendingPathComponent(src)))
            let image = try ImageDecoder.decodeRGB(bytes)
            XCTAssertLessThanOrEqual(max(image.width, image.height), Thumbnails.side, src)
        }

        // The same run and seed: the same bytes. Another seed, fewer per section: other samples.
        let first = try corpus.outputFiles(of: folder)
        XCTAssertEqual(try runCapfilt(["report", corpus.output.path, "--quiet"]).status, 0)
        XCTAssertEqual(try corpus.outputFiles(of: folder), first)
        let other = corpus.folder.appendingPathComponent("other-report")
        XCTAssertEqual(try runCapfilt(["report", corpus.output.path, "--seed", "1", "--per-section", "2", "--output", other.path]).status, 0)
        let otherHTML = try String(contentsOf: other.appendingPathComponent("index.html"), encoding: .utf8)
        XCTAssertNotEqual(otherHTML, html)
        XCTAssertTrue(otherHTML.contains("data-section=\"kept\" data-count=\"\(try section("kept").count)\" data-shown=\"2\""))
    }

    func testADeletedInputStillGivesAReport() throws {
        let corpus = try TestCorpus.make(batchSize: 4)
        defer { corpus.remove() }
        XCTAssertEqual(try runCapfilt(["run", corpus.specPath, "--threads", "1", "--quiet"]).status, 0)
        try FileManager.default.removeItem(at: corpus.folder.appendingPathComponent("data"))
        let report = try runCapfilt(["report", corpus.output.path])
        XCTAssertEqual(report.status, 0, report.stderr)
        let html = try String(contentsOf: corpus.output.appendingPathComponent("report/index.html"), encoding: .utf8)
        // Kept samples' images come from the run; the others say why they have none.
        XCTAssertTrue(html.contains("data-status=\"kept\"><img class=\"thumb\""))
        XCTAssertTrue(html.contains("the input cannot be read again") || html.contains("the input has changed since the run"),
                      "dropped samples say why they have no image")
    }

    func testHostileWebTextsAreShownAsText() throws {
        let corpus = try TestCorpus.make(batchSize: 2)
        defer { corpus.remove() }
        let hostile = ["<script>alert(1)</script>", "\"><img src=x onerror=alert(2)>", "a&b <b>bold</b> '"]
        let writer = try TarWriter(url: corpus.folder.appendingPathComponent("data/00000.tar"))
        for (i, text) in hostile.enumerated() {
            try writer.add(name: "h\(i).jpg", bytes: TestCorpus.image("rgb_100x75.jpg") + Array(repeating: 0, count: i))
            try writer.add(name: "h\(i).txt", bytes: Array(text.utf8))
        }
        try writer.finish()
        XCTAssertEqual(try runCapfilt(["run", corpus.specPath, "--threads", "1", "--quiet"]).status, 0)
        XCTAssertEqual(try runCapfilt(["report", corpus.output.path, "--quiet"]).status, 0)
        let html = try String(contentsOf: corpus.output.appendingPathComponent("report/index.html"), encoding: .utf8)
        XCTAssertFalse(html.contains("<script"))
        XCTAssertFalse(html.contains("onerror=alert(2)>"))
        XCTAssertFalse(html.contains("<b>bold"))
        XCTAssertTrue(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        XCTAssertTrue(html.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"))
        XCTAssertTrue(html.contains("a&amp;b &lt;b&gt;bold&lt;/b&gt; &#39;"))
        XCTAssertEqual(Markup.escape("tab\there\u{1}\u{7F}"), "tab\there\u{FFFD}\u{FFFD}", "control characters are not shown")
    }

    func testAFolderThatIsNoFinishedRunIsRefused() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("capfilt-report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        let result = try runCapfilt(["report", empty.path])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("is not a capfilt run folder"), result.stderr)

        // A run stopped before its end: the units that are not done are named.
        let corpus = try TestCorpus.make(batchSize: 2)
        defer { corpus.remove() }
        XCTAssertEqual(try CapfiltPipelineSpecLoader.load(corpus).run(stopAfterBatches: 1), .interrupted)
        let partial = try runCapfilt(["report", corpus.output.path])
        XCTAssertEqual(partial.status, 1)
        XCTAssertTrue(partial.stderr.contains("are not done"), partial.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: corpus.output.appendingPathComponent("report").path))
    }

    func testRepeatedPhrasesAreFlagged() {
        XCTAssertEqual(CaptionChecks.repeatedPhrase("a hat on a hat on a hat"), "a hat on a")
        XCTAssertEqual(CaptionChecks.repeatedPhrase("a a dog on the grass"), "a a")
        XCTAssertEqual(CaptionChecks.repeatedPhrase("the dog, the dog, the dog"), "the dog the dog")
        XCTAssertEqual(CaptionChecks.repeatedPhrase("a cat next to a cat next to a dog"), "a cat next to")
        XCTAssertNil(CaptionChecks.repeatedPhrase("a large purple cross and a large purple circle"))
        XCTAssertNil(CaptionChecks.repeatedPhrase("a large dog and a small dog"))
        XCTAssertNil(CaptionChecks.repeatedPhrase("a dog"))
        XCTAssertNil(CaptionChecks.repeatedPhrase(""))
    }

    func testHistogramsTrimToTheOccupiedRange() {
        var h = Histogram(low: -1, high: 1, bins: 200)
        for v: Float in [0.205, 0.215, 0.3, 0.55, 2] { h.add(v) }
        XCTAssertEqual(h.total, 5)
        XCTAssertEqual(h.counts[199], 1, "values above the range go to the last bin")
        let t = h.trimmed(maxBins: 30)
        XCTAssertEqual(t.total, 5)
        XCTAssertLessThanOrEqual(t.counts.count, 30)
        XCTAssertEqual(t.low, 0.2, accuracy: 1e-5)
        XCTAssertGreaterThanOrEqual(t.high, 1 - 1e-5)
    }
}
