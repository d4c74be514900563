// Image folders (img2dataset's "files" output or users' own trees): byte-ordered walk, sidecars beside images,
// and links that lead out of the folder refused per sample.

import CapfiltCorpus
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class FolderInputTests: XCTestCase {
    func testNestedTreeInByteOrderWithSidecars() throws {
        let folder = try TempFolder(self)
        try folder.write("photos/b.jpg", jpeg("b"))
        try folder.write("photos/b.txt", "bee")
        try folder.write("photos/a/x.png", png("x"))
        try folder.write("photos/a/x.txt", "ex")
        try folder.write("photos/a-b.jpg", jpeg("a-b"))
        try folder.write("photos/a/y.JPG", jpeg("y"))
        try folder.write("photos/a/y.txt", "")
        try folder.write("photos/a/y.json", "{\"width\": 1}")
        try folder.write("photos/Z.jpeg", jpeg("Z"))
        try folder.write("photos/é.jpg", jpeg("e"))
        try folder.write("photos/c.txt", "caption without image")
        try folder.write("photos/notes", "no extension")
        try folder.write("photos/.hidden.jpg", jpeg("hidden"))
        try folder.write("photos/.git/object.jpg", jpeg("git"))
        try folder.write("photos/sub/deeper/z.webp", Array("RIFFz".utf8))
        try folder.write("photos/sub/deeper/z.txt", [0x7a, 0xc0])
        try folder.write("photos/dup.jpg", jpeg("dup"))
        try folder.write("photos/dup.png", png("dup"))
        try folder.write("photos/dup.txt", "shared")

        let samples = try read(CorpusSpec(kind: .folder, paths: ["photos/"]), in: folder)
        let expected = ["Z.jpeg", "a-b.jpg", "a/x.png", "a/y.JPG", "b.jpg", "dup.jpg", "dup.png",
                        "sub/deeper/z.webp", "é.jpg"]
        XCTAssertEqual(expected, expected.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) },
                       "the expectation itself is in byte order")
        XCTAssertEqual(samples.map(\.location.position), expected)
        XCTAssertTrue(samples.allSatisfy { $0.location.source == "photos/" })
        XCTAssertEqual(samples.map(\.sourceKey), ["Z", "a-b", "a/x", "a/y", "b", "dup", "dup", "sub/deeper/z", "é"])
        XCTAssertEqual(samples.map(\.ordinal), Array(0..<9))
        XCTAssertEqual(samples.map(\.text), [.missing, .missing, .text("ex"), .text(""), .text("bee"),
                                             .text("shared"), .text("shared"), .invalidUTF8(byteCount: 2), .missing])
        XCTAssertEqual(samples[2].image, .file(URL(fileURLWithPath: folder.path + "/photos/a/x.png")))
        XCTAssertEqual(samples[3].metadata, ["json": "{\"width\": 1}"], "a .json sidecar is metadata")
        XCTAssertEqual(samples[5].problems, ["2 images share the key \"dup\" (dup.jpg, dup.png); they also share "
            + "their sidecars"])
        XCTAssertEqual(samples[6].problems, samples[5].problems)
        XCTAssertEqual(samples[0].problems, [])
    }

    func testLinksNeverLeadOutOfTheFolder() throws {
        let folder = try TempFolder(self)
        try folder.write("outside/secret.jpg", jpeg("secret"))
        try folder.write("outside/secret.txt", "secret caption")
        try folder.write("photos/a/x.png", png("x"))
        try folder.symlink("photos/inside.jpg", to: "a/x.png")
        try folder.symlink("photos/evil.jpg", to: folder.path + "/outside/secret.jpg")
        try folder.symlink("photos/sneaky.jpg", to: "../outside/secret.jpg")
        try folder.symlink("photos/dangling.jpg", to: "nowhere.jpg")
        try folder.symlink("photos/linkdir", to: "a")
        try folder.symlink("photos/out", to: folder.path + "/outside")
        try folder.write("photos/side.jpg", jpeg("side"))
        try folder.symlink("photos/side.txt", to: "../outside/secret.txt")
        XCTAssertEqual(mkfifo(folder.path + "/photos/fifo.jpg", 0o644), 0)

        let samples = try read(CorpusSpec(kind: .folder, paths: ["photos"]), in: folder)
        XCTAssertEqual(samples.map(\.location.position), ["a/x.png", "dangling.jpg", "evil.jpg", "fifo.jpg",
                                                          "inside.jpg", "side.jpg", "sneaky.jpg"],
                       "links to folders are not descended")
        let real = try XCTUnwrap(samples[0].image.fileURL?.resolvingSymlinksInPath().path)
        XCTAssertEqual(samples[4].image, .file(URL(fileURLWithPath: real)),
                       "a link inside the folder is read through its target")
        XCTAssertEqual(samples[1].image.missingReason, "dangling.jpg is a broken symbolic link")
        for index in [2, 6] {
            XCTAssertEqual(samples[index].image.missingReason,
                           "\(samples[index].location.position) is a symbolic link leading outside the folder")
            XCTAssertEqual(samples[index].problems.count, 1)
            XCTAssertTrue(samples[index].problems.first?.contains("links are never followed out of an input "
                + "folder") == true, "\(samples[index].problems)")
        }
        XCTAssertEqual(samples[3].image.missingReason, "fifo.jpg is a fifo, not a regular file")
        XCTAssertEqual(samples[5].image.fileURL?.lastPathComponent, "side.jpg")
        XCTAssertEqual(samples[5].text, .missing, "a caption sidecar linking outside is not read")
        XCTAssertTrue(samples[5].problems.first?.hasPrefix("side.txt: symbolic link leading outside the folder")
            == true, "\(samples[5].problems)")
    }

    func testFolderKindNeedsAFolder() throws {
        let folder = try TempFolder(self)
        try folder.write("one.jpg", jpeg("1"))
        let error = corpusError {
            _ = try CorpusReader(spec: CorpusSpec(kind: .folder, paths: ["one.jpg"]), baseDirectory: folder.url)
        }
        XCTAssertEqual(error?.kind, .wrongPathType)
        XCTAssertEqual(error?.path, "one.jpg")
    }

    func testUnlistableSubfolderIsAProblemSample() throws {
        guard getuid() != 0 else { throw XCTSkip("root can list any folder") }
        let folder = try TempFolder(self)
        try folder.write("p/a.jpg", jpeg("a"))
        try folder.write("p/locked/b.jpg", jpeg("b"))
        try folder.write("p/z.jpg", jpeg("z"))
        XCTAssertEqual(chmod(folder.path + "/p/locked", 0), 0)
        let samples = try read(CorpusSpec(kind: .folder, paths: ["p"]), in: folder)
        XCTAssertEqual(samples.map(\.location.position), ["a.jpg", "locked/", "z.jpg"])
        XCTAssertEqual(samples[1].image.missingReason, "the folder cannot be listed")
    }
}
