import Foundation

/// Which image files of a data set can be read, decided before a long job starts: each distinct file is decoded
/// once (header and pixels, in parallel), so that a bad file is reported with the record that names it instead of
/// ending the job at the step that reaches it.
public enum ImageCheck {
    /// The verdicts: which paths fail and why. Paths are compared as bytes (the file system's rule), not by
    /// Swift's canonical string equality.
    public struct Result: Sendable {
        var reasons: [[UInt8]: String] = [:]
        /// Why `path` cannot be used; nil when it decodes (or was not checked).
        public func reason(for path: String) -> String? { reasons[Array(path.utf8)] }
        public var failureCount: Int { reasons.count }
    }

    /// Checks every distinct path. `cache`, a file, keeps the verdicts by path, size and modification time, so a
    /// resumed job only decodes what changed. `progress` sees (done, total) now and then.
    public static func check(_ paths: [String], options: ImageLoadOptions = ImageLoadOptions(), cache: String? = nil,
                             progress: (@Sendable (Int, Int) -> Void)? = nil) -> Result {
        var unique: [String] = []
        var seen = Set<[UInt8]>()
        for p in paths where seen.insert(Array(p.utf8)).inserted { unique.append(p) }
        let known = cache.map(Verdicts.read) ?? [:]
        let stamps = unique.map(stamp)
        var verdicts = [String?](repeating: nil, count: unique.count)
        var todo: [Int] = []
        for (i, p) in unique.enumerated() {
            if let s = stamps[i], let v = known[Array(p.utf8)], v.stamp == s { verdicts[i] = v.reason } else { todo.append(i) }
        }
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var reasons: [String?]
            var done = 0
            init(_ n: Int) { reasons = [String?](repeating: nil, count: n) }
            func set(_ k: Int, _ reason: String) -> Int {
                lock.lock(); defer { lock.unlock() }
                reasons[k] = reason
                done += 1
                return done
            }
        }
        let results = Results(todo.count)
        let jobs = todo.map { (path: unique[$0], readable: stamps[$0] != nil) }
        DispatchQueue.concurrentPerform(iterations: jobs.count) { k in
            let path = jobs[k].path
            let reason: String
            if !jobs[k].readable {
                reason = FileManager.default.fileExists(atPath: path) ? "\(path): cannot read the file" : "\(path): no such file"
            } else {
                do { _ = try RGBImage(contentsOfFile: path, options: options); reason = "" } catch { reason = "\(error)" }
            }
            let done = results.set(k, reason)
            if done % 500 == 0 || done == jobs.count { progress?(done, jobs.count) }
        }
        for (k, i) in todo.enumerated() { verdicts[i] = results.reasons[k] }
        if let cache {
            var out = known
            for (i, p) in unique.enumerated() { if let s = stamps[i] { out[Array(p.utf8)] = (s, verdicts[i] ?? "") } }
            Verdicts.write(out, to: cache)
        }
        var result = Result()
        for (i, p) in unique.enumerated() where !(verdicts[i] ?? "").isEmpty { result.reasons[Array(p.utf8)] = verdicts[i]! }
        return result
    }

    /// Size and modification time of a regular file; nil when it is missing or unreadable.
    static func stamp(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, access(path, R_OK) == 0 else { return nil }
        return "\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
    }

    /// The cache file: one line per path, `stamp<TAB>path<TAB>reason` (empty reason: the file decodes), written
    /// atomically (a temporary file renamed), so a kill never leaves half of it.
    enum Verdicts {
        static func read(_ path: String) -> [[UInt8]: (stamp: String, reason: String)] {
            guard let data = FileManager.default.contents(atPath: path) else { return [:] }
            var out: [[UInt8]: (stamp: String, reason: String)] = [:]
            for line in data.split(separator: UInt8(ascii: "\n")) {
                let fields = line.split(separator: UInt8(ascii: "\t"), maxSplits: 2, omittingEmptySubsequences: false)
                guard fields.count == 3 else { continue }
                out[Array(fields[1])] = (String(decoding: fields[0], as: UTF8.self), String(decoding: fields[2], as: UTF8.self))
            }
            return out
        }

        static func write(_ verdicts: [[UInt8]: (stamp: String, reason: String)], to path: String) {
            var bytes: [UInt8] = []
            for (p, v) in verdicts.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) })
            where !p.contains(UInt8(ascii: "\t")) && !p.contains(UInt8(ascii: "\n")) {
                let reason = v.reason.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\t", with: " ")
                bytes += Array("\(v.stamp)\t".utf8) + p + Array("\t\(reason)\n".utf8)
            }
            // A cache that cannot be written only costs a re-check next time.
            try? Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        }
    }
}
