//! Pre-tokenizers: how a text is cut into words before byte-level BPE merges each word.
//!
//! Each pre-tokenizer llama.cpp knows (by the GGUF key `tokenizer.ggml.pre`) is a list of
//! splitting steps applied in order; each step cuts every piece the previous steps left
//! into smaller pieces. A step is either one of the common GPT-2 style expressions, done by
//! hand-written scanners here ([`Scanner`]), or a regular expression. Text a regular
//! expression does not match between two matches is kept as a piece of its own.
//!
//! llama.cpp runs its general regular expressions on a rewritten text: with a
//! `\p{..}` class, every non-ASCII code point becomes one stand-in character per class
//! (letter, number, punctuation, mark, symbol, other) and non-ASCII whitespace becomes
//! U+000B; without one, only non-ASCII whitespace becomes U+000B. This module does the same
//! (stand-ins U+00D0..U+00D5 here), so that `\s`, `\p{L}`, ... mean exactly what they mean
//! there.

use std::ops::Range;

use regex::Regex;

use super::unicode::{flags, Class, Flags};
use super::TokenizerError;

/// A pre-tokenizer, named as in `tokenizer.ggml.pre`.
///
/// ```
/// use ziglama_model::tokenizer::PreTokenizer;
/// let p = PreTokenizer::from_name("smollm").unwrap();
/// assert_eq!(p, PreTokenizer::Smollm);
/// assert_eq!(p.split("Hello world 123"), ["Hello", " world", " ", "1", "2", "3"]);
/// assert!(PreTokenizer::from_name("no-such-thing").is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PreTokenizer {
    /// llama.cpp's fallback when the file names none (`default`).
    Default,
    /// GPT-2's expression (`gpt-2`, `phi-2`, `jina-es`, ...; also `mpt`, `olmo`).
    Gpt2,
    /// `mpt`: GPT-2's expression.
    Mpt,
    /// `olmo`: GPT-2's expression.
    Olmo,
    /// LLaMA 3 (`llama3`, `llama-bpe`, `llama-v3`, `falcon3`, `pixtral`, ...); whole words
    /// that are tokens skip the merges.
    Llama3,
    /// `dbrx`: LLaMA 3's expression.
    Dbrx,
    /// `smaug-bpe`: LLaMA 3's expression.
    Smaug,
    /// Qwen 2 (`qwen2`, `deepseek-r1-qwen`, ...): LLaMA 3's expression with single digits.
    Qwen2,
    /// `stablelm2`: Qwen 2's expression.
    Stablelm2,
    /// `qwen35` (Qwen 3.5): Qwen 2's expression with combining marks joining letter runs.
    Qwen35,
    /// `starcoder`: single digits, then GPT-2's expression.
    Starcoder,
    /// `refact`: as StarCoder.
    Refact,
    /// `command-r`: as StarCoder.
    CommandR,
    /// `smollm` (SmolLM, SmolLM2): as StarCoder.
    Smollm,
    /// `codeshell`: as StarCoder.
    Codeshell,
    /// `falcon`: punctuation runs, GPT-2's expression, then groups of three ASCII digits.
    Falcon,
    /// `deepseek-llm`.
    DeepseekLlm,
    /// `deepseek-coder`.
    DeepseekCoder,
}

