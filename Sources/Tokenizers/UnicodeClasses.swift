/// Character classes with the meanings the `tokenizers` library gives them (Rust `char` methods, the
/// `unicode_categories` and `unicode-normalization-alignments` crates, the `regex` crate's `\w`, Oniguruma's `\s`,
/// `\p{L}`, `\p{N}`).
///
/// Each of those carries tables of its own Unicode version, older than Swift's stdlib (Unicode 17 in Swift 6.3), so
/// a class is Swift's property restricted to the scalars assigned by the crate's version (`Properties.age`), plus
/// the few scalars whose category changed since then, listed explicitly. Scalars newer than a crate's tables are
/// unassigned there: not letters, not marks, not controls; the normalizers leave them alone. The Rust standard
/// library's own methods (`is_whitespace`, `is_numeric`, `to_lowercase`) follow current Unicode, as Swift does.
/// `UnicodeClassParityTests` checks every code point against Fixtures/unicode_classes.json, written by the library.
enum LibraryUnicode {
    /// `unicode_categories` 0.1: BertNormalizer's control and nonspacing-mark tests, BERT and Punctuation
    /// pre-tokenizers' punctuation.
    static let categories = (major: 8, minor: 0)
    /// `unicode-normalization-alignments` 0.1: NFC, NFD, NFKC, NFKD and StripAccents' combining marks.
    static let normalization = (major: 9, minor: 0)
    /// Oniguruma (split regexes' `\p{L}`, `\p{N}`) and the `regex` crate (`\w`: Whitespace pre-tokenizer,
    /// single-word added tokens).
    static let regex = (major: 16, minor: 0)
}

extension Unicode.Scalar {
    /// Whether the scalar was assigned in Unicode `version` or earlier.
    @inline(__always) func isAssigned(by version: (major: Int, minor: Int)) -> Bool {
        // Every scalar below U+0378 was assigned by Unicode 5.1, older than any table the library uses.
        if value < 0x378 { return true }
        guard let age = properties.age else { return false }
        return age.major < version.major || (age.major == version.major && age.minor <= version.minor)
    }

    /// Rust `char::is_whitespace`, regex `\s`: the White_Space property.
    @inline(__always) var isWhitespace: Bool {
        if value < 0x80 { return value == 0x20 || (value >= 0x09 && value <= 0x0D) }
        return properties.isWhitespace
    }

    /// Oniguruma's `\p{L}`.
    @inline(__always) var isLetter: Bool {
        if value < 0x80 { return (value | 0x20) >= 0x61 && (value | 0x20) <= 0x7A }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return isAssigned(by: LibraryUnicode.regex)
        default: return false
        }
    }

    /// Oniguruma's `\p{N}`.
    @inline(__always) var isNumber: Bool {
        if value < 0x80 { return value >= 0x30 && value <= 0x39 }
        return isNumeric && isAssigned(by: LibraryUnicode.regex)
    }

    /// Rust `char::is_numeric` (the Digits pre-tokenizer): Nd, Nl, No of current Unicode.
    @inline(__always) var isNumeric: Bool {
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
        if p.isAlphabetic || p.isJoinControl { return isAssigned(by: LibraryUnicode.regex) }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return isAssigned(by: LibraryUnicode.regex)
        default: return false
        }
    }

    /// `unicode_categories`' `is_punctuation` (P*, Unicode 8.0).
    var isPunctuationCategory: Bool {
        switch value {
        case 0x166D, 0x111C9: return true  // Po in Unicode 8.0; now So and Mn
        default: break
        }
        switch properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation: return isAssigned(by: LibraryUnicode.categories)
        default: return false
        }
    }

    /// BERT's punctuation: ASCII punctuation or `is_punctuation`.
    var isBertPunctuation: Bool {
        if value < 0x80 {
            return (0x21...0x2F).contains(value) || (0x3A...0x40).contains(value) || (0x5B...0x60).contains(value)
                || (0x7B...0x7E).contains(value)
        }
        return isPunctuationCategory
    }

    /// `unicode_categories`' `is_other`, BertNormalizer's control-character test: Cc, Cf and Co of Unicode 8.0.
    /// Unassigned code points (Cn: noncharacters such as U+FDD0 and U+FFFE, U+0378, U+E0080) are not in its
    /// tables, so BERT keeps them.
    var isOtherCategory: Bool {
        if value < 0x80 { return value < 0x20 || value == 0x7F }
        switch properties.generalCategory {
        case .control, .format, .privateUse: return isAssigned(by: LibraryUnicode.categories)
        default: return false
        }
    }

    /// `unicode_categories`' `is_mark_nonspacing` (Mn, Unicode 8.0): what BertNormalizer's accent stripping drops.
    var isNonspacingMark: Bool {
        if value < 0x300 { return false }
        switch value {
        case 0x1734, 0x1171E: return true  // Mn in Unicode 8.0; now Mc
        case 0x1885, 0x1886, 0xA9BD, 0x111C9: return false  // Lo, Lo, Mc, Po in Unicode 8.0; now Mn
        default: break
        }
        return properties.generalCategory == .nonspacingMark && isAssigned(by: LibraryUnicode.categories)
    }

    /// `unicode-normalization-alignments`' `is_combining_mark` (M*, Unicode 9.0): what StripAccents drops.
    var isMark: Bool {
        if value < 0x300 { return false }
        switch value {
        case 0x1CF2, 0x1CF3: return true  // Mc in Unicode 9.0; now Lo
        case 0x111C9: return false  // Po in Unicode 9.0; now Mn
        default: break
        }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return isAssigned(by: LibraryUnicode.normalization)
        default: return false
        }
    }

    /// Whether the normalization tables know the scalar; newer scalars pass through NFC/NFD/NFKC/NFKD unchanged
    /// (no decomposition, no composition, combining class 0).
    @inline(__always) var isInNormalizationTables: Bool {
        value < 0x378 || properties.age == nil || isAssigned(by: LibraryUnicode.normalization)
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
