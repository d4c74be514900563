// `pipe:` inputs (webdataset's convention for object stores): the shard is a shell command's output, read as it
// arrives, the command's exit status checked at its end; only paths the spec writes are ever run.

import CapfiltCorpus
import CapfiltWebDataset
import Foundation
import XCTest

final class PipeInputTests: XCTestCase {
    /// A shard with a member over the chunk size (read straight through) and one over the member limit (skipped,
    /// which a stream must do by reading).
    private func shard(in folder: TempFolder, _ name: String = "shards/00000.tar") throws -> URL {
        var big = jpeg("big")
        big += [UInt8](repeating: 0x5a, count: 1_500_000)
        var oversize = jpeg("over")
        oversize += [UInt8](repeating: 0x33, count: 3_000_000)
        return try writeShard(folder.url(name), img2datasetMembers(["a", "b"]) + [("big.jpg", big), ("big.txt", Array("large".utf8)),
                                                                                ("over.jpg", oversize), ("over.txt", Array("too large".utf8))]
                                                   + img2datasetMembers(["c"]))
    }

    func testAPipeGivesTheSamplesOfTheFile() throws {
        let folder = try TempFolder(self)
        try shard(in: folder)
        let limit = 2_000_000
        let direct = try drain(CorpusReader(spec: CorpusSpec(kind: .webdataset, paths: ["shards/00000.tar"]),
                                            baseDirectory: folder.url, maxMemberSize: limit))
        // The command runs in the spec's folder, so it names the shard as the spec would.
        let piped = try drain(CorpusReader(spec: CorpusSpec(kind: .webdataset, paths: ["pipe:cat shards/00000.tar"]),
                                           baseDirectory: folder.url, maxMemberSize: limit))
        XCTAssertEqual(piped.map(\.sourceKey), ["a", "b", "big", "over", "c"])
        XCTAssertEqual(piped.map(\.sourceKey), direct.map(\.sourceKey))
        XCTAssertEqual(piped.map(\.image), direct.map(\.image), "the same bytes, the oversize member refused alike")
        XCTAssertEqual(piped.map(\.text), direct.map(\.text))
        XCTAssertEqual(piped.map(\.metadata), direct.map(\.metadata))
        XCTAssertEqual(piped.map(\.location.position), direct.map(\.location.position))
        XCTAssertEqual(Set(piped.map(\.location.source)), ["pipe:cat shards/00000.tar"], "the source is named as the spec writes it")
        if case .refused(_, let cause) = piped[3].image { XCTAssertEqual(cause, .memberTooLarge) } else { XCTFail("\(piped[3].image)") }
    }

    func testBracePatternsExpandIntoOneCommandPerShard() throws {
        let folder = try TempFolder(self)
        try writeShard(folder.url("s/00000.tar"), img2datasetMembers(["a"]))
        try writeShard(folder.url("s/00001.tar"), img2datasetMembers(["b"]))
        let reader = try CorpusReader(spec: CorpusSpec(kind: .webdataset, paths: ["pipe:cat s/{00000..00001}.tar"]),
                                      baseDirectory: folder.url)
        XCTAssertEqual(reader.sources, ["pipe:cat s/00000.tar", "pipe:cat s/00001.tar"])
        XCTAssertEqual(try drain(reader).map(\.sourceKey), ["a", "b"])
    }

    /// The first sample comes while the command is still blocked half way through the shard: nothing waits for
    /// (or holds) the whole output.
    func testTheStreamIsReadAsItArrives() throws {
        let folder = try TempFolder(self)
        try writeShard(folder.url("s.tar"), img2datasetMembers(["a", "b", "c"]))
        // a's three members and b's first: enough to close sample a. Then the command waits for `go`.
        let cut = 4 * 1024
        let command = "head -c \(cut) s.tar; while [ ! -e go ]; do sleep 0.02; done; tail -c +\(cut + 1) s.tar"
        let reader = try CorpusReader(spec: CorpusSpec(kind: .webdataset, paths: ["pipe:" + command]), baseDirectory: folder.url)
        // Never hang the suite: should the reader wait for the command's end, `go` appears after 60 s anyway.
        let go = folder.url("go").path
        let watchdog = DispatchWorkItem { FileManager.default.createFile(atPath: go, contents: nil) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 60, execute: watchdog)
        defer { watchdog.cancel() }
        let first = try reader.next()
        XCTAssertEqual(first?.sourceKey, "a")
        XCTAssertFalse(FileManager.default.fileExists(atPath: go), "sample a was returned while the command was still running")
        FileManager.default.createFile(atPath: go, contents: nil)
        XCTAssertEqual(try drain(reader).map(\.sourceKey), ["b", "c"])
    }

    /// A command that fails is a failed source (a retry may work), never a problem sample committed as the
    /// input's truth: even one that wrote a whole archive first. The sample being read when it failed is not
    /// returned; the next source is read as usual.
    func testAFailingCommandIsASourceFailure() throws {
        let folder = try TempFolder(self)
        try writeShard(folder.url("s.tar"), img2datasetMembers(["a", "b", "c"]))
        try writeShard(folder.url("t.tar"), img2datasetMembers(["t"]))
        let failing = "pipe:cat s.tar; echo 'An error occurred (AccessDenied)' >&2; exit 3"
        let reader = try CorpusReader(spec: CorpusSpec(kind: .webdataset, paths: [failing, "t.tar"]), baseDirectory: folder.url)
        var keys: [String] = []
        var caught: CorpusError?
        while true {
            do {
                guard let sample = try reader.next() else { break }
                keys.append(sample.sourceKey)
                XCTAssertEqual(sample.problems, [], "no sample stands for the failure")
            } catch {
                caught = error
            }
        }
        XCTAssertEqual(keys, ["a", "b", "t"], "c, being read when the failure showed, is left for the retry")
        XCTAssertEqual(caught?.kind, .sourceFailed)
        XCTAssertEqual(caught?.path, failing)
        let message = caught?.description ?? ""
        XCTAssertTrue(message.contains("exited with status 3"), message)
        XCTAssertTrue(message.contains("AccessDenied"), "the command's own words: \(message)")

        // The same through a source stream, as a worker reads its unit.
        let stream = reader.openSource(0)
        var count = 0
        while stream.next() != nil { count += 1 }
        XCTAssertEqual(count, 2)
        XCTAssertEqual(stream.failure?.source, failing)
        XCTAssertTrue(stream.failure?.description.contains("status 3") == true)
        XCTAssertNil(reader.openSource(1).failure)
    }

