import Alignment
import Backends
import Foundation
import JSON

/// VaPR's ten task categories; each gets its own edit instruction.
public enum TaskCategory: String, CaseIterable, Sendable {
    case counting, spatial, object, colour, size, background, existence, referential, captioning, reasoning

    /// What the editor may change for this kind of question.
    var editFocus: String {
        switch self {
        case .counting: return "the number of objects (a count word or digit) and nothing else"
        case .spatial: return "one spatial relation (left/right, above/below, in front of/behind, near/far)"
        case .object: return "the identity of one key object (name a different but plausible object)"
        case .colour: return "the colour of one key object"
        case .size: return "the size or proportion of one key object"
        case .background: return "one detail of the background or setting"
        case .existence: return "whether an object is present (e.g. yes <-> no, or mention an absent object)"
        case .referential: return "which object or person the answer refers to (swap the attribute that identifies it)"
        case .captioning: return "two or three visual details (objects, attributes or relations) of the description"
        case .reasoning: return "one premise the reasoning relies on, so its conclusion no longer follows from the image"
        }
    }
}

/// VaPR: an LLM edits the chosen answer's key spans to inject a targeted error, keeping style and length.
public struct VaPREditor: Sendable {
    public enum Classifier: Sendable {
        case rules
        case backend(any ChatBackend)
    }

    /// Who edits: a model backend (the paper's LLM editor) or the network-free rule editor.
    public enum Editor: Sendable {
        case backend(any ChatBackend)
        case rules(RuleEditor)
    }

    public var classifier: Classifier
    public var editor: Editor
    /// The same substitution ("red -> blue") may appear in at most this many pairs.
    public var maxReuse = 3
    /// Optional rejections of style/length-biased pairs.
    public var maxLengthGap: Int?
    public var maxEditDistance: Int?
    /// Tokens of a text (the policy's tokenizer), for the length gap.
    public var countTokens: @Sendable (String) -> Int
    public let penalties = PenaltyList()

    public init(classifier: Classifier, editor: any ChatBackend, countTokens: @escaping @Sendable (String) -> Int) {
        self.init(classifier: classifier, editor: .backend(editor), countTokens: countTokens)
    }

    public init(classifier: Classifier, editor: Editor, countTokens: @escaping @Sendable (String) -> Int) {
        self.classifier = classifier
        self.editor = editor
        self.countTokens = countTokens
    }

