//! llama.cpp's tokenizer conformance files: for each BPE and SentencePiece vocabulary, every
//! input of `ggml-vocab-NAME.gguf.inp` must encode (no BOS/EOS, special tokens as text, as
//! llama.cpp's `test-tokenizer-0` does) to the ids on the same line of `.out`.
//!
//! The files come from llama.cpp's source tree; `scripts/fetch_llama_vocab_tests.py`
//! installs them into `<models dir>/llama-vocab-tests/` and runs here when they are missing.

use std::path::PathBuf;
use std::process::Command;

use ziglama_model::catalog::models_dir;
use ziglama_model::gguf::GgufFile;
use ziglama_model::tokenizer::{Tokenizer, TokenizerKind};

/// The vocabularies that must pass, with the pre-tokenizer each file names (`default` for
/// the SentencePiece ones).
const VOCABS: &[(&str, &str)] = &[
    ("gpt-2", "gpt-2"),
    ("llama-bpe", "llama-bpe"),
    ("qwen2", "qwen2"),
    ("starcoder", "starcoder"),
    ("deepseek-llm", "deepseek-llm"),
    ("deepseek-coder", "deepseek-coder"),
    ("falcon", "falcon"),
    ("refact", "refact"),
    ("mpt", "mpt"),
    ("command-r", "command-r"),
    ("qwen35", "qwen35"),
    ("llama-spm", "default"),
    ("phi-3", "default"),
];

fn vocab_dir() -> PathBuf {
    let dir = models_dir().join("llama-vocab-tests");
    if dir.join(".complete").exists() {
        return dir;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join("fetch_llama_vocab_tests.py");
    let python = std::env::var_os("ZIGLAMA_PYTHON").unwrap_or_else(|| "python3".into());
    let out = Command::new(&python)
        .arg(&script)
        .env("ZIGLAMA_MODELS", models_dir())
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", script.display()));
    assert!(
        out.status.success() && dir.join(".complete").exists(),
        "{} failed ({}):\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// (input, expected ids) pairs of one vocabulary, read as test-tokenizer-0 reads them.
fn read_cases(dir: &std::path::Path, name: &str) -> Vec<(String, Vec<u32>)> {
    let base = dir.join(format!("ggml-vocab-{name}.gguf"));
    let inp = std::fs::read_to_string(base.with_extension("gguf.inp")).expect("read .inp");
    let out = std::fs::read_to_string(base.with_extension("gguf.out")).expect("read .out");
    let inputs: Vec<&str> = {
        let sep = "\n__ggml_vocab_test__\n";
        let mut v = Vec::new();
        let mut rest = inp.as_str();
        while !rest.is_empty() {
            match rest.find(sep) {
                Some(i) => {
                    v.push(&rest[..i]);
                    rest = &rest[i + sep.len()..];
                }
                None => {
                    v.push(rest);
                    rest = "";
                }
            }
        }
        v
    };
    let outputs: Vec<Vec<u32>> = out
        .lines()
        .map(|l| {
            l.split_whitespace()
                .map(|t| t.parse().expect("token id"))
                .collect()
        })
        .collect();
    assert_eq!(
        inputs.len(),
        outputs.len(),
        "{name}: .inp and .out differ in length"
    );
    inputs.into_iter().map(String::from).zip(outputs).collect()
}

#[test]
fn llama_cpp_vocab_conformance() {
    let dir = vocab_dir();
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for &(name, pre) in VOCABS {
        let file = GgufFile::open(dir.join(format!("ggml-vocab-{name}.gguf"))).expect("open vocab");
        let file_pre = file
            .metadata()
            .get_opt::<&str>("tokenizer.ggml.pre")
            .unwrap()
            .unwrap_or("default");
        assert_eq!(file_pre, pre);
        let tok = Tokenizer::from_gguf(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let cases = read_cases(&dir, name);
        let mut passed = 0;
        for (text, expected) in &cases {
            let got = tok.encode(text, false, false).unwrap();
            // SentencePiece: detokenizing gives the text back (the space it put first removed).
            let round_trip = !matches!(tok.kind(), TokenizerKind::SentencePiece)
                || tok.detokenize(&got, true, false) == text.as_bytes();
            if &got == expected && round_trip {
                passed += 1;
            } else if failures.len() < 20 {
                failures.push(format!(
                    "{name}: {text:?}\n  expected {expected:?}\n  got      {got:?}"
                ));
            }
        }
        report.push(format!("{name}: {passed}/{} passed", cases.len()));
        if passed != cases.len() {
            failures.push(format!("{name}: {passed}/{} passed", cases.len()));
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
