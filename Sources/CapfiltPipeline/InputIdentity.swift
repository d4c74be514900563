// The input a job read must be the input it resumes on: a shard changed, removed or added under a half-done
// job would mix outputs of two corpora. So the job plan records each source (size, mtime, and for list files a
// SHA-256 of the whole file) and each unit ledger, at ingest, each image file and sidecar it read; every worker
// compares the sources when it starts and a unit's files when it resumes the unit, with one stat each, before
// any model work. What a stat cannot see (a shard rewritten with the same size and mtime) the re-read catches:
// every committed sample's key, text and image hash are compared as the reader passes them (UnitWork.prepare).
import CapfiltCorpus
import CapfiltDigest
import Foundation

enum InputIdentity {
    /// The sources as they are now, in read order.
    static func currentSources(_ corpus: CorpusReader, kind: CorpusSpec.Kind) throws -> [JobPlan.Source] {
        try corpus.sourceFiles.map { source in
            // A folder's own mtime moves with anything created inside it; its files are checked one by one.
            guard let path = source.path, kind != .folder else {
                return JobPlan.Source(display: source.display, path: source.path ?? "", size: 0, mtimeNanoseconds: 0, sha256: nil)
            }
            guard let identity = FileIdentity.of(path) else {
                throw PipelineError("input \(source.display) vanished while the run was starting; check the input and run again")
            }
            let isList = [.jsonl, .csv, .tsv].contains(kind)
            return JobPlan.Source(display: source.display, path: path, size: identity.size,
                                  mtimeNanoseconds: identity.modifiedNanoseconds,
                                  sha256: isList ? try SHA256.hash(file: URL(fileURLWithPath: path)) : nil)
        }
    }

    /// Throws a PipelineError naming the first image or sidecar file a unit ledger recorded that changed since.
    static func verifyFiles(of ledger: Ledger) throws {
        try ledger.forEachInputFile { file in
            let now = FileIdentity.of(file.path)
            guard now != file.identity else { return }
            throw changed(file.path, was: file.identity, now: now)
        }
    }

    static func compare(recorded: [JobPlan.Source], current: [JobPlan.Source]) throws {
        for (position, (was, now)) in zip(recorded, current).enumerated() where was.display != now.display {
            let added = !recorded.contains { $0.display == now.display }
            throw PipelineError("the input's sources changed since this run started: \(added ? "\(now.display) is new" : "\(was.display) is missing or moved") (position \(position + 1) was \(was.display), is \(now.display)). Outputs are numbered in input order, so resuming would mix two corpora. Restore the input, or start over with --new-run.")
        }
        if recorded.count != current.count {
            let detail = recorded.count > current.count
                ? "\(recorded[current.count].display) and \(recorded.count - current.count - 1) more are gone"
                : "\(current[recorded.count].display) and \(current.count - recorded.count - 1) more are new"
            throw PipelineError("the input's sources changed since this run started (\(recorded.count) then, \(current.count) now: \(detail)). Restore the input, or start over with --new-run.")
        }
        for (was, now) in zip(recorded, current) {
            let wasIdentity = FileIdentity(size: was.size, modifiedNanoseconds: was.mtimeNanoseconds)
            let nowIdentity = FileIdentity(size: now.size, modifiedNanoseconds: now.mtimeNanoseconds)
            if wasIdentity != nowIdentity || was.sha256 != now.sha256 {
                let what = wasIdentity == nowIdentity ? "same size and time, different content" : "was \(wasIdentity), is \(nowIdentity)"
                throw PipelineError("the input changed since this run read it: \(was.display) (\(what)). Resuming would mix old and new outputs. Restore the file, or start over with --new-run.")
            }
        }
    }

    static func changed(_ path: String, was: FileIdentity?, now: FileIdentity?) -> PipelineError {
        let what: String
        switch (was, now) {
        case (nil, _?): what = "it did not exist then and does now"
        case (_?, nil): what = "it is gone"
        case let (was?, now?): what = "was \(was), is \(now)"
        case (nil, nil): what = "unchanged"
        }
        return PipelineError("the input changed since this run read it: \(path) (\(what)). Resuming would mix old and new outputs. Restore the file, or start over with --new-run.")
    }

    /// The files a sample was read from, with their identities now (recorded with the sample at ingest).
    static func files(of input: InputSample) -> [InputFileIdentity] {
        var paths = input.sidecars
        if case .file(let url) = input.image { paths.append(url.path) }
        return paths.map { InputFileIdentity(path: $0, identity: FileIdentity.of($0)) }
    }
}
