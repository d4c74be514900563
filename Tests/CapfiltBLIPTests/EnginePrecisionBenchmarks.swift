// The engine's timings in reduced precision (Scripts/bench_engine.sh --precisions int8), apart from
// EngineBenchmarks.swift because that file also runs on older revisions, which have no precision modes.
import Foundation
import XCTest
@testable import CapfiltBLIP
import CapfiltTensor

extension EngineBenchmarks {
    func testEngineTimingsInReducedPrecision() throws {
        let (captioner, filter) = try folders()
        let precisions = (ProcessInfo.processInfo.environment["CAPFILT_BENCH_PRECISIONS"] ?? "")
            .split(separator: ",").compactMap { Precision(rawValue: String($0)) }
        if precisions.isEmpty { throw XCTSkip("set CAPFILT_BENCH_PRECISIONS (Scripts/bench_engine.sh --precisions does)") }
        let label = ProcessInfo.processInfo.environment["CAPFILT_BENCH_LABEL"] ?? "current"
        for precision in precisions {
            try measure(captioner: captioner.loadCaptioner(precision: precision),
                        retriever: filter?.loadRetriever(precision: precision), label: "\(label) \(precision.rawValue)")
        }
    }

    /// The agreement table of BENCHMARKS.md: each reduced precision against fp32 on every decodable demo sample.
    func testDemoWorldAgreement() throws {
        let precisions = (ProcessInfo.processInfo.environment["CAPFILT_BENCH_PRECISIONS"] ?? "")
            .split(separator: ",").compactMap { Precision(rawValue: String($0)) }
        if precisions.isEmpty { throw XCTSkip("set CAPFILT_BENCH_PRECISIONS (Scripts/bench_engine.sh --precisions does)") }
        let environment = ProcessInfo.processInfo.environment
        for precision in precisions {
            print("BENCH {\"agreement\": \"\(precision.rawValue) vs fp32, demo world\", \"figures\": \"\(try DemoWorldAgreement.measure(precision))\"}")
            // The bench's own models (base size), on the fixture images with one web text each.
            if let captioner = environment["CAPFILT_BENCH_CAPTIONER"], let filter = environment["CAPFILT_BENCH_FILTER"] {
                let images = try FileManager.default.contentsOfDirectory(at: fixtures.appendingPathComponent("images"), includingPropertiesForKeys: nil)
                    .sorted { $0.lastPathComponent < $1.lastPathComponent }
                let samples = images.map { ($0, "a woman sitting on the beach with her dog", [String: Any]()) }
                let a = try DemoWorldAgreement.measure(precision, captioner: URL(fileURLWithPath: captioner),
                                                       filter: URL(fileURLWithPath: filter), samples: samples)
                print("BENCH {\"agreement\": \"\(precision.rawValue) vs fp32, \(URL(fileURLWithPath: captioner).lastPathComponent) + \(URL(fileURLWithPath: filter).lastPathComponent), fixture images\", \"figures\": \"\(a)\"}")
            }
        }
    }
}
