//! Character classes the pre-tokenizers split by, and GPT-2's byte-to-character mapping.
//!
//! llama.cpp classifies code points by their Unicode general category (Unicode 15.1, folded
//! into letter, number, mark, punctuation, symbol, separator, control and undefined) plus the
//! Unicode `White_Space` property. The categories here come from the
//! `unicode-general-category` crate (Unicode 15.0) with the 627 code points Unicode 15.1
//! added, so that every code point falls in the same class as in llama.cpp (checked against
//! llama.cpp's table for all 1,112,064 scalar values).

use unicode_general_category::{get_general_category, GeneralCategory as G};

/// The class of a code point, as the pre-tokenizer regular expressions see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// `\p{L}`.
    Letter,
    /// `\p{N}`.
    Number,
    /// `\p{M}`.
    Mark,
    /// `\p{P}`.
    Punctuation,
    /// `\p{S}`.
    Symbol,
    /// `\p{Z}`.
    Separator,
    /// `\p{C}` without unassigned code points.
    Control,
    /// Unassigned.
    Undefined,
}

/// Class and `White_Space` of one code point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Flags {
    pub(crate) class: Class,
    pub(crate) whitespace: bool,
}

impl Flags {
    pub(crate) fn is_letter(self) -> bool {
        self.class == Class::Letter
    }
    pub(crate) fn is_number(self) -> bool {
        self.class == Class::Number
    }
}

/// The Unicode `White_Space` property.
pub(crate) fn is_whitespace(c: char) -> bool {
    matches!(
        c as u32,
        0x09..=0x0D
            | 0x20
            | 0x85
            | 0xA0
            | 0x1680
            | 0x2000..=0x200A
            | 0x2028
            | 0x2029
            | 0x202F
            | 0x205F
            | 0x3000
    )
}

fn class_of(c: char) -> Class {
    let cp = c as u32;
    // Added in Unicode 15.1 (the crate knows 15.0): CJK Extension I, four ideographic
    // description characters and one CJK stroke.
    if (0x2EBF0..=0x2EE5D).contains(&cp) {
        return Class::Letter;
    }
    if (0x2FFC..=0x2FFF).contains(&cp) || cp == 0x31EF {
        return Class::Symbol;
    }
    match get_general_category(c) {
        G::UppercaseLetter
        | G::LowercaseLetter
        | G::TitlecaseLetter
        | G::ModifierLetter
        | G::OtherLetter => Class::Letter,
        G::DecimalNumber | G::LetterNumber | G::OtherNumber => Class::Number,
        G::NonspacingMark | G::SpacingMark | G::EnclosingMark => Class::Mark,
        G::ConnectorPunctuation
        | G::DashPunctuation
        | G::OpenPunctuation
        | G::ClosePunctuation
        | G::InitialPunctuation
        | G::FinalPunctuation
        | G::OtherPunctuation => Class::Punctuation,
        G::MathSymbol | G::CurrencySymbol | G::ModifierSymbol | G::OtherSymbol => Class::Symbol,
        G::SpaceSeparator | G::LineSeparator | G::ParagraphSeparator => Class::Separator,
        G::Control | G::Format | G::PrivateUse | G::Surrogate => Class::Control,
        G::Unassigned => Class::Undefined,
    }
}

/// The flags of `c`.
pub(crate) fn flags(c: char) -> Flags {
    Flags {
        class: class_of(c),
        whitespace: is_whitespace(c),
    }
}

/// The character GPT-2's byte-level encoding writes for each byte: printable Latin-1
/// characters stand for themselves, the 68 others map to U+0100.. in byte order.
pub(crate) fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 0x100u32;
    for b in 0..=255u8 {
        let printable = matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
        table[b as usize] = if printable {
            char::from(b)
        } else {
            let c = char::from_u32(next).unwrap_or('\u{FFFD}');
            next += 1;
            c
        };
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_of_some_code_points() {
        assert_eq!(flags('a').class, Class::Letter);
        assert_eq!(flags('Я').class, Class::Letter);
        assert_eq!(flags('٣').class, Class::Number);
        assert_eq!(flags('½').class, Class::Number);
        assert_eq!(flags('\u{301}').class, Class::Mark);
        assert_eq!(flags('!').class, Class::Punctuation);
        assert_eq!(flags('$').class, Class::Symbol);
        assert_eq!(flags('🦙').class, Class::Symbol);
        assert_eq!(flags('\u{200D}').class, Class::Control);
        assert_eq!(flags('\u{2EBF0}').class, Class::Letter);
        assert_eq!(flags('\u{1C89}').class, Class::Undefined); // Unicode 16
        assert!(flags('\u{3000}').whitespace && flags('\u{85}').whitespace);
        assert!(!flags('\u{200B}').whitespace);
    }

    #[test]
    fn byte_table_is_a_bijection() {
        let t = byte_to_char_table();
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'a' as usize], 'a');
        let mut seen: Vec<char> = t.to_vec();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 256);
    }
}