    func testFailuresSayWhatHappened() throws {
        let folder = try TempFolder(self)
        try writeShard(folder.url("s.tar"), img2datasetMembers(["a"]))
        let cases: [(String, String)] = [
            ("pipe:no-such-tool-for-capfilt s3://bucket/00000.tar", "status 127 (command not found)"),
            ("pipe:exit 1", "exited with status 1 after writing 0 bytes; it wrote nothing to standard error"),
            ("pipe:head -c 700 s.tar; kill -9 $$", "killed by signal 9"),
        ]
        for (path, expected) in cases {
            let stream = try CorpusReader(spec: CorpusSpec(kind: .webdataset, paths: [path]), baseDirectory: folder.url).openSource(0)
            XCTAssertNil(stream.next(), path)
            let message = stream.failure?.description ?? "no failure"
            XCTAssertTrue(message.contains(expected), "\(path): \(message)")
            XCTAssertTrue(message.hasPrefix(path), message)
        }
    }

    /// A command that succeeds with a cut archive wrote what it read: the shard itself is damaged, as for a file.
    func testACutArchiveFromASucceedingCommandIsDamage() throws {
        let folder = try TempFolder(self)
        try writeShard(folder.url("s.tar"), img2datasetMembers(["a", "b"]))
        let stream = try CorpusReader(spec: CorpusSpec(kind: .webdataset, paths: ["pipe:head -c 3500 s.tar"]),
                                      baseDirectory: folder.url).openSource(0)
        var samples: [InputSample] = []
        while let sample = stream.next() { samples.append(sample) }
        XCTAssertNil(stream.failure)
        if case .refused(_, let cause)? = samples.last?.image { XCTAssertEqual(cause, .shardDamaged) } else { XCTFail("\(samples)") }
    }

    /// A stream dropped before its end (a stopped worker) kills and reaps its command.
    func testADroppedStreamEndsItsCommand() throws {
        let folder = try TempFolder(self)
        try writeShard(folder.url("s.tar"), img2datasetMembers(["a", "b", "c"]))
        let reader = try CorpusReader(spec: CorpusSpec(kind: .webdataset, paths: ["pipe:echo $$ > pid; cat s.tar; exec sleep 600"]),
                                      baseDirectory: folder.url)
        var stream: SourceStream? = reader.openSource(0)
        XCTAssertEqual(stream?.next()?.sourceKey, "a")
        let pid = try XCTUnwrap(Int32(String(decoding: try Data(contentsOf: folder.url("pid")), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertEqual(kill(pid, 0), 0, "the command runs while its shard is read")
        stream = nil
        XCTAssertEqual(kill(pid, 0), -1, "the command is gone, and reaped")
        XCTAssertEqual(errno, ESRCH)
    }

    func testPipeIsForShardsAndNeedsACommand() throws {
        let folder = try TempFolder(self)
        let list = corpusError { _ = try CorpusReader(spec: CorpusSpec(kind: .jsonl, paths: ["pipe:cat list.jsonl"]), baseDirectory: folder.url) }
        XCTAssertEqual(list?.kind, .invalidSpec)
        XCTAssertTrue(list?.description.contains("download the file") == true, list?.description ?? "")
        let empty = corpusError { _ = try CorpusReader(spec: CorpusSpec(kind: .webdataset, paths: ["pipe:  "]), baseDirectory: folder.url) }
        XCTAssertEqual(empty?.kind, .invalidSpec)
        // Planning runs nothing: the command runs when its shard is read.
        let reader = try CorpusReader(spec: CorpusSpec(kind: .webdataset, paths: ["pipe:touch planned; cat nothing.tar"]), baseDirectory: folder.url)
        XCTAssertEqual(reader.sourceFiles.map(\.path), [nil], "a command is no file to stat")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.url("planned").path))
    }

    /// Names found in a shard folder or a list are files, never commands, whatever they look like.
    func testNamesFromFoldersAndListsAreNeverRun() throws {
        let folder = try TempFolder(self)
        try writeShard(folder.url("data/pipe:touch pwned.tar"), img2datasetMembers(["a"]))
        try folder.write("list.jsonl", #"{"image": "pipe:touch pwned2", "caption": "x"}"# + "\n")
        let shards = try read(CorpusSpec(kind: .webdataset, paths: ["data"]), in: folder)
        XCTAssertEqual(shards.map(\.sourceKey), ["a"])
        XCTAssertEqual(shards.first?.location.source, "data/pipe:touch pwned.tar")
        let listed = try read(CorpusSpec(kind: .jsonl, paths: ["list.jsonl"]), in: folder)
        XCTAssertEqual(listed.count, 1)
        XCTAssertNil(listed.first?.image.bytes)
        for name in ["pwned", "pwned2", "data/pwned"] {
            XCTAssertFalse(FileManager.default.fileExists(atPath: folder.url(name).path), "\(name) was created: a name was run")
        }
    }
}
