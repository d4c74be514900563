// readImage names each way a file can fail to be an image (missing, folder, empty, too large, unreadable, fifo)
// and never reads a file over the cap.

import CapfiltCorpus
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class ImageReadTests: XCTestCase {
    func failure(_ payload: ImagePayload, maxBytes: Int = 1000) -> ImageReadFailure? {
        if case .failure(let failure) = CorpusReader.readImage(payload, maxBytes: maxBytes) { return failure }
        return nil
    }

    func testReadsFilesAndBytes() throws {
        let folder = try TempFolder(self)
        let url = try folder.write("x.JPG", jpeg("x"))
        let read = try CorpusReader.readImage(.file(url), maxBytes: 1000).get()
        XCTAssertEqual(read.0, jpeg("x"))
        XCTAssertEqual(read.1, "jpg")
        let exact = try CorpusReader.readImage(.file(url), maxBytes: jpeg("x").count).get()
        XCTAssertEqual(exact.0.count, jpeg("x").count, "a file of exactly maxBytes is read")
        let member = try CorpusReader.readImage(.bytes(png("p"), fileExtension: "png"), maxBytes: 1000).get()
        XCTAssertEqual(member.0, png("p"))
        XCTAssertEqual(member.1, "png")
    }

    func testFailuresNameTheirCause() throws {
        let folder = try TempFolder(self)
        let missing = folder.url("nope.jpg")
        XCTAssertEqual(failure(.file(missing)), .notFound(path: missing.path))
        XCTAssertEqual(failure(.file(folder.url("nope/deeper.jpg")))?.code, "not_found")
        try folder.mkdir("dir.jpg")
        XCTAssertEqual(failure(.file(folder.url("dir.jpg"))), .notARegularFile(path: folder.url("dir.jpg").path,
                                                                               kind: "directory"))
        let empty = try folder.write("empty.jpg", [])
        XCTAssertEqual(failure(.file(empty)), .empty(path: empty.path))
        let big = try folder.write("big.jpg", [UInt8](repeating: 1, count: 1001))
        XCTAssertEqual(failure(.file(big)), .tooLarge(path: big.path, bytes: 1001, limit: 1000))
        XCTAssertEqual(failure(.bytes([1, 2, 3], fileExtension: "jpg"), maxBytes: 2)?.code, "too_large")
        XCTAssertEqual(failure(.bytes([], fileExtension: "jpg"))?.code, "empty")
        XCTAssertEqual(failure(.missing(reason: "no image member")), .missing(reason: "no image member"))
        XCTAssertEqual(mkfifo(folder.path + "/pipe.jpg", 0o644), 0)
        XCTAssertEqual(failure(.file(folder.url("pipe.jpg")))?.code, "not_a_file", "a fifo is refused, not read")
        XCTAssertEqual(failure(.file(missing))?.description, "\(missing.path): no such file. Check the list's paths "
            + "(relative ones resolve against the list's folder).")
        XCTAssertTrue(failure(.file(big))?.description.contains("not read") == true)
    }

    func testPermissionDenied() throws {
        guard getuid() != 0 else { throw XCTSkip("root reads any file") }
        let folder = try TempFolder(self)
        let url = try folder.write("locked.jpg", jpeg("l"))
        XCTAssertEqual(chmod(url.path, 0), 0)
        XCTAssertEqual(failure(.file(url)), .permissionDenied(path: url.path))
    }
}
