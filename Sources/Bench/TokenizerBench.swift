import Foundation
import Jobs
import Tokenizers

/// Encoding throughput of a byte-level BPE tokenizer vs the `tokenizers` library, single thread both.
public struct TokenizerBenchConfig: Sendable {
    /// A tokenizer.json file or folder (a byte-level BPE such as Qwen2's).
    public var tokenizer: String
    /// The text to encode (nil: about `megabytes` MB assembled from local documentation).
    public var text: String?
    /// Size of the assembled text in MB.
    public var megabytes = 10
    /// Rounds; the best counts.
    public var rounds = 3
    /// Python interpreter with the tokenizers package.
    public var python = "python3"

    public init(tokenizer: String) {
        self.tokenizer = tokenizer
    }
}

public enum TokenizerBench {
    /// Prints tokens/s for ReAlign and the tokenizers library (run with TOKENIZERS_PARALLELISM=false and
    /// RAYON_NUM_THREADS=1), and whether their ids are identical.
    public static func run(_ config: TokenizerBenchConfig) throws {
        let c = config
        printMachine()
        let corpus = try c.text.map { try String(contentsOfFile: $0, encoding: .utf8) } ?? assemble(megabytes: c.megabytes)
        let path = c.text ?? {
            let p = FileManager.default.temporaryDirectory.appendingPathComponent("realign-bench-text.txt").path
            try? corpus.write(toFile: p, atomically: true, encoding: .utf8)
            return p
        }()
        let tok = try Tokenizer(path: c.tokenizer)
        var ids: [Int] = []
        var best = Double.infinity
        for _ in 0..<c.rounds {
            let t0 = DispatchTime.now().uptimeNanoseconds
            ids = try tok.encode(corpus, addSpecialTokens: false)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        let bytes = corpus.utf8.count
        print(String(format: "text: %.1f MB, %d tokens", Double(bytes) / 1e6, ids.count))
        print(String(format: "  ReAlign      %8.2f s   %10.0f tokens/s", best, Double(ids.count) / best))
        let script = """
            import os, sys, time
            os.environ["TOKENIZERS_PARALLELISM"] = "false"
            from tokenizers import Tokenizer
            tok = Tokenizer.from_file(sys.argv[1])
            text = open(sys.argv[2], encoding="utf-8").read()
            best = float("inf")
            for _ in range(\(c.rounds)):
                t0 = time.perf_counter(); enc = tok.encode(text, add_special_tokens=False); best = min(best, time.perf_counter() - t0)
            print(best, len(enc.ids), int(enc.ids == [int(x) for x in open(sys.argv[3]).read().split()]))
            """
        let idsPath = FileManager.default.temporaryDirectory.appendingPathComponent("realign-bench-ids.txt").path
        try ids.map(String.init).joined(separator: " ").write(toFile: idsPath, atomically: true, encoding: .utf8)
        let file = (try? FileManager.default.attributesOfItem(atPath: c.tokenizer)[.type] as? FileAttributeType) == .typeDirectory
            ? (c.tokenizer as NSString).appendingPathComponent("tokenizer.json") : c.tokenizer
        let fields = referenceOutput(["RAYON_NUM_THREADS=1", c.python, "-c", script, file, path, idsPath])?.split(whereSeparator: \.isWhitespace) ?? []
        guard fields.count == 3, let seconds = Double(fields[0]) else {
            print("  tokenizers   not available (\(c.python) cannot run or cannot import tokenizers)")
            return
        }
        print(String(format: "  tokenizers   %8.2f s   %10.0f tokens/s   ReAlign/tokenizers = %.2fx   ids identical: %@",
                     seconds, Double(ids.count) / seconds, seconds / best, fields[2] == "1" ? "yes" : "NO"))
    }

    /// English text from local documentation (/usr/share/common-licenses, /usr/share/doc/*/copyright), repeated
    /// up to the size asked.
    public static func assemble(megabytes: Int) throws -> String {
        var files = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/share/common-licenses"))?.sorted().map { "/usr/share/common-licenses/" + $0 } ?? []
        let docs = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/share/doc"))?.sorted() ?? []
        files += docs.map { "/usr/share/doc/\($0)/copyright" }
        var parts: [String] = []
        var size = 0
        for f in files {
            guard let s = try? String(contentsOfFile: f, encoding: .utf8) else { continue }
            parts.append(s)
            size += s.utf8.count
        }
        guard size > 0 else { throw JobError("no local documentation to build a text from; pass --text FILE") }
        let target = megabytes * 1_000_000
        var out = ""
        out.reserveCapacity(target + size)
        while out.utf8.count < target {
            for p in parts where out.utf8.count < target { out += p }
        }
        return out
    }
}
