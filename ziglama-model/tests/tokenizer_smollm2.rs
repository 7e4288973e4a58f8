//! SmolLM2's tokenizer against llama.cpp on a committed corpus of 348 strings (several
//! languages and scripts, emoji and ZWJ sequences, code, whitespace runs, digits,
//! contractions, special-token text): the same tokens with and without `parse_special`, and
//! decoding gives back the text. Golden data: `scripts/golden/tokenizer_smollm2_corpus.py`.

use ziglama_model::catalog::KnownModel;
use ziglama_model::gguf::GgufFile;
use ziglama_model::tokenizer::{PreTokenizer, Tokenizer, TokenizerKind};

fn smollm2() -> Tokenizer {
    let path = KnownModel::SmolLM2.ensure().expect("fetch SmolLM2");
    let file = GgufFile::open(path).expect("open SmolLM2");
    Tokenizer::from_gguf(&file).expect("SmolLM2 tokenizer")
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("token array")
        .iter()
        .map(|t| t.as_u64().expect("token id") as u32)
        .collect()
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
    let tok = smollm2();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/tokenizer/smollm2_corpus.json"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read corpus")).expect("json");
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 300, "corpus has {} strings", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let text = case["text"].as_str().expect("text");
        for (key, parse_special) in [("tokens", false), ("tokens_special", true)] {
            let expected = ids(&case[key]);
            let got = tok.encode(text, true, parse_special).unwrap();
            if got != expected {
                failures.push(format!(
                    "{text:?} (parse_special {parse_special})\n  expected {expected:?}\n  got      {got:?}"
                ));
            }
            let body = if tok.add_bos() { &got[1..] } else { &got[..] };
            if tok.decode(body) != text.as_bytes() {
                failures.push(format!(
                    "{text:?} (parse_special {parse_special}) decodes to {:?}",
                    tok.decode_lossy(body)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} checks failed:\n{}",
        failures.len(),
        cases.len() * 4,
        failures.join("\n")
    );
}
