//! Byte-level BPE (GPT-2 style): each pre-tokenized word is written in GPT-2's byte alphabet,
//! cut into characters, and pairs of neighbours are merged, lowest merge rank first (the
//! leftmost pair among equal ranks), until no pair has a rank.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::pretokenize::{PreTokenizer, Splitter};
use super::unicode::byte_to_char_table;
use super::TokenizerError;

/// The byte-level BPE model: merge ranks over interned strings, and the pre-tokenizer.
#[derive(Clone, Debug)]
pub(crate) struct BpeModel {
    pre: PreTokenizer,
    splitter: Splitter,
    /// Interned strings: every token text, every merge's two sides and their concatenation.
    piece_id: HashMap<Box<[u8]>, u32>,
    piece_text: Vec<Box<[u8]>>,
    /// The token each piece is, if it is one (the last id for duplicated texts, as llama.cpp).
    piece_token: Vec<Option<u32>>,
    /// (left, right) -> (rank, merged piece).
    merges: HashMap<(u32, u32), (u32, u32)>,
    byte_char: [char; 256],
    /// The inverse of `byte_char`, indexed by code point.
    char_byte: Vec<Option<u8>>,
}

/// A pair that may merge: (rank, left, right, left piece, right piece), smallest first.
type Candidate = (u32, u32, u32, u32, u32);

#[derive(Clone, Copy, Debug)]
struct Symbol {
    /// The interned piece of this symbol's text, if the text is interned.
    piece: Option<u32>,
    start: u32,
    end: u32,
    prev: Option<u32>,
    next: Option<u32>,
    alive: bool,
}