/// Names `tokenizer.ggml.pre` may have, and the pre-tokenizer each selects.
const NAMES: &[(&str, PreTokenizer)] = &[
    ("default", PreTokenizer::Default),
    ("llama3", PreTokenizer::Llama3),
    ("llama-v3", PreTokenizer::Llama3),
    ("llama-bpe", PreTokenizer::Llama3),
    ("falcon3", PreTokenizer::Llama3),
    ("falcon-h1", PreTokenizer::Llama3),
    ("pixtral", PreTokenizer::Llama3),
    ("midm-2.0", PreTokenizer::Llama3),
    ("lfm2", PreTokenizer::Llama3),
    ("jina-v5-nano", PreTokenizer::Llama3),
    ("dbrx", PreTokenizer::Dbrx),
    ("smaug-bpe", PreTokenizer::Smaug),
    ("deepseek-llm", PreTokenizer::DeepseekLlm),
    ("deepseek-coder", PreTokenizer::DeepseekCoder),
    ("falcon", PreTokenizer::Falcon),
    ("mpt", PreTokenizer::Mpt),
    ("olmo", PreTokenizer::Olmo),
    ("starcoder", PreTokenizer::Starcoder),
    ("gpt-2", PreTokenizer::Gpt2),
    ("phi-2", PreTokenizer::Gpt2),
    ("jina-es", PreTokenizer::Gpt2),
    ("jina-de", PreTokenizer::Gpt2),
    ("gigachat", PreTokenizer::Gpt2),
    ("jina-v2-es", PreTokenizer::Gpt2),
    ("jina-v2-de", PreTokenizer::Gpt2),
    ("a.x-4.0", PreTokenizer::Gpt2),
    ("mellum", PreTokenizer::Gpt2),
    ("modern-bert", PreTokenizer::Gpt2),
    ("jina-v1-en", PreTokenizer::Gpt2),
    ("jina-v2-code", PreTokenizer::Gpt2),
    ("roberta-bpe", PreTokenizer::Gpt2),
    ("refact", PreTokenizer::Refact),
    ("command-r", PreTokenizer::CommandR),
    ("qwen2", PreTokenizer::Qwen2),
    ("deepseek-r1-qwen", PreTokenizer::Qwen2),
    ("kormo", PreTokenizer::Qwen2),
    ("f2llmv2", PreTokenizer::Qwen2),
    ("stablelm2", PreTokenizer::Stablelm2),
    ("qwen35", PreTokenizer::Qwen35),
    ("smollm", PreTokenizer::Smollm),
    ("codeshell", PreTokenizer::Codeshell),
    // Names llama.cpp treats exactly as one of the above (same splits and flags).
    ("exaone", PreTokenizer::Starcoder),
    ("minerva-7b", PreTokenizer::Starcoder),
    ("mellum2", PreTokenizer::Starcoder),
    ("exaone4", PreTokenizer::Gpt2),
    ("jais", PreTokenizer::Gpt2),
    ("megrez", PreTokenizer::Stablelm2),
    ("hunyuan", PreTokenizer::Qwen2),
    ("solar-open", PreTokenizer::Qwen2),
    ("grok-2", PreTokenizer::Qwen2),
];

impl PreTokenizer {
    /// The pre-tokenizer `tokenizer.ggml.pre` names, if ziglama implements it. Names that
    /// llama.cpp handles exactly like another one map to that one (`exaone` to
    /// [`Starcoder`](Self::Starcoder), `grok-2` to [`Qwen2`](Self::Qwen2), ...).
    ///
    /// ```
    /// # use ziglama_model::tokenizer::PreTokenizer;
    /// assert_eq!(PreTokenizer::from_name("llama-bpe"), Some(PreTokenizer::Llama3));
    /// assert_eq!(PreTokenizer::from_name("grok-2"), Some(PreTokenizer::Qwen2));
    /// ```
    pub fn from_name(name: &str) -> Option<PreTokenizer> {
        NAMES.iter().find(|(n, _)| *n == name).map(|&(_, p)| p)
    }

