import Alignment
import Common
import Evaluation
import Foundation
import JSON
import Models
import Preference
import Retrieval

/// Runs a recipe's stages in order — knowledge base, pairs, the base's answers, then each training run and its
/// answers — and writes the report. Each finished stage is recorded (with its seconds) in `run_state.json`; a
/// re-run after a kill skips them and continues inside the unfinished one (pairs, answers and training all resume).
public final class RecipeRunner {
    public let recipe: Recipe
    public let out: String
    /// The prefix of the stage lines ("run: train x ...").
    public var label = "run"
    /// Stages run before the recipe's own (the demo's world), recorded like them.
    public var prelude: [(String, () throws -> Void)] = []
    /// Writes the report (default: `RecipeReport`).
    public var writeReport: ((RecipeRunner) throws -> String)?
    public private(set) var times: [(String, Double)] = []
    let fm = FileManager.default

    public init(recipe: Recipe, out: String? = nil) throws {
        guard let folder = out ?? recipe.outputDir else { throw RecipeError("\(recipe.file): output_dir is required (or give --out)") }
        self.recipe = recipe
        self.out = URL(fileURLWithPath: folder).standardizedFileURL.path
    }

    // MARK: layout

    public func path(_ p: String) -> String { (out as NSString).appendingPathComponent(p) }
    public var statePath: String { path("run_state.json") }
    public var knowledgeBaseFolder: String { path("knowledge-base") }

    public func pairsPath(_ name: String) -> String {
        if let spec = recipe.pairs.first(where: { Array($0.name.utf8) == Array(name.utf8) }) { return spec.path ?? path("pairs/\(name).jsonl") }
        return name  // a file
    }

    public func trainFolder(_ name: String) -> String { path("train/\(name)") }

    /// Every model the report compares: the base, then each training run with its adapter (or full model).
    public var models: [(name: String, adapter: String?)] {
        [("base", nil)] + recipe.training.map { ($0.name, trainFolder($0.name) + ($0.options.full ? "/model" : "/adapter")) }
    }

    public func answersPath(model: String, benchmark: String) -> String { path("eval/\(model)/\(benchmark).answers.jsonl") }

    // MARK: state

    /// The recipe's hash: a state written by another recipe refuses to continue.
    public var recipeHash: String { sha256Hex(Array(recipe.text.utf8)) }

    func loadState() throws -> [String: Double] {
        guard fm.fileExists(atPath: statePath) else { return [:] }
        let state = try JSONValue.parse(contentsOf: statePath)
        guard state["recipe_sha256"]?.stringValue == recipeHash else {
            throw RecipeError("\(out) holds a run of another recipe (\(state["recipe_sha256"]?.stringValue ?? "?")); use another output folder or delete it")
        }
        var done: [String: Double] = [:]
        for (k, v) in state["stages"]?.objectValue ?? [] { done[k] = v.doubleValue }
        return done
    }

    func saveState() throws {
        let state: JSONValue = .object([("recipe_sha256", .string(recipeHash)), ("stages", .object(times.map { ($0.0, .double($0.1)) }))])
        try (state.serialized(pretty: true) + "\n").write(toFile: statePath, atomically: true, encoding: .utf8)
    }

    func stage(_ name: String, _ body: () throws -> Void) throws {
        if let seconds = try loadState()[name] {
            times.append((name, seconds))
            log("\(label): \(name) done (\(formatDuration(seconds)))")
            return
        }
        log("\(label): \(name) ...")
        let started = Date()
        try body()
        let seconds = Date().timeIntervalSince(started)
        times.append((name, seconds))
        try saveState()
        log("\(label): \(name) finished in \(formatDuration(seconds))")
    }

    // MARK: the run

    /// Runs every unfinished stage and writes the report; returns the report's Markdown.
    @discardableResult
    public func run() throws -> String {
        if prelude.isEmpty { try check() }
        try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
        _ = try loadState()
        try (recipe.text).write(toFile: path("recipe.yaml"), atomically: true, encoding: .utf8)
        times = []
        for (name, body) in prelude { try stage(name, body) }
        if !prelude.isEmpty { try check() }
        try stage("evaluate base") { try evaluate(name: "base", adapter: nil) }
        if let kb = recipe.knowledgeBase {
            try stage("knowledge base") {
                let vlm = try VisionLanguageModel(folder: recipe.model)
                try KnowledgeBaseJob.build(folder: knowledgeBaseFolder, model: vlm, images: try KnowledgeBase.listImages(kb.images), kind: kb.kind,
                                           batchSize: kb.batchSize)
            }
        }
        for p in recipe.pairs where p.path == nil {
            try stage("\(p.name) pairs") { try buildPairs(p) }
        }
        for t in recipe.training {
            try stage("train \(t.name)") { try train(t) }
            try stage("evaluate \(t.name)") { try evaluate(name: t.name, adapter: models.first { $0.name == t.name }!.adapter) }
        }
        let markdown = try writeReport?(self) ?? RecipeReport(runner: self).write()
        log("\(label): report in \(path("report.md")), \(path("report.json")), \(path("report.html")) (all stages \(formatDuration(times.reduce(0) { $0 + $1.1 })))")
        return markdown
    }

    /// Refuses a recipe whose input files are missing, listing them all.
    public func check() throws {
        let missing = recipe.missingFiles()
        guard missing.isEmpty else { throw RecipeError(missing.joined(separator: "\n")) }
    }

    func buildPairs(_ p: Recipe.PairSpec) throws {
        try fm.createDirectory(atPath: path("pairs"), withIntermediateDirectories: true)
        var c = p.config
        c.out = pairsPath(p.name)
        if c.method == .realign && c.index == nil && recipe.knowledgeBase != nil && c.model == recipe.model { c.index = knowledgeBaseFolder }
        let job = BuildPairsJob(c)
        try blockingRun { try await job.run() }
    }

    func train(_ t: Recipe.TrainSpec) throws {
        let data = pairsPath(t.pairs)
        let count = try JSONLines(path: data).records.count
        guard count > 0 else { throw JobError("\(data): no pairs to train \(t.name) on") }
        var c = TrainConfig(model: recipe.model, data: data, out: trainFolder(t.name))
        c.format = t.format
        c.options = t.options
        c.resume = true
        try TrainJob.run(c)
    }

    /// Answers every benchmark with one model (loaded once).
    func evaluate(name: String, adapter: String?) throws {
        guard !recipe.benchmarks.isEmpty else { return }
        try fm.createDirectory(atPath: path("eval/\(name)"), withIntermediateDirectories: true)
        let vlm = try VisionLanguageModel(folder: recipe.model, adapter: adapter)
        for b in recipe.benchmarks {
            var c = AnswerConfig(questions: b.questions, model: recipe.model)
            c.adapter = adapter
            c.imageRoot = b.imageRoot
            c.answersOut = answersPath(model: name, benchmark: b.name)
            c.batchSize = b.batchSize
            c.maxNewTokens = b.maxNewTokens
            c.promptSuffix = b.promptSuffix
            c.prompt = b.prompt
            c.idKeys = b.idKeys
            try AnswerJob.run(c, loaded: vlm)
        }
    }
}
