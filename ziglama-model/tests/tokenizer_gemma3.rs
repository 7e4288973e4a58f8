//! Gemma 3's SentencePiece tokenizer (262,144 tokens, byte fallback, no space prefix) against
//! llama.cpp on the committed corpus of the SmolLM2 tokenizer test (348 strings: several
//! languages and scripts, emoji and ZWJ sequences, code, whitespace runs, digits,
//! contractions, special-token text), with and without `parse_special`; decoding gives back
//! the text. Golden data: `scripts/golden/tokenizer_smollm2_corpus.py --model <gemma>`.

mod common;

use ziglama_model::catalog::KnownModel;
use ziglama_model::gguf::GgufFile;
use ziglama_model::tokenizer::{Tokenizer, TokenizerKind};

fn gemma3() -> Tokenizer {
    let path = KnownModel::Gemma3.ensure().expect("fetch Gemma 3");
    let file = GgufFile::open(path).expect("open Gemma 3");
    Tokenizer::from_gguf(&file).expect("Gemma 3 tokenizer")
}

#[test]
fn special_tokens_as_llama_cpp_reports_them() {
    let tok = gemma3();
    assert_eq!(tok.kind(), TokenizerKind::SentencePiece);
    assert_eq!(tok.n_vocab(), 262_144);
    assert_eq!((tok.bos(), tok.eos()), (Some(2), Some(1)));
    assert!(tok.add_bos() && !tok.add_eos());
    assert!(tok.is_eog(1) && !tok.is_eog(2));
    // `<end_of_turn>` ends a chat turn: llama.cpp counts it as end of generation.
    let end_of_turn = tok.encode("<end_of_turn>", false, true).unwrap();
    assert_eq!(end_of_turn.len(), 1);
    assert!(tok.is_eog(end_of_turn[0]));
}

#[test]
fn corpus_matches_llama_cpp_and_round_trips() {
    common::check_corpus(&gemma3(), "gemma3_corpus.json");
}