    /// Every name [`from_name`](Self::from_name) accepts.
    ///
    /// ```
    /// # use ziglama_model::tokenizer::PreTokenizer;
    /// assert!(PreTokenizer::names().any(|n| n == "llama-bpe"));
    /// ```
    pub fn names() -> impl Iterator<Item = &'static str> {
        NAMES.iter().map(|(n, _)| *n)
    }

    /// Whether a word that is itself a token is emitted whole, without merges
    /// (llama.cpp's `ignore_merges`).
    pub fn ignores_merges(self) -> bool {
        self == PreTokenizer::Llama3
    }

    /// Whether llama.cpp adds BOS by default for this pre-tokenizer (before
    /// `tokenizer.ggml.add_bos_token` is read).
    pub fn adds_bos_by_default(self) -> bool {
        self == PreTokenizer::Llama3
    }

    /// Whether llama.cpp cleans spaces before punctuation when detokenizing
    /// (`clean_up_tokenization_spaces`).
    pub fn cleans_spaces(self) -> bool {
        !matches!(
            self,
            PreTokenizer::DeepseekLlm
                | PreTokenizer::DeepseekCoder
                | PreTokenizer::CommandR
                | PreTokenizer::Qwen2
                | PreTokenizer::Qwen35
                | PreTokenizer::Smollm
        )
    }

    /// Cuts `text` into words, in order; the words concatenate to `text`.
    ///
    /// This builds the splitting steps on every call; [`Tokenizer`](super::Tokenizer) builds
    /// them once.
    pub fn split(self, text: &str) -> Vec<&str> {
        match Splitter::new(self) {
            Ok(s) => s.split(text).into_iter().map(|r| &text[r]).collect(),
            Err(_) => vec![text],
        }
    }
}

