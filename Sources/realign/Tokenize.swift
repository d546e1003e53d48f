import ArgumentParser
import Foundation
import Jobs
import JSON
import Tokenizers

/// Encodes text or decodes ids with a tokenizer.json, exactly as the `tokenizers` library does.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode text to token ids, or decode ids to text, with a Hugging Face tokenizer.json.",
        discussion: """
            Encoding prints what the tokenizers library's Tokenizer.encode(TEXT) gives: special tokens added \
            (unless --no-special), the file's truncation and padding sections honoured. Decoding (--decode) takes \
            ids as a JSON array or a comma/space-separated list and prints Tokenizer.decode(ids): special tokens \
            skipped unless --keep-special; ids the tokenizer does not know decode to nothing.
            """)

    @Option(help: "A tokenizer.json file or a folder holding one.")
    var tokenizer: String

    @Flag(help: "Print the ids as a JSON array.")
    var json = false

    @Flag(name: .customLong("no-special"), help: "Do not add special tokens (BOS, CLS/SEP, ...).")
    var noSpecial = false

    @Option(help: "Decode these ids instead of encoding: a JSON array or a comma/space-separated list.")
    var decode: String?

    @Flag(name: .customLong("keep-special"), help: "When decoding, keep special tokens.")
    var keepSpecial = false

    @Argument(help: "The text to encode.")
    var text: String?

    func validate() throws {
        if decode == nil && text == nil { throw ValidationError("give TEXT to encode or --decode IDS") }
        if decode != nil && text != nil { throw ValidationError("give either TEXT or --decode IDS, not both") }
    }

    func run() throws {
        let tok: Tokenizer
        do {
            tok = try Tokenizer(path: tokenizer)
        } catch {
            throw CleanExit.message(error)
        }
        if let decode {
            let ids = try Self.parseIDs(decode)
            print(tok.decode(ids, skipSpecialTokens: !keepSpecial))
            return
        }
        let ids = try tok.encode(text ?? "", addSpecialTokens: !noSpecial)
        print(json ? "[" + ids.map(String.init).joined(separator: ", ") + "]" : ids.map(String.init).joined(separator: " "))
    }

    static func parseIDs(_ s: String) throws -> [Int] {
        let trimmed = s.trimmingCharacters(in: .whitespacesAndNewlines)
        let body = trimmed.hasPrefix("[") && trimmed.hasSuffix("]") ? String(trimmed.dropFirst().dropLast()) : trimmed
        let parts = body.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\n" || $0 == "\t" })
        return try parts.map { part in
            guard let id = Int(part), id >= 0 else { throw ValidationError("'\(part)' is not a token id (a non-negative integer)") }
            return id
        }
    }
}

extension CleanExit {
    /// A failure with a one-line message on stderr and exit status 1.
    static func message(_ error: Error) -> ExitCode {
        FileHandle.standardError.write(Data("realign: \(error)\n".utf8))
        // Under torchrun: its failure summary shows this message instead of "error_file: <N/A>".
        if let path = ProcessInfo.processInfo.environment["TORCHELASTIC_ERROR_FILE"], !path.isEmpty {
            // torchrun prints extraInfo.py_callstack as the failure's traceback: ours is the message.
            let record: JSONValue = .object([("message", .object([
                ("message", .string("realign: \(error)")),
                ("extraInfo", .object([("py_callstack", .string("realign: \(error)")), ("timestamp", .string(String(Int(Date().timeIntervalSince1970))))])),
            ]))])
            try? Data(record.serialized().utf8).write(to: URL(fileURLWithPath: path))
        }
        return ExitCode.failure
    }
}
