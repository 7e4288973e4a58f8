//! Incremental decoding on the real tokenizers: characters split across tokens (SmolLM2's
//! byte-level BPE, Gemma 3's `<0xNN>` byte fallback) are never shown as U+FFFD, and the
//! streamed text equals the tokenizer's decoding of the whole sequence.

use ziglama_infer::model::catalog::KnownModel;
use ziglama_infer::model::gguf::GgufFile;
use ziglama_infer::model::tokenizer::{TokenAttr, Tokenizer};
use ziglama_infer::stream::{IncrementalDecoder, SpecialTokens};

fn tokenizer(model: KnownModel) -> Tokenizer {
    let path = model.ensure().expect("the model must be fetchable");
    let file = GgufFile::open(path).expect("the model must open");
    Tokenizer::from_gguf(&file).expect("the tokenizer must build")
}

/// Texts whose characters the tokenizers split: emoji, CJK, rare scripts.
const SPLIT_TEXTS: &[&str] = &[
    "I 💜 Rust 🦀 and 日本語のテキスト",
    "𓀀 𠀋 🫠 ꙮ",
    "家族: 👨‍👩‍👧‍👦, flags: 🇫🇷🇯🇵, skin tones: 👋🏽",
    "中文分词很难。한국어 문장도 있습니다. Ελληνικά και русский.",
    "math: ∮ E⋅da = Q,  n → ∞, ∑ f(i) = ∏ g(i) ⅋ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "mixed ✅❌⚠️ 🚀🔥 «quotes» „Anführung“ — dash … ellipsis",
];

/// Decodes `ids` one token at a time, asserting that no token's text holds U+FFFD, and
/// returns the concatenation.
fn stream_without_replacement(tok: &Tokenizer, ids: &[u32]) -> String {
    let mut dec = IncrementalDecoder::new();
    let mut text = String::new();
    for &id in ids {
        let piece = dec.push_token(tok, id);
        assert!(!piece.contains('\u{FFFD}'), "token {id} showed U+FFFD");
        text.push_str(piece);
    }
    assert_eq!(dec.finish(), "");
    text
}

/// Counts the tokens whose piece is not valid UTF-8 on its own (a split character).
fn split_pieces(tok: &Tokenizer, ids: &[u32]) -> usize {
    ids.iter()
        .filter(|&&id| std::str::from_utf8(tok.token_to_piece(id)).is_err())
        .count()
}

#[test]
fn smollm2_characters_split_across_byte_level_tokens() {
    let tok = tokenizer(KnownModel::SmolLM2);
    let mut split = 0;
    for text in SPLIT_TEXTS {
        let ids = tok.encode(text, false, false).unwrap();
        split += split_pieces(&tok, &ids);
        assert_eq!(tok.decode(&ids), text.as_bytes());
        assert_eq!(stream_without_replacement(&tok, &ids), *text);
    }
    // The texts really do split characters: the test is not vacuous.
    assert!(split >= 40, "only {split} split pieces");
}

#[test]
fn gemma3_byte_fallback_tokens() {
    let tok = tokenizer(KnownModel::Gemma3);
    let mut byte_tokens = 0;
    for text in SPLIT_TEXTS {
        let ids = tok.encode(text, false, false).unwrap();
        byte_tokens += ids
            .iter()
            .filter(|&&id| tok.token_attr(id).contains(TokenAttr::BYTE))
            .count();
        assert_eq!(tok.decode(&ids), text.as_bytes());
        assert_eq!(stream_without_replacement(&tok, &ids), *text);
    }
    assert!(byte_tokens >= 8, "only {byte_tokens} byte tokens");
}

/// A small xorshift generator: reproducible without dependencies.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random token sequences: uniform ids (any piece, including control tokens and lone
/// continuation bytes), and windows of the split texts' encodings (cut inside characters).
fn random_sequences(tok: &Tokenizer, seed: u64, count: usize) -> Vec<Vec<u32>> {
    let mut rng = XorShift(seed);
    let encoded: Vec<Vec<u32>> = SPLIT_TEXTS
        .iter()
        .map(|t| tok.encode(t, false, false).unwrap())
        .collect();
    (0..count)
        .map(|i| {
            let len = 1 + rng.below(40);
            if i % 2 == 0 {
                (0..len).map(|_| rng.below(tok.n_vocab()) as u32).collect()
            } else {
                let ids = &encoded[rng.below(encoded.len())];
                let start = rng.below(ids.len());
                let end = (start + len).min(ids.len());
                ids[start..end].to_vec()
            }
        })
        .collect()
}

/// The streamed text of `ids` under `decoder`.
fn streamed(mut decoder: IncrementalDecoder, tok: &Tokenizer, ids: &[u32]) -> String {
    let mut text = String::new();
    for &id in ids {
        text.push_str(decoder.push_token(tok, id));
    }
    text.push_str(decoder.finish());
    text
}

