import Common
import Foundation
import JSON

/// Something wrong with one record of a file, and where: every file-with-line report (benchmarks, preference
/// data, samples) is one of these.
public struct LineProblem: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    /// 1-based line (or place in a JSON array).
    public var line: Int
    public var message: String

    public init(file: String, line: Int, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String { "\(file):\(line): \(message)" }
}

/// A file that cannot be read at all.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The JSON objects of a JSONL file with their line numbers; blank lines are skipped, and a line that is not a
/// JSON object becomes a problem with its line, so the rest can go on. The one JSONL reader of the project.
public struct JSONLines: Sendable {
    public var path: String
    public var records: [(line: Int, value: JSONValue)] = []
    public var issues: [LineProblem] = []

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw FileError("\(path): cannot read") }
        self.init(data: data, path: path)
    }

    public init(data: Data, path: String) {
        self.path = path
        var number = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            number += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
            do {
                let value = try JSONValue.parse(Array(line))
                guard value.objectValue != nil else {
                    issues.append(LineProblem(file: path, line: number, message: "not a JSON object, skipped"))
                    continue
                }
                records.append((number, value))
            } catch {
                issues.append(LineProblem(file: path, line: number, message: "not valid JSON (\(error)), skipped"))
            }
        }
    }
}