/// The hand-written scanners for the common expressions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scanner {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    Gpt2,
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}|
    /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+` with `D` digits at most;
    /// with `marks`, `[\p{L}\p{M}]` wherever `\p{L}` stands (and `\p{M}` excluded from the
    /// punctuation run).
    Llama3 { max_digits: usize, marks: bool },
}

/// How a regular-expression step sees the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    /// Non-ASCII code points replaced by class stand-ins (for expressions with `\p{..}`).
    Collapsed,
    /// Code points as they are, non-ASCII whitespace replaced by U+000B.
    Wide,
}

#[derive(Clone, Debug)]
enum Step {
    Scan(Scanner),
    Regex(Regex, View),
}

// Character classes of the collapsed view, as llama.cpp rewrites `\p{..}` and `\s`.
const WS: &str = r"\t\n\x0B\x0C\r ";
const CN: &str = r"\x{D1}0-9";
const CL: &str = r"\x{D2}A-Za-z";
const CP: &str = r"\x{D3}\x{21}-\x{23}\x{25}-\x{2A}\x{2C}-\x{2F}\x{3A}-\x{3B}\x{3F}-\x{40}\x{5B}-\x{5D}\x{5F}\x{7B}\x{7D}";
const DEEPSEEK_LETTERS: &str = "A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃";
const CJK_HANGUL: &str = "[一-龥ࠀ-一가-\u{D7FF}]+";

/// The compiled steps of one pre-tokenizer.
#[derive(Clone, Debug)]
pub(crate) struct Splitter {
    steps: Vec<Step>,
}

fn re(pattern: &str, view: View) -> Result<Step, TokenizerError> {
    Regex::new(pattern)
        .map(|r| Step::Regex(r, view))
        .map_err(|e| TokenizerError::InvalidPattern {
            pattern: pattern.to_string(),
            message: e.to_string(),
        })
}

impl Splitter {
    pub(crate) fn new(pre: PreTokenizer) -> Result<Splitter, TokenizerError> {
        use PreTokenizer as P;
        use View::{Collapsed as C, Wide as W};
        let gpt2 = Step::Scan(Scanner::Gpt2);
        let steps = match pre {
            P::Gpt2 | P::Mpt | P::Olmo => vec![gpt2],
            P::Llama3 | P::Dbrx | P::Smaug => vec![Step::Scan(Scanner::Llama3 {
                max_digits: 3,
                marks: false,
            })],
            P::Qwen2 | P::Stablelm2 => vec![Step::Scan(Scanner::Llama3 {
                max_digits: 1,
                marks: false,
            })],
            P::Qwen35 => vec![Step::Scan(Scanner::Llama3 {
                max_digits: 1,
                marks: true,
            })],
            P::Starcoder | P::Refact | P::CommandR | P::Smollm | P::Codeshell => {
                vec![re(&format!("[{CN}]"), C)?, gpt2]
            }
            P::Falcon => vec![
                re(
                    &format!(
                        r"[{CP}\x{{24}}\x{{2B}}\x{{3C}}-\x{{3E}}\x{{5E}}\x{{7E}}\x{{7C}}\x{{60}}]+"
                    ),
                    C,
                )?,
                gpt2,
                re("[0-9][0-9][0-9]", W)?,
            ],
            P::Default => vec![
                re(
                    &format!(r"[{CP}\x{{24}}\x{{2B}}\x{{3C}}-\x{{3E}}\x{{5E}}\x{{7E}}\x{{7C}}]+"),
                    C,
                )?,
                gpt2,
                re(&format!("[{CN}]+"), C)?,
                re("[0-9][0-9][0-9]", W)?,
            ],
            P::DeepseekLlm => vec![
                re(r"[\r\n]", W)?,
                re(&format!("[{WS}]?[{DEEPSEEK_LETTERS}]+"), W)?,
                re(&format!("[{WS}]?[!-/:-~！-／：-～‘-‟\u{3000}-。]+"), W)?,
                re(&format!("[{WS}]+$"), W)?,
                re(CJK_HANGUL, W)?,
                re(&format!("[{CN}]+"), C)?,
            ],
            P::DeepseekCoder => vec![
                re(r"[\r\n]", W)?,
                re(&format!("[{WS}]?[{CL}]+"), C)?,
                re(&format!("[{WS}]?[{CP}]+"), C)?,
                re(CJK_HANGUL, W)?,
                re(&format!("[{CN}]"), C)?,
            ],
        };
        Ok(Splitter { steps })
    }

    /// Cuts `text` into words, returned as byte ranges of `text`.
    pub(crate) fn split(&self, text: &str) -> Vec<Range<usize>> {
        if text.is_empty() {
            return Vec::new();
        }
        let chars: Vec<char> = text.chars().collect();
        let fl: Vec<Flags> = chars.iter().map(|&c| flags(c)).collect();
        let mut views: [Option<(String, Vec<usize>)>; 2] = [None, None];
        let mut pieces: Vec<Range<usize>> = std::iter::once(0..chars.len()).collect();
        for step in &self.steps {
            let mut out = Vec::with_capacity(pieces.len() * 2);
            match step {
                Step::Scan(scanner) => {
                    for p in &pieces {
                        let s = Scan {
                            chars: &chars,
                            flags: &fl,
                            start: p.start,
                            end: p.end,
                        };
                        match *scanner {
                            Scanner::Gpt2 => s.gpt2(&mut out),
                            Scanner::Llama3 { max_digits, marks } => {
                                s.llama3(max_digits, marks, &mut out)
                            }
                        }
                    }
                }
                Step::Regex(regex, view) => {
                    let slot = match view {
                        View::Collapsed => 0,
                        View::Wide => 1,
                    };
                    let (view_text, offsets) =
                        views[slot].get_or_insert_with(|| build_view(&chars, &fl, *view));
                    for p in &pieces {
                        regex_split(regex, view_text, offsets, p.clone(), &mut out);
                    }
                }
            }
            pieces = out;
        }
        // Code point indices to byte offsets.
        let mut byte_at = Vec::with_capacity(chars.len() + 1);
        let mut b = 0;
        for c in &chars {
            byte_at.push(b);
            b += c.len_utf8();
        }
        byte_at.push(b);
        pieces
            .into_iter()
            .map(|p| byte_at[p.start]..byte_at[p.end])
            .collect()
    }
}

/// The text a regular-expression step runs on, and the byte offset of each code point in it
/// (one more at the end).
fn build_view(chars: &[char], fl: &[Flags], view: View) -> (String, Vec<usize>) {
    let mut s = String::with_capacity(chars.len() * 2);
    let mut offsets = Vec::with_capacity(chars.len() + 1);
    for (&c, f) in chars.iter().zip(fl) {
        offsets.push(s.len());
        let v = if c.is_ascii() {
            c
        } else if f.whitespace {
            '\u{0B}'
        } else if view == View::Wide {
            c
        } else {
            match f.class {
                Class::Number => '\u{D1}',
                Class::Letter => '\u{D2}',
                Class::Punctuation => '\u{D3}',
                Class::Mark => '\u{D4}',
                Class::Symbol => '\u{D5}',
                _ => '\u{D0}',
            }
        };
        s.push(v);
    }
    offsets.push(s.len());
    (s, offsets)
}

/// Splits the code points `piece` by the matches of `regex` (and the gaps between them).
fn regex_split(
    regex: &Regex,
    view: &str,
    offsets: &[usize],
    piece: Range<usize>,
    out: &mut Vec<Range<usize>>,
) {
    let base = offsets[piece.start];
    let hay = &view[base..offsets[piece.end]];
    let local = &offsets[piece.start..=piece.end];
    // Byte offset (relative to `hay`) to code point index.
    let to_cp =
        |byte: usize| -> usize { piece.start + local.partition_point(|&o| o - base < byte) };
    let mut last = piece.start;
    for m in regex.find_iter(hay) {
        if m.start() == m.end() {
            continue;
        }
        let (s, e) = (to_cp(m.start()), to_cp(m.end()));
        if s > last {
            out.push(last..s);
        }
        out.push(s..e);
        last = e;
    }
    if last < piece.end {
        out.push(last..piece.end);
    }
}

/// One piece being scanned: code points `start..end` of the text.
struct Scan<'a> {
    chars: &'a [char],
    flags: &'a [Flags],
    start: usize,
    end: usize,
}

impl Scan<'_> {
    fn flags_at(&self, pos: usize) -> Option<Flags> {
        (pos >= self.start && pos < self.end).then(|| self.flags[pos])
    }
    fn char_at(&self, pos: usize) -> Option<char> {
        (pos >= self.start && pos < self.end).then(|| self.chars[pos])
    }
    fn is(&self, pos: usize, f: impl Fn(Flags) -> bool) -> bool {
        self.flags_at(pos).is_some_and(f)
    }

    /// The length of a contraction (`'s`, `'ll`, ...) at `pos`, 0 if none.
    fn contraction(&self, pos: usize, ignore_case: bool) -> usize {
        if self.char_at(pos) != Some('\'') {
            return 0;
        }
        let lower = |c: Option<char>| {
            c.map(|c| {
                if ignore_case {
                    c.to_ascii_lowercase()
                } else {
                    c
                }
            })
        };
        let c1 = lower(self.char_at(pos + 1));
        if matches!(c1, Some('s' | 't' | 'm' | 'd')) {
            return 2;
        }
        let c2 = lower(self.char_at(pos + 2));
        match (c1, c2) {
            (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l')) => 3,
            _ => 0,
        }
    }

    /// Whitespace at `pos`: the length of the run, and the end of its last `\r` or `\n`.
    fn whitespace_run(&self, pos: usize) -> (usize, Option<usize>) {
        let mut n = 0;
        let mut last_newline_end = None;
        while self.is(pos + n, |f| f.whitespace) {
            if matches!(self.chars[pos + n], '\r' | '\n') {
                last_newline_end = Some(pos + n + 1);
            }
            n += 1;
        }
        (n, last_newline_end)
    }

    /// `\s+(?!\S)|\s+` at `pos` (which starts a run of `n` whitespace), or one code point.
    fn whitespace_end(&self, pos: usize, n: usize) -> usize {
        if n > 1 && pos + n < self.end {
            pos + n - 1
        } else if n > 0 {
            pos + n
        } else {
            pos + 1
        }
    }

    fn gpt2(&self, out: &mut Vec<Range<usize>>) {
        let other = |f: Flags| !(f.whitespace || f.is_letter() || f.is_number());
        let mut pos = self.start;
        while pos < self.end {
            let c = self.chars[pos];
            let k = self.contraction(pos, false);
            let end = if k > 0 {
                pos + k
            } else {
                let run = if c == ' ' { pos + 1 } else { pos };
                match self.flags_at(run) {
                    Some(f) if f.is_letter() => self.run_end(run, Flags::is_letter),
                    Some(f) if f.is_number() => self.run_end(run, Flags::is_number),
                    Some(f) if other(f) => self.run_end(run, other),
                    _ => self.whitespace_end(pos, self.whitespace_run(pos).0),
                }
            };
            out.push(pos..end);
            pos = end;
        }
    }

    fn llama3(&self, max_digits: usize, marks: bool, out: &mut Vec<Range<usize>>) {
        let wordy = |f: Flags| f.is_letter() || (marks && f.class == Class::Mark);
        let other = |f: Flags| !(f.whitespace || wordy(f) || f.is_number());
        let mut pos = self.start;
        while pos < self.end {
            let c = self.chars[pos];
            let f = self.flags[pos];
            let k = self.contraction(pos, true);
            if k > 0 {
                out.push(pos..pos + k);
                pos += k;
                continue;
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+ (with marks: [\p{L}\p{M}]+)
            if !(c == '\r' || c == '\n' || f.is_number()) && (wordy(f) || self.is(pos + 1, wordy)) {
                let end = self.run_end(pos + 1, wordy);
                out.push(pos..end);
                pos = end;
                continue;
            }
            // \p{N}{1,max_digits}
            if f.is_number() {
                let end = self.run_end(pos, Flags::is_number);
                while pos < end {
                    let e = (pos + max_digits).min(end);
                    out.push(pos..e);
                    pos = e;
                }
                continue;
            }
            // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
            let run = if c == ' ' { pos + 1 } else { pos };
            if self.flags_at(run).is_none_or(other) {
                let mut end = self.run_end(run, other);
                while matches!(self.char_at(end), Some('\r' | '\n')) {
                    end += 1;
                }
                out.push(pos..end);
                pos = end;
                continue;
            }
            // \s*[\r\n]+|\s+(?!\S)|\s+
            let (n, newline_end) = self.whitespace_run(pos);
            let end = newline_end.unwrap_or_else(|| self.whitespace_end(pos, n));
            out.push(pos..end);
            pos = end;
        }
    }

    /// The end of the run of code points from `pos` that satisfy `f`.
    fn run_end(&self, mut pos: usize, f: impl Fn(Flags) -> bool) -> usize {
        while self.is(pos, &f) {
            pos += 1;
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_splits_like_its_expression() {
        let p = PreTokenizer::Gpt2;
        assert_eq!(
            p.split("Hello, y'all! How're you?"),
            ["Hello", ",", " y", "'", "all", "!", " How", "'re", " you", "?"]
        );
        assert_eq!(p.split("a   b  "), ["a", "  ", " b", "  "]);
        assert_eq!(p.split("x\n\ny"), ["x", "\n", "\n", "y"]);
        assert_eq!(p.split("3.14"), ["3", ".", "14"]);
    }

    #[test]
    fn llama3_groups_digits_and_newlines() {
        let p = PreTokenizer::Llama3;
        assert_eq!(p.split("1234567"), ["123", "456", "7"]);
        assert_eq!(
            p.split("I'M here\n\n  x"),
            ["I", "'M", " here", "\n\n", " ", " x"]
        );
        assert_eq!(p.split("!!\n\nok"), ["!!\n\n", "ok"]);
        assert_eq!(PreTokenizer::Qwen2.split("123"), ["1", "2", "3"]);
    }

    #[test]
    fn regex_steps_keep_gaps() {
        assert_eq!(
            PreTokenizer::Falcon.split("a+=1234"),
            ["a", "+=", "123", "4"]
        );
        assert_eq!(
            PreTokenizer::DeepseekCoder.split("ab 12\n"),
            ["ab", " ", "1", "2", "\n"]
        );
    }
}
