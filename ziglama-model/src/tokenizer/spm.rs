//! SentencePiece tokenization (GGUF `tokenizer.ggml.model` = `llama`), as llama.cpp runs it.
//!
//! The text (with a leading space when the tokenizer adds one) has its spaces escaped to
//! U+2581 and is cut into UTF-8 characters. Adjacent pairs whose concatenation is a token are
//! merged, the pair of highest score first (the leftmost among equal scores), until no pair
//! forms a token. A final piece that is not a token is written as byte tokens (`<0xNN>`).

use std::collections::{BinaryHeap, HashMap};

/// The escaped space, U+2581 (`▁`).
const SPACE: &str = "\u{2581}";

/// A SentencePiece model: token ids by text, scores and byte tokens.
#[derive(Clone, Debug)]
pub(crate) struct SpmModel {
    by_text: HashMap<Box<[u8]>, u32>,
    scores: Vec<f32>,
    /// The token of each byte value (`<0xNN>`, else the byte itself as text).
    byte_tokens: Box<[Option<u32>]>,
    unk: Option<u32>,
    add_space_prefix: bool,
}

/// A candidate merge of the symbols `left` and `right` (adjacent), `size` bytes long.
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// Higher score first; among equal scores the leftmost first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
            .then_with(|| other.size.cmp(&self.size))
    }
}

/// One symbol during merging: a byte range of the escaped text, linked to its neighbours.
#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

impl SpmModel {
    /// Builds the model from the token texts, their scores (0 where absent) and the unknown
    /// token.
    pub(crate) fn new(
        texts: &[Box<[u8]>],
        scores: Option<&[f32]>,
        unk: Option<u32>,
        add_space_prefix: bool,
    ) -> SpmModel {
        let mut by_text = HashMap::with_capacity(texts.len());
        for (i, t) in texts.iter().enumerate() {
            by_text.insert(t.clone(), i as u32);
        }
        let scores = (0..texts.len())
            .map(|i| scores.and_then(|s| s.get(i)).copied().unwrap_or(0.0))
            .collect();
        let mut byte_tokens = vec![None; 256].into_boxed_slice();
        for (b, slot) in byte_tokens.iter_mut().enumerate() {
            let hex = format!("<0x{b:02X}>");
            *slot = by_text
                .get(hex.as_bytes())
                .or_else(|| by_text.get(&[b as u8][..]))
                .copied();
        }
        SpmModel {
            by_text,
            scores,
            byte_tokens,
            unk,
            add_space_prefix,
        }
    }

    /// Whether a space is put before text that starts the input or follows a special token.
    pub(crate) fn add_space_prefix(&self) -> bool {
        self.add_space_prefix
    }

    /// The text of a token as it decodes: U+2581 back to spaces.
    pub(crate) fn decode_text(text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        let sp = SPACE.as_bytes();
        let mut i = 0;
        while i < text.len() {
            if text[i..].starts_with(sp) {
                out.push(b' ');
                i += sp.len();
            } else {
                out.push(text[i]);
                i += 1;
            }
        }
        out
    }

    /// Encodes one fragment of raw text, with a space before it when `prefix_space`.
    pub(crate) fn encode(&self, text: &str, prefix_space: bool, out: &mut Vec<u32>) {
        let mut s = String::with_capacity(text.len() * 2 + 3);
        if prefix_space {
            s.push_str(SPACE);
        }
        for c in text.chars() {
            if c == ' ' {
                s.push_str(SPACE);
            } else {
                s.push(c);
            }
        }
        if s.is_empty() {
            return;
        }
        let bytes = s.as_bytes();
        let mut symbols: Vec<Symbol> = Vec::with_capacity(s.len());
        for (start, c) in s.char_indices() {
            let i = symbols.len();
            symbols.push(Symbol {
                start,
                len: c.len_utf8(),
                prev: i.checked_sub(1),
                next: None,
            });
            if i > 0 {
                symbols[i - 1].next = Some(i);
            }
        }

        let mut queue = BinaryHeap::new();
        let try_add = |queue: &mut BinaryHeap<Bigram>, symbols: &[Symbol], l: usize, r: usize| {
            let (a, b) = (symbols[l], symbols[r]);
            let size = a.len + b.len;
            if let Some(&id) = self.by_text.get(&bytes[a.start..a.start + size]) {
                queue.push(Bigram {
                    score: self.scores.get(id as usize).copied().unwrap_or(0.0),
                    left: l,
                    right: r,
                    size,
                });
            }
        };
        for i in 1..symbols.len() {
            try_add(&mut queue, &symbols, i - 1, i);
        }
        while let Some(bg) = queue.pop() {
            let (l, r) = (symbols[bg.left], symbols[bg.right]);
            if l.len == 0 || r.len == 0 || l.len + r.len != bg.size {
                continue;
            }
            symbols[bg.left].len += r.len;
            symbols[bg.right].len = 0;
            symbols[bg.left].next = r.next;
            if let Some(n) = r.next {
                symbols[n].prev = Some(bg.left);
            }
            if let Some(p) = symbols[bg.left].prev {
                try_add(&mut queue, &symbols, p, bg.left);
            }
            if let Some(n) = symbols[bg.left].next {
                try_add(&mut queue, &symbols, bg.left, n);
            }
        }

        // Every merged symbol is a token; a symbol left alone either is one or becomes bytes.
        let mut at = Some(0);
        while let Some(i) = at {
            let sym = symbols[i];
            let piece = &bytes[sym.start..sym.start + sym.len];
            if let Some(&id) = self.by_text.get(piece) {
                out.push(id);
            } else {
                for &b in piece {
                    if let Some(id) = self
                        .byte_tokens
                        .get(b as usize)
                        .copied()
                        .flatten()
                        .or(self.unk)
                    {
                        out.push(id);
                    }
                }
            }
            at = sym.next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(scores: &[f32]) -> SpmModel {
        let texts: Vec<Box<[u8]>> = ["<unk>", "▁", "a", "b", "▁a", "ab", "▁ab", "<0x21>"]
            .iter()
            .map(|t| t.as_bytes().into())
            .collect();
        SpmModel::new(&texts, Some(scores), Some(0), true)
    }

    #[test]
    fn merges_by_score_and_falls_back_to_bytes() {
        let mut out = Vec::new();
        // "▁a" outscores "ab": ▁a, then ▁ab; "!" is no token and becomes <0x21>.
        model(&[0.0, -1.0, -1.0, -1.0, -2.0, -3.0, -4.0, 0.0]).encode("ab!", true, &mut out);
        assert_eq!(out, [6, 7]);
        // No pair of "ba" is a token.
        out.clear();
        model(&[0.0, -1.0, -1.0, -1.0, -3.0, -2.0, -4.0, 0.0]).encode("ba", false, &mut out);
        assert_eq!(out, [3, 2]);
        // A character with no token and no byte token becomes the unknown token per byte.
        out.clear();
        model(&[0.0; 8]).encode("é", false, &mut out);
        assert_eq!(out, [0, 0]);
        assert_eq!(SpmModel::decode_text("▁a▁b".as_bytes()), b" a b");
    }
}
