/// Character classes with the meanings the `tokenizers` library gives them (Rust `char` methods, the
/// `regex` crate's `\w`, Oniguruma's `\s`, `\p{L}`, `\p{N}`).
extension Unicode.Scalar {
    /// Rust `char::is_whitespace`, regex `\s`: the White_Space property.
    @inline(__always) var isWhitespace: Bool {
        if value < 0x80 { return value == 0x20 || (value >= 0x09 && value <= 0x0D) }
        return properties.isWhitespace
    }

    /// `\p{L}`
    @inline(__always) var isLetter: Bool {
        if value < 0x80 { return (value | 0x20) >= 0x61 && (value | 0x20) <= 0x7A }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// `\p{N}`, Rust `char::is_numeric`.
    @inline(__always) var isNumber: Bool {
        if value < 0x80 { return value >= 0x30 && value <= 0x39 }
        switch properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// The `regex` crate's Unicode `\w`: Alphabetic, marks, decimal digits, connector punctuation, join controls.
    var isWordCharacter: Bool {
        if value < 0x80 {
            return isLetter || isNumber || value == 0x5F
        }
        let p = properties
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    /// Unicode punctuation (P*), as `is_punctuation` of the unicode categories the library uses.
    var isPunctuationCategory: Bool {
        switch properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// BERT's punctuation: ASCII punctuation or Unicode P*.
    var isBertPunctuation: Bool {
        if value < 0x80 {
            return (0x21...0x2F).contains(value) || (0x3A...0x40).contains(value) || (0x5B...0x60).contains(value)
                || (0x7B...0x7E).contains(value)
        }
        return isPunctuationCategory
    }

    /// "Other" categories (Cc, Cf, Cn, Co, Cs), as BertNormalizer's control-character test.
    var isOtherCategory: Bool {
        switch properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    var isNonspacingMark: Bool { properties.generalCategory == .nonspacingMark }

    var isMark: Bool {
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }

    /// The CJK ideograph blocks BERT surrounds with spaces.
    var isChineseCharacter: Bool {
        switch value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }
}