impl BpeModel {
    /// Builds the model from the token texts (`tokenizer.ggml.tokens`, empty ones already
    /// replaced) and the merges (`tokenizer.ggml.merges`, "left right" each).
    pub(crate) fn new<'a>(
        pre: PreTokenizer,
        tokens: &[Box<[u8]>],
        merges: impl Iterator<Item = &'a [u8]>,
    ) -> Result<BpeModel, TokenizerError> {
        let mut m = BpeModel {
            pre,
            splitter: Splitter::new(pre)?,
            piece_id: HashMap::with_capacity(tokens.len() * 2),
            piece_text: Vec::with_capacity(tokens.len() * 2),
            piece_token: Vec::with_capacity(tokens.len() * 2),
            merges: HashMap::new(),
            byte_char: byte_to_char_table(),
            char_byte: Vec::new(),
        };
        let max = m.byte_char.iter().map(|&c| c as usize).max().unwrap_or(0);
        m.char_byte = vec![None; max + 1];
        for (b, &c) in m.byte_char.iter().enumerate() {
            m.char_byte[c as usize] = Some(b as u8);
        }
        for (id, text) in tokens.iter().enumerate() {
            let p = m.intern(text);
            m.piece_token[p as usize] = Some(id as u32);
        }
        for (rank, line) in merges.enumerate() {
            // llama.cpp splits at the first space after the first byte; a line without one
            // is the pair ("", ""), which never matches.
            let Some(pos) = line.iter().skip(1).position(|&b| b == b' ').map(|p| p + 1) else {
                continue;
            };
            let (left, right) = (&line[..pos], &line[pos + 1..]);
            let l = m.intern(left);
            let r = m.intern(right);
            let merged = m.intern(&[left, right].concat());
            // The first rank of a pair listed twice wins.
            m.merges.entry((l, r)).or_insert((rank as u32, merged));
        }
        Ok(m)
    }

    fn intern(&mut self, text: &[u8]) -> u32 {
        if let Some(&p) = self.piece_id.get(text) {
            return p;
        }
        let p = self.piece_text.len() as u32;
        self.piece_id.insert(text.into(), p);
        self.piece_text.push(text.into());
        self.piece_token.push(None);
        p
    }

    /// The pre-tokenizer.
    pub(crate) fn pre_tokenizer(&self) -> PreTokenizer {
        self.pre
    }

    /// The token whose text is `text`.
    fn token_of(&self, text: &[u8]) -> Option<u32> {
        self.piece_id
            .get(text)
            .and_then(|&p| self.piece_token[p as usize])
    }

    /// Appends the tokens of `text` (a fragment free of special tokens) to `out`.
    pub(crate) fn encode(&self, text: &str, out: &mut Vec<u32>) {
        let mut cache: HashMap<&str, Vec<u32>> = HashMap::new();
        let mut encoded = String::new();
        for range in self.splitter.split(text) {
            let word = &text[range];
            if let Some(ids) = cache.get(word) {
                out.extend_from_slice(ids);
                continue;
            }
            encoded.clear();
            encoded.extend(word.bytes().map(|b| self.byte_char[b as usize]));
            let start = out.len();
            self.encode_word(&encoded, out);
            if word.len() <= 64 {
                cache.insert(word, out[start..].to_vec());
            }
        }
    }

    /// Merges one byte-encoded word and appends its tokens.
    fn encode_word(&self, word: &str, out: &mut Vec<u32>) {
        if self.pre.ignores_merges() {
            if let Some(t) = self.token_of(word.as_bytes()) {
                out.push(t);
                return;
            }
        }
        if word.is_empty() {
            return;
        }
        let bytes = word.as_bytes();
        let mut symbols: Vec<Symbol> = Vec::with_capacity(word.len());
        for (i, (start, c)) in word.char_indices().enumerate() {
            let end = start + c.len_utf8();
            symbols.push(Symbol {
                piece: self.piece_id.get(&bytes[start..end]).copied(),
                start: start as u32,
                end: end as u32,
                prev: i.checked_sub(1).map(|p| p as u32),
                next: None,
                alive: true,
            });
            if i > 0 {
                symbols[i - 1].next = Some(i as u32);
            }
        }
        let mut queue: BinaryHeap<Reverse<Candidate>> = BinaryHeap::new();
        let push = |queue: &mut BinaryHeap<_>, symbols: &[Symbol], left: u32, right: u32| {
            let (l, r) = (symbols[left as usize], symbols[right as usize]);
            if let (Some(lp), Some(rp)) = (l.piece, r.piece) {
                if let Some(&(rank, _)) = self.merges.get(&(lp, rp)) {
                    queue.push(Reverse((rank, left, right, lp, rp)));
                }
            }
        };
        for i in 1..symbols.len() as u32 {
            push(&mut queue, &symbols, i - 1, i);
        }
        while let Some(Reverse((_, left, right, lp, rp))) = queue.pop() {
            let (l, r) = (symbols[left as usize], symbols[right as usize]);
            // Skip pairs outdated by an earlier merge.
            if !l.alive || !r.alive || l.piece != Some(lp) || r.piece != Some(rp) {
                continue;
            }
            let merged = self.merges[&(lp, rp)].1;
            let ls = &mut symbols[left as usize];
            ls.piece = Some(merged);
            ls.end = r.end;
            ls.next = r.next;
            symbols[right as usize].alive = false;
            if let Some(n) = r.next {
                symbols[n as usize].prev = Some(left);
            }
            if let Some(p) = l.prev {
                push(&mut queue, &symbols, p, left);
            }
            if let Some(n) = r.next {
                push(&mut queue, &symbols, left, n);
            }
        }
        let mut i = Some(0u32);
        while let Some(s) = i.map(|i| symbols[i as usize]) {
            let text = &bytes[s.start as usize..s.end as usize];
            match s.piece.and_then(|p| self.piece_token[p as usize]) {
                Some(t) => out.push(t),
                // Not a token: each byte that is a one-byte token, the others dropped
                // (as llama.cpp does).
                None => out.extend(text.iter().filter_map(|&b| self.token_of(&[b]))),
            }
            i = s.next;
        }
    }

    /// The GPT-2 byte-level decoding of a token text: each character back to its byte.
    /// A character outside the byte alphabet is written as llama.cpp writes it.
    pub(crate) fn decode_text(&self, text: &[u8]) -> Vec<u8> {
        let s = String::from_utf8_lossy(text);
        let mut out = Vec::with_capacity(text.len());
        for c in s.chars() {
            match self.char_byte.get(c as usize).copied().flatten() {
                Some(b) => out.push(b),
                None => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(b"[UNK_BYTE_0x");
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.extend_from_slice(format!("{b:02x}").as_bytes());
                    }
                    out.extend_from_slice(text);
                    out.push(b']');
                }
            }
        }
        out
    }
}
