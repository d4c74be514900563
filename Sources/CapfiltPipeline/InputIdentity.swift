// The input a run read must be the input it resumes on: a shard changed, removed or added under a half-done
// run would mix outputs of two corpora. So a run records each source (size, mtime, and for list files a
// SHA-256 of the whole file) and, at ingest, each image file and sidecar it read; a resume compares them all
// with one stat each before any model is loaded. What a stat cannot see (a shard rewritten with the same size
// and mtime) the re-read catches: every committed sample's key, text and image hash are compared as the
// reader passes them (PipelineRun.prepare).
import CapfiltCorpus
import CapfiltDigest
import Foundation

enum InputIdentity {
    /// The sources as they are now, in read order.
    static func currentSources(_ corpus: CorpusReader, kind: CorpusSpec.Kind) throws -> [Ledger.SourceRecord] {
        try corpus.sourceFiles.enumerated().map { position, source in
            // A folder's own mtime moves with anything created inside it; its files are checked one by one.
            guard let path = source.path, kind != .folder else {
                return Ledger.SourceRecord(position: position, display: source.display, path: source.path ?? "",
                                           identity: FileIdentity(size: 0, modifiedNanoseconds: 0), sha256: nil)
            }
            guard let identity = FileIdentity.of(path) else {
                throw PipelineError("input \(source.display) vanished while the run was starting; check the input and run again")
            }
            let isList = [.jsonl, .csv, .tsv].contains(kind)
            return Ledger.SourceRecord(position: position, display: source.display, path: path, identity: identity,
                                       sha256: isList ? try SHA256.hash(file: URL(fileURLWithPath: path)) : nil)
        }
    }

    /// On a new run, records the sources. On a resume, throws a PipelineError naming the first input that is
    /// not as the run read it: a source added, removed, reordered or changed, or an image or sidecar file changed.
    static func verifyOrRecord(ledger: Ledger, spec: PipelineSpec) throws {
        let corpus = try CorpusReader(spec: spec.input, baseDirectory: spec.baseDirectory, maxMemberSize: spec.maxMemberBytes)
        let current = try currentSources(corpus, kind: spec.input.kind)
        let recorded = try ledger.sources()
        if recorded.isEmpty {
            // A ledger made before sources were recorded (schema 1) has rows and no sources: nothing to compare.
            try ledger.recordSources(current)
            return
        }
        try compare(recorded: recorded, current: current)
        try ledger.forEachInputFile { file in
            let now = FileIdentity.of(file.path)
            guard now != file.identity else { return }
            throw changed(file.path, was: file.identity, now: now)
        }
    }

    static func compare(recorded: [Ledger.SourceRecord], current: [Ledger.SourceRecord]) throws {
        for (was, now) in zip(recorded, current) where was.display != now.display {
            let added = !recorded.contains { $0.display == now.display }
            throw PipelineError("the input's sources changed since this run started: \(added ? "\(now.display) is new" : "\(was.display) is missing or moved") (position \(was.position + 1) was \(was.display), is \(now.display)). Outputs are numbered in input order, so resuming would mix two corpora. Restore the input, or start over with --new-run.")
        }
        if recorded.count != current.count {
            let detail = recorded.count > current.count
                ? "\(recorded[current.count].display) and \(recorded.count - current.count - 1) more are gone"
                : "\(current[recorded.count].display) and \(current.count - recorded.count - 1) more are new"
            throw PipelineError("the input's sources changed since this run started (\(recorded.count) then, \(current.count) now: \(detail)). Restore the input, or start over with --new-run.")
        }
        for (was, now) in zip(recorded, current) {
            if was.identity != now.identity || was.sha256 != now.sha256 {
                let what = was.identity == now.identity ? "same size and time, different content" : "was \(was.identity), is \(now.identity)"
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