#[test]
fn random_sequences_stream_to_the_lossy_decoding() {
    for (model, seed) in [(KnownModel::SmolLM2, 7), (KnownModel::Gemma3, 11)] {
        let tok = tokenizer(model);
        let mut replaced = 0;
        for ids in random_sequences(&tok, seed, 600) {
            let whole = tok.decode_lossy(&ids);
            replaced += whole.matches('\u{FFFD}').count();
            assert_eq!(
                streamed(IncrementalDecoder::new(), &tok, &ids),
                whole,
                "{model:?} {ids:?}"
            );
        }
        // Invalid and unfinished sequences occurred, so the U+FFFD rule was exercised.
        assert!(replaced > 50, "{model:?}: only {replaced} replacements");
    }
}

/// Whether `detokenize` removes a leading space from the first piece for this vocabulary
/// (SentencePiece with `add_space_prefix`): found from a token whose piece starts with one.
fn detokenize_strips_leading_space(tok: &Tokenizer) -> bool {
    (0..tok.n_vocab() as u32)
        .find(|&id| {
            let piece = tok.token_to_piece(id);
            piece.len() > 1 && piece[0] == b' ' && tok.token_attr(id) == TokenAttr::NORMAL
        })
        .is_some_and(|id| tok.detokenize(&[id], false, false) != tok.token_to_piece(id))
}

#[test]
fn hidden_special_tokens_agree_with_detokenize() {
    for (model, seed) in [(KnownModel::SmolLM2, 3), (KnownModel::Gemma3, 5)] {
        let tok = tokenizer(model);
        let strip = detokenize_strips_leading_space(&tok);
        let special: Vec<u32> = (0..tok.n_vocab() as u32)
            .filter(|&id| tok.token_attr(id).contains(TokenAttr::CONTROL))
            .take(50)
            .collect();
        assert!(!special.is_empty());
        let mut rng = XorShift(seed);
        for mut ids in random_sequences(&tok, seed, 300) {
            // Sprinkle control tokens in, one at the start now and then.
            for _ in 0..3 {
                let at = rng.below(ids.len() + 1);
                ids.insert(at, special[rng.below(special.len())]);
            }
            let whole = tok.detokenize(&ids, false, false);
            let decoder = IncrementalDecoder::new()
                .with_special_tokens(SpecialTokens::Hide)
                .with_leading_space_stripped(strip);
            assert_eq!(
                streamed(decoder, &tok, &ids),
                String::from_utf8_lossy(&whole),
                "{model:?} {ids:?}"
            );
            // Rendered, they agree with decode.
            assert_eq!(
                streamed(IncrementalDecoder::new(), &tok, &ids),
                tok.decode_lossy(&ids)
            );
        }
    }
}

/// A SentencePiece vocabulary with a space prefix (neither real model has one): the decoder
/// with the leading space stripped agrees with `detokenize` on every sequence of up to four
/// tokens, special tokens hidden or rendered.
#[test]
fn space_prefix_vocabulary_agrees_with_detokenize() {
    use ziglama_infer::model::gguf::{Metadata, MetadataArray, StringArray};

    let mut meta = Metadata::new();
    meta.insert("tokenizer.ggml.model", "llama").unwrap();
    let texts = [
        "<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "ab", "<0xC3>", "<0xA9>",
    ];
    let tokens: StringArray = texts.into_iter().collect();
    meta.insert("tokenizer.ggml.tokens", MetadataArray::String(tokens))
        .unwrap();
    meta.insert(
        "tokenizer.ggml.token_type",
        MetadataArray::Int32(vec![2, 3, 3, 1, 1, 1, 1, 1, 6, 6]),
    )
    .unwrap();
    let tok = Tokenizer::from_metadata(&meta).unwrap();
    assert!(detokenize_strips_leading_space(&tok));
    assert_eq!(tok.encode("a é", false, false).unwrap(), [6, 3, 8, 9]);

    let n = texts.len() as u32;
    let mut sequences: Vec<Vec<u32>> = vec![vec![]];
    for len in 1..=4 {
        let mut next = Vec::new();
        for s in sequences.iter().filter(|s| s.len() == len - 1) {
            for id in 0..n {
                let mut t = s.clone();
                t.push(id);
                next.push(t);
            }
        }
        sequences.extend(next);
    }
    assert_eq!(sequences.len(), 1 + 10 + 100 + 1000 + 10000);
    for ids in &sequences {
        for (special, unparse) in [(SpecialTokens::Hide, false), (SpecialTokens::Render, true)] {
            let decoder = IncrementalDecoder::new()
                .with_special_tokens(special)
                .with_leading_space_stripped(true);
            assert_eq!(
                streamed(decoder, &tok, ids),
                String::from_utf8_lossy(&tok.detokenize(ids, false, unparse)),
                "{ids:?} {special:?}"
            );
        }
    }
}
