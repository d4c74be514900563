// Re-filtering without the models. A run's finished units hold every sample's synthetic captions and ITM/ITC
// scores (units/U/records.A.jsonl). A new run of the same input with the same weights, whose spec differs only
// in decisions (PipelineSpec.decisionFields: the threshold, the main caption rule, duplicates, the output's
// sharding and format), runs as a fresh job whose caption and filter stages take those captions and scores
// instead of running the models. Everything else (ingest, decisions, the unit files, the merge) is the fresh
// run's own code, so the dataset is byte-identical to a fresh run with the new spec.
//
// A batch reuses only when every sample of it has stored captions (and scores): a batch where one sample needs
// the models (a duplicate that `duplicates: drop` never captioned, now kept) runs the models for the whole
// batch, so model batches are exactly a fresh run's.
import CapfiltDigest
import Foundation

final class StoredScores: @unchecked Sendable {
    /// The run folder the captions and scores come from (holding its job plan and units/).
    let folder: URL
    private let plan: JobPlan

    private init(folder: URL, plan: JobPlan) {
        self.folder = folder
        self.plan = plan
    }

    /// The store in `folder` when its run can stand in for this job's model work; else nil, with why not.
    static func open(folder: URL, spec: PipelineSpec, plan newPlan: JobPlan) -> (store: StoredScores?, why: String?) {
        guard let old = try? JobPlan.read(folder: folder) else { return (nil, nil) }
        guard old.captionerSHA256 == newPlan.captionerSHA256, old.filterSHA256 == newPlan.filterSHA256 else {
            return (nil, "its weights differ from this job's")
        }
        guard let oldSpec = try? PipelineSpec(yaml: old.specYAML, path: old.specPath) else {
            return (nil, "its spec cannot be read")
        }
        let modelFields = spec.changedFields(from: oldSpec).filter { !PipelineSpec.decisionFields.contains($0) }
        guard modelFields.isEmpty else { return (nil, "its captions or scores were made with other \(modelFields.joined(separator: ", "))") }
        guard old.units == newPlan.units, old.sources.map(\.display) == newPlan.sources.map(\.display) else {
            return (nil, "it was planned over other input units")
        }
        return (StoredScores(folder: folder, plan: old), nil)
    }

    /// The stored samples of unit `u` by position, when that unit finished in the stored run and its records
    /// are as its done.json says (else nil: the models do the work).
    func unit(_ u: Int) -> [Int: SampleRecord]? {
        let unit = UnitFolder(runFolder: folder, unit: u)
        guard let result = unit.result(), result.unit == u,
              let data = FileManager.default.contents(atPath: unit.url.appendingPathComponent(result.records).path),
              SHA256.hex(SHA256.hash(Array(data))) == result.recordsSHA256 else { return nil }
        var byPosition: [Int: SampleRecord] = [:]
        let decoder = JSONDecoder()
        for line in data.split(separator: 0x0A) {
            guard let record = try? decoder.decode(SampleRecord.self, from: Data(line)) else { return nil }
            byPosition[record.ordinal] = record
        }
        return byPosition
    }

    /// The stored record that can stand in for `record`'s model work: the same input sample (key, text, image)
    /// that went through both models in the stored run.
    static func match(_ stored: SampleRecord?, for record: SampleRecord) -> SampleRecord? {
        guard let stored, stored.status == .kept || stored.status == .filtered, !stored.captions.isEmpty,
              stored.sourceKey == record.sourceKey, stored.imageSHA256 == record.imageSHA256,
              stored.webText == record.webText, stored.webTextProblem == record.webTextProblem else { return nil }
        return stored
    }
}
