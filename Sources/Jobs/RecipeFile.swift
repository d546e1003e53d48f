import Foundation
import Yams

/// A recipe that cannot run, with the file, line and column of the key at fault.
public struct RecipeError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One YAML mapping of a recipe, read key by key: each read names its key's place on failure, and `finish()`
/// refuses unknown keys (a typo must not be ignored silently).
final class YAMLMap {
    let file: String
    /// Where this mapping sits, e.g. "training[1]".
    let path: String
    let mark: Mark?
    private var entries: [(key: String, keyMark: Mark?, value: Node)] = []

    init(_ node: Node, file: String, path: String) throws {
        self.file = file
        self.path = path
        mark = node.mark
        guard case .mapping(let mapping) = node else {
            throw RecipeError("\(Self.place(file, node.mark)): \(path.isEmpty ? "the recipe" : path) must be a mapping of keys to values")
        }
        for (k, v) in mapping {
            guard let key = k.string else { throw RecipeError("\(Self.place(file, k.mark)): \(path): a key must be text") }
            if entries.contains(where: { Array($0.key.utf8) == Array(key.utf8) }) {
                throw RecipeError("\(Self.place(file, k.mark)): \(name(key)): given twice")
            }
            entries.append((key, k.mark, v))
        }
    }

    static func place(_ file: String, _ mark: Mark?) -> String { mark.map { "\(file):\($0.line):\($0.column)" } ?? file }

    func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The keys, in the file's order.
    var keys: [String] { entries.map(\.key) }

    func has(_ key: String) -> Bool { entries.contains { Array($0.key.utf8) == Array(key.utf8) } }

    /// The node of `key`, marked as read.
    func node(_ key: String) -> (Node, Mark?)? {
        guard let i = entries.firstIndex(where: { Array($0.key.utf8) == Array(key.utf8) }) else { return nil }
        return (entries[i].value, entries[i].value.mark ?? entries[i].keyMark)
    }

    func fail(_ key: String, _ mark: Mark?, _ problem: String) -> RecipeError {
        RecipeError("\(Self.place(file, mark)): \(name(key)): \(problem)")
    }

    private func scalar(_ key: String, _ kind: String) throws -> (String, Mark?)? {
        guard let (n, mark) = node(key) else { return nil }
        guard case .scalar(let s) = n else { throw fail(key, mark, "expected \(kind), got a \(n.isMapping ? "mapping" : "list")") }
        if s.style == .plain && ["", "~", "null", "Null", "NULL"].contains(s.string) { return nil }
        return (s.string, mark)
    }

    func string(_ key: String) throws -> String? { try scalar(key, "text")?.0 }

    func int(_ key: String) throws -> Int? {
        guard let (text, mark) = try scalar(key, "a whole number") else { return nil }
        guard let v = Int(text.replacingOccurrences(of: "_", with: "")) else { throw fail(key, mark, "expected a whole number, got '\(text)'") }
        return v
    }

    func double(_ key: String) throws -> Double? {
        guard let (text, mark) = try scalar(key, "a number") else { return nil }
        guard let v = Double(text), v.isFinite else { throw fail(key, mark, "expected a number, got '\(text)'") }
        return v
    }

    func bool(_ key: String) throws -> Bool? {
        guard let (text, mark) = try scalar(key, "true or false") else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw fail(key, mark, "expected true or false, got '\(text)'")
        }
    }

    /// One of `choices`.
    func choice(_ key: String, _ choices: [String]) throws -> String? {
        guard let (text, mark) = try scalar(key, "one of \(choices.joined(separator: ", "))") else { return nil }
        guard choices.contains(where: { Array($0.utf8) == Array(text.utf8) }) else {
            throw fail(key, mark, "'\(text)' is not one of \(choices.joined(separator: ", "))")
        }
        return text
    }

    /// A path, relative to `base` unless absolute or starting with ~.
    func path(_ key: String, base: String) throws -> String? {
        guard let text = try string(key) else { return nil }
        return Self.resolve(text, base: base)
    }

    static func resolve(_ text: String, base: String) -> String {
        let expanded = (text as NSString).expandingTildeInPath
        return expanded.hasPrefix("/") ? expanded : URL(fileURLWithPath: base).appendingPathComponent(expanded).standardizedFileURL.path
    }

    /// A list of text, or one text as a list of one.
    func strings(_ key: String) throws -> [String]? {
        guard let (n, mark) = node(key) else { return nil }
        switch n {
        case .scalar(let s): return [s.string]
        case .sequence(let items):
            return try items.map { item in
                guard case .scalar(let s) = item else { throw fail(key, item.mark ?? mark, "expected a list of text") }
                return s.string
            }
        default: throw fail(key, mark, "expected a list")
        }
    }

    func map(_ key: String) throws -> YAMLMap? {
        guard let (n, _) = node(key) else { return nil }
        return try YAMLMap(n, file: file, path: name(key))
    }

    /// A list of mappings.
    func maps(_ key: String) throws -> [YAMLMap]? {
        guard let (n, mark) = node(key) else { return nil }
        guard case .sequence(let items) = n else { throw fail(key, mark, "expected a list of mappings") }
        return try items.enumerated().map { i, item in try YAMLMap(item, file: file, path: "\(name(key))[\(i)]") }
    }

    /// Refuses the keys that are not known here, naming the known ones.
    func finish(known: [String]) throws {
        for e in entries where !known.contains(where: { Array($0.utf8) == Array(e.key.utf8) }) {
            let close = known.filter { Self.distance($0, e.key) <= 2 }
            throw RecipeError("\(Self.place(file, e.keyMark)): \(name(e.key)): unknown key"
                + (close.isEmpty ? "" : " (did you mean \(close.map { "'\($0)'" }.joined(separator: " or "))?)")
                + "; known here: \(known.joined(separator: ", "))")
        }
    }

    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
        var row = Array(0...b.count)
        for i in 1...max(1, a.count) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let saved = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = saved
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }
}

extension Node {
    var isMapping: Bool { if case .mapping = self { return true } else { return false } }
}

/// Parses YAML text into its root node, a syntax error naming its line.
func composeRecipe(_ text: String, file: String) throws -> Node {
    do {
        guard let node = try Yams.compose(yaml: text) else { throw RecipeError("\(file): the recipe is empty") }
        return node
    } catch let e as YamlError {
        throw RecipeError("\(file): not valid YAML: \(e)")
    }
}
