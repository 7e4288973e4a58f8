//! SmolLM2's tokenizer against llama.cpp on a committed corpus of 348 strings (several
//! languages and scripts, emoji and ZWJ sequences, code, whitespace runs, digits,
//! contractions, special-token text): the same tokens with and without `parse_special`, and
//! decoding gives back the text. Golden data: `scripts/golden/tokenizer_smollm2_corpus.py`.

mod common;

use ziglama_model::catalog::KnownModel;
use ziglama_model::gguf::GgufFile;
use ziglama_model::tokenizer::{PreTokenizer, Tokenizer, TokenizerKind};

fn smollm2() -> Tokenizer {
    let path = KnownModel::SmolLM2.ensure().expect("fetch SmolLM2");
    let file = GgufFile::open(path).expect("open SmolLM2");
    Tokenizer::from_gguf(&file).expect("SmolLM2 tokenizer")
}

#[test]
fn special_tokens_as_llama_cpp_reports_them() {
    let tok = smollm2();
    assert_eq!(tok.kind(), TokenizerKind::Bpe(PreTokenizer::Smollm));
    assert_eq!(tok.n_vocab(), 49152);
    // llama.cpp: bos 1, eos 2, eot 0, add_bos false, EOG {0, 2, 4}.
    assert_eq!(
        (tok.bos(), tok.eos(), tok.eot()),
        (Some(1), Some(2), Some(0))
    );
    assert!(!tok.add_bos() && !tok.add_eos());
    assert_eq!(tok.eog_tokens().collect::<Vec<_>>(), [0, 2, 4]);
    assert!(tok.is_eog(2) && !tok.is_eog(1) && !tok.is_eog(17));
    assert_eq!(tok.token_to_piece(1), b"<|im_start|>");
    assert_eq!(tok.token_to_piece(198), b"\n");
    assert_eq!(tok.token_to_piece(u32::MAX), b"");
}

#[test]
fn corpus_matches_llama_cpp_and_round_trips() {
    common::check_corpus(&smollm2(), "smollm2_corpus.json");
}
