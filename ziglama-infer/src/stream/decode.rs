//! Incremental, UTF-8-safe detokenization: token pieces in, complete characters out.
//!
//! A token's piece is a run of bytes that need not end on a character boundary: byte-level
//! BPE splits an emoji's four bytes over several tokens, SentencePiece writes rare characters
//! as byte tokens (`<0xF0>`, `<0x9F>`, ...). [`IncrementalDecoder`] shows a character only
//! once all its bytes have arrived, so a stream never shows a half character as U+FFFD.
//!
//! The rule that makes the streamed and the whole decoding agree is on
//! [`IncrementalDecoder`].

use ziglama_model::tokenizer::{TokenAttr, Tokenizer};

/// What the decoder does with control and unknown tokens (`<|im_end|>`, `<unk>`, ...).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SpecialTokens {
    /// Render them as their text, as [`Tokenizer::decode`] does.
    #[default]
    Render,
    /// Drop them, as [`Tokenizer::detokenize`] does without `unparse_special`.
    Hide,
}

/// Turns token pieces into text one token at a time, releasing only complete characters.
///
/// By default the text equals [`Tokenizer::decode_lossy`] of the tokens pushed; with
/// [`SpecialTokens::Hide`] and [`with_leading_space_stripped`](Self::with_leading_space_stripped)
/// it equals [`Tokenizer::detokenize`]`(ids, false, false)` for SentencePiece vocabularies
/// (vocabularies that clean up spaces before punctuation are not covered: that cleanup looks
/// ahead).
///
/// # The rule, and why the streamed and the whole decoding agree
///
/// The text of a token sequence is `String::from_utf8_lossy` of its concatenated pieces
/// ([`Tokenizer::decode_lossy`](ziglama_model::tokenizer::Tokenizer::decode_lossy)): valid
/// characters as they are, each maximal invalid subsequence replaced by one U+FFFD. That
/// decoding reads left to right and settles each character (or each invalid subsequence)
/// from at most four bytes, so the decoder can settle everything except a trailing sequence
/// that is still a valid beginning of a character; it holds those (at most three) bytes
/// back. When the pieces end, [`finish`](Self::finish) renders held bytes as
/// one U+FFFD, exactly as `from_utf8_lossy` renders an incomplete sequence at the end. The
/// concatenation of everything the decoder returns is therefore always the lossy decode of
/// the whole sequence, however the bytes were split into pieces.
///
/// ```
/// use ziglama_infer::stream::IncrementalDecoder;
///
/// let mut dec = IncrementalDecoder::new();
/// // "é" is C3 A9; "😀" is F0 9F 98 80. Split them across pieces.
/// assert_eq!(dec.push_bytes(b"caf\xC3"), "caf");
/// assert_eq!(dec.push_bytes(b"\xA9 \xF0\x9F"), "é ");
/// assert_eq!(dec.push_bytes(b"\x98"), "");
/// assert_eq!(dec.push_bytes(b"\x80!"), "😀!");
/// assert_eq!(dec.finish(), "");
///
/// // Bytes that can never be completed become U+FFFD, as from_utf8_lossy renders them.
/// assert_eq!(dec.push_bytes(b"a\xF0\x9F"), "a");
/// assert_eq!(dec.push_bytes(b"b"), "\u{FFFD}b");
/// assert_eq!(dec.push_bytes(b"\xE2\x82"), "");
/// assert_eq!(dec.finish(), "\u{FFFD}");
/// ```
#[derive(Clone, Debug)]
pub struct IncrementalDecoder {
    special: SpecialTokens,
    strip_leading_space: bool,
    /// Whether nothing has been pushed since creation or the last `finish`.
    at_start: bool,
    /// Bytes not yet settled: at most three, a valid beginning of a character.
    held: Vec<u8>,
    /// The text settled by the last call.
    out: String,
}

impl Default for IncrementalDecoder {
    fn default() -> IncrementalDecoder {
        IncrementalDecoder::new()
    }
}

impl IncrementalDecoder {
    /// A decoder whose text equals [`Tokenizer::decode_lossy`] of the tokens pushed.
    pub fn new() -> IncrementalDecoder {
        IncrementalDecoder {
            special: SpecialTokens::Render,
            strip_leading_space: false,
            at_start: true,
            held: Vec::new(),
            out: String::new(),
        }
    }

    /// Sets what happens to control and unknown tokens.
    ///
    /// ```
    /// use ziglama_infer::stream::{IncrementalDecoder, SpecialTokens};
    /// let dec = IncrementalDecoder::new().with_special_tokens(SpecialTokens::Hide);
    /// assert_eq!(dec.special_tokens(), SpecialTokens::Hide);
    /// ```
    pub fn with_special_tokens(mut self, special: SpecialTokens) -> IncrementalDecoder {
        self.special = special;
        self
    }

    /// Removes one space at the start of the first token's piece, as SentencePiece's
    /// detokenizer removes the space its encoder put before the text.
    ///
    /// ```
    /// use ziglama_infer::stream::IncrementalDecoder;
    /// let mut dec = IncrementalDecoder::new().with_leading_space_stripped(true);
    /// assert_eq!(dec.push_bytes(b" Hello"), "Hello");
    /// assert_eq!(dec.push_bytes(b" world"), " world");
    /// ```
    pub fn with_leading_space_stripped(mut self, strip: bool) -> IncrementalDecoder {
        self.strip_leading_space = strip;
        self
    }

