import Foundation

/// A yes/no answer as a harness reads it.
public enum YesNo: String, Sendable {
    case yes, no, unknown
}

/// The answer-parsing rule of a standard harness, reproduced with its quirks (the fixtures' expected values
/// come from tools/reference/make_eval_fixtures.py, which mirrors each original).
public enum YesNoRule: String, CaseIterable, Sendable {
    /// RUCAIBox/POPE evaluate.py (also LLaVA's eval_pope.py): text before the first '.', commas removed, split on
    /// single spaces; "No", "not" or "no" among the words -> no, anything else -> yes (never unknown).
    case pope
    /// lmms-eval tasks/pope: lower-cased and stripped, exactly "yes" or "no"; anything else is unknown.
    case lmmsEval = "lmms-eval"
    /// VLMEvalKit YOrN_Extraction: lower-cased, VQA punctuation processing, whitespace words; "yes" without
    /// "no" -> yes, "no" without "yes" -> no, else unknown.
    case vlmevalkit

    public func parse(_ text: String) -> YesNo {
        switch self {
        case .pope:
            var head = Substring(text)
            if let dot = head.firstIndex(of: ".") { head = head[..<dot] }
            let words = head.replacingOccurrences(of: ",", with: "").split(separator: " ", omittingEmptySubsequences: false)
            return words.contains(where: { $0 == "No" || $0 == "not" || $0 == "no" }) ? .no : .yes
        case .lmmsEval:
            switch pythonStrip(text.lowercased()) {
            case "yes": return .yes
            case "no": return .no
            default: return .unknown
            }
        case .vlmevalkit:
            let words = processPunctuation(text.lowercased()).split(whereSeparator: { $0.isWhitespace })
            let yes = words.contains("yes"), no = words.contains("no")
            if yes && !no { return .yes }
            if no && !yes { return .no }
            return .unknown
        }
    }
}

/// Python's str.strip(): whitespace off both ends.
func pythonStrip(_ s: String) -> String {
    s.trimmingCharacters(in: .whitespacesAndNewlines)
}

func isDecimalDigit(_ c: Character) -> Bool {
    c.unicodeScalars.count == 1 && c.unicodeScalars.first!.properties.numericType == .decimal
}

/// VQA-style punctuation processing as VLMEvalKit runs it: each listed mark is deleted when the original text
/// has it beside a space (or has a digit,digit anywhere), else replaced by a space; then periods not followed by
/// a digit are deleted, at most 32 of them (the original passes re.UNICODE = 32 as the `count` argument).
func processPunctuation(_ text: String) -> String {
    let marks: [Character] = [";", "/", "[", "]", "\"", "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
    let chars = Array(text)
    var digitComma = false
    if chars.count >= 3 {
        for i in 1..<(chars.count - 1) where chars[i] == "," && isDecimalDigit(chars[i - 1]) && isDecimalDigit(chars[i + 1]) {
            digitComma = true
            break
        }
    }
    var out = text
    for mark in marks {
        let delete = digitComma || text.contains(String(mark) + " ") || text.contains(" " + String(mark))
        out = out.replacingOccurrences(of: String(mark), with: delete ? "" : " ")
    }
    let outChars = Array(out)
    var result = ""
    var removed = 0
    for (i, c) in outChars.enumerated() {
        if c == ".", removed < 32, !(i + 1 < outChars.count && isDecimalDigit(outChars[i + 1])) {
            removed += 1
            continue
        }
        result.append(c)
    }
    return result
}