    /// Multiple-choice questions and one-letter answers: editing them teaches nothing about the image.
    public static func isUnsuitable(prompt: String, chosen: String) -> String? {
        let p = prompt.lowercased()
        let optionLines = prompt.components(separatedBy: .newlines).filter {
            $0.trimmingCharacters(in: .whitespaces).range(of: #"^\(?[A-Ea-e][\.\):]\s"#, options: .regularExpression) != nil
        }
        if optionLines.count >= 2 || p.contains("options:") || p.contains("choose from") || p.contains("answer with the option") {
            return "multiple choice"
        }
        let a = chosen.trimmingCharacters(in: .whitespacesAndNewlines)
        if a.range(of: #"^\(?[A-E][\.\)]?$"#, options: .regularExpression) != nil { return "a one-letter answer" }
        if a.isEmpty { return "an empty answer" }
        return nil
    }

    /// The category by keyword rules on the question (then the answer's length).
    public static func classifyByRules(prompt: String, chosen: String) -> TaskCategory {
        let p = " " + prompt.lowercased().replacingOccurrences(of: "?", with: " ") + " "
        func has(_ words: [String]) -> Bool { words.contains { p.contains($0) } }
        if has([" how many ", " number of ", " count "]) { return .counting }
        if has([" what color", " what colour", " which color", " which colour", " color of ", " colour of "]) { return .colour }
        if has([" is there ", " are there ", " is there a", " does the image contain", " do you see ", " can you see "]) { return .existence }
        if has([" where ", " left ", " right ", " above ", " below ", " behind ", " in front of ", " next to ", " position "]) { return .spatial }
        if has([" how big ", " how large ", " size ", " tall ", " small ", " large ", " bigger ", " smaller "]) { return .size }
        if has([" background ", " setting ", " scene ", " environment "]) { return .background }
        if has([" why ", " how might ", " what might ", " reason ", " purpose ", " explain ", " infer "]) { return .reasoning }
        if has([" which ", " the one ", " who is ", " the person "]) { return .referential }
        if has([" describe ", " caption ", " detail ", " what is happening ", " what's happening "]) { return .captioning }
        if has([" what is ", " what are ", " what kind ", " what type ", " identify "]) { return .object }
        return chosen.split(separator: " ").count > 30 ? .captioning : .object
    }

    func classify(_ sample: SampleInput, chosen: String) async throws -> TaskCategory? {
        switch classifier {
        case .rules:
            return Self.classifyByRules(prompt: sample.prompt, chosen: chosen)
        case .backend(let backend):
            let names = TaskCategory.allCases.map(\.rawValue).joined(separator: ", ")
            let reply = try await backend.complete(ChatRequest(
                system: "Classify a visual question-answer pair into exactly one task category: \(names). Reply 'unsuitable' for multiple-choice questions or answers that cannot be edited into a factual error. Reply with the category word only.",
                user: "Question: \(sample.prompt)\nAnswer: \(chosen)", maxTokens: 8)).text.lowercased()
            if reply.contains("unsuitable") { return nil }
            let words = reply.split(whereSeparator: { !$0.isLetter }).map { $0 == "color" ? "colour" : String($0) }
            guard let category = words.lazy.compactMap(TaskCategory.init(rawValue:)).first else {
                throw BackendError("the classifier answered '\(reply.prefix(40))', not a category")
            }
            return category
        }
    }

    static func editPrompt(_ category: TaskCategory, avoid: [String]) -> String {
        var text = """
            You write hard negative answers for preference training of a vision-language model. Edit the answer so \
            that it becomes wrong about the image by changing only \(category.editFocus). Keep every other word, \
            the sentence structure, the tone and the length the same. Reply with the edited answer only.
            """
        if !avoid.isEmpty { text += "\nDo not use these substitutions, which are already overused: \(avoid.joined(separator: "; "))." }
        return text
    }

    /// One sample to a pair or a skipped record: `propose`, then `commit`. (The record runner calls the two
    /// apart, committing in input order.)
    public func process(_ sample: SampleInput) async -> RecordOutcome {
        await commit(sample, await propose(sample))
    }

    /// The first edit of a sample, which depends on nothing but the sample: classification and one edit with no
    /// substitution avoided. The penalty list is not read or changed here.
    public func propose(_ sample: SampleInput) async -> RecordOutcome {
        func skip(_ kind: String, _ reason: String) -> RecordOutcome { .skipped(id: sample.id, kind: kind, reason: reason) }
        guard let chosen = sample.chosen else { return skip("failed", "no 'chosen' in the input") }
        if let why = Self.isUnsuitable(prompt: sample.prompt, chosen: chosen) { return skip("unpaired", "unsuitable for editing: \(why)") }
        let category: TaskCategory
        do {
            guard let c = try await classify(sample, chosen: chosen) else { return skip("unpaired", "the classifier found it unsuitable") }
            category = c
        } catch {
            return skip("failed", "classification: \(error)")
        }
        return await attempt(sample, chosen: chosen, category: category, avoid: [])
    }

    /// Checks a proposed pair against the penalty list, edits once more avoiding the overused substitutions if
    /// needed, and records the kept pair's substitutions. Called in input order, so that the penalties — and so
    /// the output — do not depend on which records finished first.
    public func commit(_ sample: SampleInput, _ proposed: RecordOutcome) async -> RecordOutcome {
        guard case .kept(let record) = proposed, let chosen = sample.chosen,
              let category = record.provenance["category"]?.stringValue.flatMap(TaskCategory.init(rawValue:)) else { return proposed }
        var outcome = proposed
        for retry in 0..<2 {
            guard case .kept(let r) = outcome else { return outcome }
            let substitutions = (r.provenance["substitutions"]?.arrayValue ?? []).compactMap(\.stringValue)
            let overused = penalties.overused(substitutions, limit: maxReuse)
            if overused.isEmpty {
                penalties.record(substitutions)
                return outcome
            }
            if retry == 1 { return .skipped(id: sample.id, kind: "unpaired", reason: "substitution reused too often: \(overused.joined(separator: ", "))") }
            let avoid: [String]
            switch editor {
            case .backend: avoid = penalties.mostUsed(10)
            case .rules: avoid = penalties.reachedLimit(maxReuse)
            }
            outcome = await attempt(sample, chosen: chosen, category: category, avoid: avoid)
        }
        return outcome
    }

    /// One edit and the checks that depend only on it (unchanged answer, length gap, edit distance).
    func attempt(_ sample: SampleInput, chosen: String, category: TaskCategory, avoid: [String]) async -> RecordOutcome {
        func skip(_ kind: String, _ reason: String) -> RecordOutcome { .skipped(id: sample.id, kind: kind, reason: reason) }
        let edited: String
        switch editor {
        case .backend(let backend):
            do {
                edited = try await backend.complete(ChatRequest(system: Self.editPrompt(category, avoid: avoid),
                                                                user: "Question: \(sample.prompt)\nAnswer: \(chosen)\n\nEdited answer:",
                                                                maxTokens: max(64, countTokens(chosen) * 2))).text
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                return skip("failed", "editor: \(error)")
            }
        case .rules(let rules):
            guard let e = rules.edit(chosen, category: category, id: sample.id, avoid: Set(avoid)) else {
                return skip("unpaired", avoid.isEmpty ? "nothing of the \(category.rawValue) category to edit in the answer" : "every possible edit is overused")
            }
            edited = e
        }
        guard !edited.isEmpty, edited != chosen else { return skip("unpaired", "the editor returned the answer unchanged") }
        let substitutions = Self.substitutions(from: chosen, to: edited)
        let gap = abs(countTokens(edited) - countTokens(chosen))
        let distance = levenshtein(chosen, edited)
        if let maxLengthGap, gap > maxLengthGap { return skip("unpaired", "length gap \(gap) tokens > \(maxLengthGap)") }
        if let maxEditDistance, distance > maxEditDistance { return skip("unpaired", "edit distance \(distance) > \(maxEditDistance)") }
        return .kept(PreferenceRecord(
            id: sample.id, prompt: sample.prompt, chosen: chosen, rejected: edited, image: sample.image, retrievedImage: nil, line: sample.line,
            provenance: .object([("category", .string(category.rawValue)), ("substitutions", .array(substitutions.map { .string($0) })),
                                 ("length_gap", .int(gap)), ("levenshtein", .int(distance))])))
    }

    /// Word-level replacements from `a` to `b` ("red -> blue"), from the longest common subsequence of words.
    public static func substitutions(from a: String, to b: String) -> [String] {
        let x = a.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
        let y = b.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
        var table = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
        for i in stride(from: x.count - 1, through: 0, by: -1) {
            for j in stride(from: y.count - 1, through: 0, by: -1) {
                table[i][j] = x[i] == y[j] ? table[i + 1][j + 1] + 1 : max(table[i + 1][j], table[i][j + 1])
            }
        }
        var out: [String] = []
        var i = 0, j = 0
        var removed: [String] = [], added: [String] = []
        func flush() {
            if !removed.isEmpty || !added.isEmpty { out.append("\(removed.joined(separator: " ")) -> \(added.joined(separator: " "))") }
            removed = []; added = []
        }
        while i < x.count || j < y.count {
            if i < x.count && j < y.count && x[i] == y[j] { flush(); i += 1; j += 1 }
            else if j < y.count && (i == x.count || table[i][j + 1] >= table[i + 1][j]) { added.append(y[j]); j += 1 }
            else { removed.append(x[i]); i += 1 }
        }
        flush()
        return out
    }
}

/// How often each substitution was used, so the editor does not keep making the same swap.
public final class PenaltyList: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]