    /// What happens to control and unknown tokens.
    pub fn special_tokens(&self) -> SpecialTokens {
        self.special
    }

    /// Pushes token `id`'s piece and returns the text it completes (possibly empty).
    ///
    /// An id outside the vocabulary has an empty piece.
    ///
    /// ```no_run
    /// use ziglama_infer::model::{catalog::KnownModel, gguf::GgufFile, tokenizer::Tokenizer};
    /// use ziglama_infer::stream::IncrementalDecoder;
    ///
    /// let tok = Tokenizer::from_gguf(&GgufFile::open(KnownModel::SmolLM2.ensure()?)?)?;
    /// let ids = tok.encode("I 💜 Rust", false, false)?;
    /// let mut dec = IncrementalDecoder::new();
    /// let mut text = String::new();
    /// for &id in &ids {
    ///     let piece = dec.push_token(&tok, id);
    ///     assert!(!piece.contains('\u{FFFD}'));
    ///     text.push_str(piece);
    /// }
    /// text.push_str(dec.finish());
    /// assert_eq!(text, "I 💜 Rust");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_token(&mut self, tokenizer: &Tokenizer, id: u32) -> &str {
        let hidden = self.special == SpecialTokens::Hide
            && tokenizer
                .token_attr(id)
                .intersects(TokenAttr::CONTROL | TokenAttr::UNKNOWN);
        if hidden {
            // detokenize spends its one leading-space removal on the first token even when
            // that token is hidden.
            self.at_start = false;
            self.out.clear();
            return &self.out;
        }
        self.push_bytes(tokenizer.token_to_piece(id))
    }

    /// Pushes raw piece bytes and returns the text they complete (possibly empty).
    pub fn push_bytes(&mut self, piece: &[u8]) -> &str {
        let mut piece = piece;
        if std::mem::take(&mut self.at_start) && self.strip_leading_space {
            if let Some(rest) = piece.strip_prefix(b" ") {
                piece = rest;
            }
        }
        self.out.clear();
        if self.held.is_empty() {
            let held = settle(piece, &mut self.out);
            self.held.extend_from_slice(held);
        } else {
            self.held.extend_from_slice(piece);
            let bytes = std::mem::take(&mut self.held);
            let held = settle(&bytes, &mut self.out);
            self.held.extend_from_slice(held);
        }
        &self.out
    }

    /// Ends the sequence: returns held bytes rendered as U+FFFD (or nothing), and makes the
    /// decoder ready for a new sequence.
    pub fn finish(&mut self) -> &str {
        self.out.clear();
        if !self.held.is_empty() {
            self.out.push_str(&String::from_utf8_lossy(&self.held));
            self.held.clear();
        }
        self.at_start = true;
        &self.out
    }

    /// The bytes held back, waiting for the rest of their character.
    pub fn held_bytes(&self) -> &[u8] {
        &self.held
    }
}

/// Appends to `out` everything of `bytes` that is settled and returns the rest: an
/// incomplete (but so far valid) character at the end, or nothing.
fn settle<'b>(bytes: &'b [u8], out: &mut String) -> &'b [u8] {
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                out.push_str(text);
                return &[];
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(&String::from_utf8_lossy(valid));
                match e.error_len() {
                    Some(n) => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        rest = &after[n..];
                    }
                    None => return after,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every split of a byte string into pieces decodes to its lossy decoding.
    #[test]
    fn any_split_gives_the_lossy_decoding() {
        let samples: [&[u8]; 6] = [
            "héllo wörld 😀 日本語".as_bytes(),
            b"\xF0\x9F\x98",
            b"a\xF0\x9Fb\xC3",
            b"\xFF\xFE\xC3\xA9\xE2\x82\xAC\x80",
            b"\xED\xA0\x80x",
            b"\xF4\x90\x80\x80\xE0\x80",
        ];
        for bytes in samples {
            let whole = String::from_utf8_lossy(bytes);
            // All two- and three-way splits.
            for i in 0..=bytes.len() {
                for j in i..=bytes.len() {
                    let mut dec = IncrementalDecoder::new();
                    let mut text = String::new();
                    for part in [&bytes[..i], &bytes[i..j], &bytes[j..]] {
                        let got = dec.push_bytes(part);
                        assert!(!got.contains('\u{FFFD}') || whole.contains('\u{FFFD}'));
                        text.push_str(got);
                        assert!(dec.held_bytes().len() <= 3);
                    }
                    text.push_str(dec.finish());
                    assert_eq!(text, whole, "{bytes:x?} split at {i}, {j}");
                }
            }
        }
    }

    #[test]
    fn strip_applies_to_the_first_piece_only() {
        let mut dec = IncrementalDecoder::default().with_leading_space_stripped(true);
        assert_eq!(dec.push_bytes(b" a"), "a");
        let mut dec = IncrementalDecoder::new().with_leading_space_stripped(true);
        assert_eq!(dec.push_bytes(b""), "");
        assert_eq!(dec.push_bytes(b" a"), " a");
        assert_eq!(dec.finish(), "");
        assert_eq!(dec.push_bytes(b"  b"), " b");
    }
}
