import Foundation

/// Runs a per-record job over samples with up to `concurrency` records in flight and writes each outcome in
/// input order as soon as it and every earlier one are done — so any concurrency gives the same file, and a kill
/// loses only the records in flight. `commit`, when given, sees each outcome in input order before it is written.
public struct RecordRunner: Sendable {
    public struct Progress: Sendable {
        public var kept = 0, unpaired = 0, failed = 0, finished = 0, total = 0, previously = 0
        public var elapsed: Double = 0
        /// Seconds left at this run's pace.
        public var eta: Double? {
            let doneNow = finished - previously
            guard doneNow > 0 else { return nil }
            return elapsed / Double(doneNow) * Double(total - finished)
        }
    }

    public var concurrency: Int

    public init(concurrency: Int) { self.concurrency = max(1, concurrency) }

    public func run(_ samples: [SampleInput], problems: [RecordOutcome] = [], output: ResumableOutput,
                    progress: (@Sendable (Progress) -> Void)? = nil,
                    commit: (@Sendable (SampleInput, RecordOutcome) async -> RecordOutcome)? = nil,
                    process: @escaping @Sendable (SampleInput) async -> RecordOutcome) async throws -> Progress {
        let start = Date()
        var state = Progress()
        state.total = samples.count + problems.count
        let newProblems = problems.filter { !output.done.contains($0.id ?? "") }
        let todo = samples.filter { !output.done.contains($0.id) }
        state.previously = state.total - todo.count - newProblems.count
        state.finished = state.previously
        for p in newProblems {
            try output.write(p)
            state.failed += 1
            state.finished += 1
        }
        progress?(state)

        try await withThrowingTaskGroup(of: (Int, RecordOutcome).self) { group in
            var next = 0
            var pending: [Int: RecordOutcome] = [:]
            var written = 0
            func launch() {
                guard next < todo.count else { return }
                let index = next, sample = todo[index]
                group.addTask { (index, await process(sample)) }
                next += 1
            }
            for _ in 0..<min(concurrency, todo.count) { launch() }
            while let (index, outcome) = try await group.next() {
                pending[index] = outcome
                while var ready = pending.removeValue(forKey: written) {
                    // State shared across records (VaPR's penalty list) changes here, one record at a time in
                    // input order, so the file does not depend on which record finished first.
                    if let commit { ready = await commit(todo[written], ready) }
                    try output.write(ready)
                    switch ready {
                    case .kept: state.kept += 1
                    case .skipped(_, let kind, _): if kind == "unpaired" { state.unpaired += 1 } else { state.failed += 1 }
                    }
                    written += 1
                    state.finished += 1
                    state.elapsed = Date().timeIntervalSince(start)
                    progress?(state)
                }
                launch()
            }
        }
        return state
    }
}

/// A one-line progress bar on stderr: kept / tried / failed, done of total, and the time left.
public func progressLine(_ label: String, _ p: RecordRunner.Progress) -> String {
    let width = 24
    let filled = p.total == 0 ? width : p.finished * width / p.total
    let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
    let eta = p.eta.map { " ETA \(formatDuration($0))" } ?? ""
    let tried = p.kept + p.unpaired + p.failed
    return "\(label) [\(bar)] \(p.finished)/\(p.total)  kept \(p.kept) | tried \(tried) | failed \(p.failed)\(eta)"
}

public func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 3600 ? "\(s / 3600)h\(String(format: "%02d", s % 3600 / 60))m" : s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
}