    public init() {}

    public func record(_ substitutions: [String]) { lock.withLock { for s in substitutions { counts[s, default: 0] += 1 } } }
    func overused(_ substitutions: [String], limit: Int) -> [String] { lock.withLock { substitutions.filter { counts[$0, default: 0] >= limit } } }
    /// Every substitution used `limit` times or more, in a fixed order.
    func reachedLimit(_ limit: Int) -> [String] { lock.withLock { counts.filter { $0.value >= limit }.map(\.key).sorted() } }
    func mostUsed(_ n: Int) -> [String] {
        lock.withLock { counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(n).map(\.key) }
    }
    public func count(_ s: String) -> Int { lock.withLock { counts[s, default: 0] } }

    /// Counts from the pairs a previous run wrote (so a resumed run keeps its penalties).
    public func load(from output: String) {
        guard let data = FileManager.default.contents(atPath: output) else { return }
        for line in data.split(separator: UInt8(ascii: "\n")) {
            if let subs = (try? JSONValue.parse(Array(line)))?["substitutions"]?.arrayValue { record(subs.compactMap(\.stringValue)) }
        }
    }
}

/// Character-level Levenshtein distance (insertions, deletions, substitutions of Unicode characters).
public func levenshtein(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    if x.isEmpty { return y.count }
    var previous = Array(0...y.count)
    var current = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        current[0] = i
        for j in stride(from: 1, through: y.count, by: 1) {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[y.count]
}
