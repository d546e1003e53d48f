import Common
import Foundation
import JSON
import Testing

@Suite struct JSONLAppenderTests {
    func temporaryFile() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("jsonl-\(UUID().uuidString)")
        return dir.appendingPathComponent("sub/out.jsonl").path
    }

    @Test func createsAppendsAndReadsBack() throws {
        let path = temporaryFile()
        let a = try JSONLAppender(path: path)
        #expect(a.existing.isEmpty)
        try a.append([.object([("id", .string("a"))]), .object([("id", .string("b"))])])
        let b = try JSONLAppender(path: path)
        #expect(b.existing.map { $0?["id"]?.stringValue } == ["a", "b"])
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"id\": \"a\"}\n{\"id\": \"b\"}\n")
    }

    @Test func aTornLastLineIsCutAndTheNextAppendStaysWhole() throws {
        let path = temporaryFile()
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data("{\"id\": \"a\"}\nnot json\n{\"id\": \"b".utf8).write(to: URL(fileURLWithPath: path))
        let a = try JSONLAppender(path: path)
        #expect(a.existing.count == 2)
        #expect(a.existing[0]?["id"]?.stringValue == "a")
        #expect(a.existing[1] == nil)
        try a.append(.object([("id", .string("c"))]))
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"id\": \"a\"}\nnot json\n{\"id\": \"c\"}\n")
    }

    @Test func keepRewritesWithTheAcceptedLinesOnly() throws {
        let path = temporaryFile()
        let a = try JSONLAppender(path: path)
        try a.append((1...5).map { .object([("step", .int($0))]) })
        let b = try JSONLAppender(path: path) { ($0?["step"]?.intValue ?? 99) <= 3 }
        #expect(b.existing.compactMap { $0?["step"]?.intValue } == [1, 2, 3])
        try b.append(.object([("step", .int(4))]))
        let c = try JSONLAppender(path: path)
        #expect(c.existing.compactMap { $0?["step"]?.intValue } == [1, 2, 3, 4])
    }
}
