//! The `generate` example run as a program: greedy output equals llama.cpp's (the SmolLM2
//! golden transcript of "The capital of France is"), sampler flags map to the sampling
//! configuration (same tokens as `TextGenerator` with that configuration), `--stream`
//! prints what `--json` reports, `--stop` ends the text before the stop string and `--chat`
//! goes through the chat template.
//!
//! The binary is the one `cargo test` builds next to the tests, or one built on the spot (see
//! `example`).

mod common;

use std::path::PathBuf;
use std::process::Command;

use ziglama::infer::generator::{GenerationConfig, TextGenerator};
use ziglama::infer::sampling::{Preset, SamplingConfig};
use ziglama::model::catalog::KnownModel;
use ziglama::model::model::Model;

fn run(args: &[&str]) -> String {
    KnownModel::SmolLM2.ensure().expect("SmolLM2");
    let output = Command::new(common::example("generate"))
        .args(args)
        .output()
        .expect("run the generate example");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&run(args)).expect("one JSON object")
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|t| t.as_u64().expect("a token id") as u32)
        .collect()
}

/// llama.cpp's greedy continuation of "The capital of France is" (golden case `capital`).
fn golden_capital() -> (Vec<u32>, Vec<u32>) {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ziglama-model/tests/data/llama/cases.tsv");
    let text = std::fs::read_to_string(path).expect("cases.tsv");
    let line = text
        .lines()
        .find(|l| l.starts_with("capital\t"))
        .expect("the capital case");
    let f: Vec<&str> = line.split('\t').collect();
    let list = |s: &str| s.split(',').map(|t| t.parse().unwrap()).collect();
    (list(f[1]), list(f[2]))
}

#[test]
fn greedy_json_equals_llama_cpp() {
    let (prompt, greedy) = golden_capital();
    let out = json(&[
        "--prompt",
        "The capital of France is",
        "--max-tokens",
        "16",
        "--json",
    ]);
    assert_eq!(ids(&out["prompt_tokens"]), prompt);
    assert_eq!(ids(&out["tokens"]), greedy[..16]);
    assert_eq!(out["stop_reason"], "max_tokens");
    assert!(out["timings"]["decode_tokens_per_s"].as_f64().unwrap() > 0.0);

    // --stream prints the same text; --stop cuts it before the stop string.
    let text = out["text"].as_str().unwrap();
    let streamed = run(&[
        "--prompt",
        "The capital of France is",
        "--max-tokens",
        "16",
        "--stream",
    ]);
    assert_eq!(streamed, format!("{text}\n"));
    let cut = run(&[
        "--prompt",
        "The capital of France is",
        "--max-tokens",
        "16",
        "--stream",
        "--stop",
        "\\n",
        "--flush",
        "word",
    ]);
    assert_eq!(cut, format!("{}\n", &text[..text.find('\n').unwrap()]));
}

/// llama.cpp's greedy reply to "What is the capital of France?" through SmolLM2's chat
/// template (its default system message included): prompt tokens and 24 tokens.
const CHAT_PROMPT: [u32; 37] = [
    1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407,
    19712, 8182, 2, 198, 1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531,
    198,
];
const CHAT_REPLY: [u32; 24] = [
    60, 23, 39614, 1141, 552, 28, 2618, 12693, 2756, 28, 2618, 12572, 28, 2618, 452, 2756, 39857,
    28, 2618, 10256, 28, 2618, 27597, 28,
];

#[test]
fn chat_greedy_equals_llama_cpp() {
    let out = json(&[
        "--chat",
        "--prompt",
        "What is the capital of France?",
        "--max-tokens",
        "24",
        "--json",
    ]);
    assert_eq!(ids(&out["prompt_tokens"]), CHAT_PROMPT);
    assert_eq!(ids(&out["tokens"]), CHAT_REPLY);
}

#[test]
fn sampler_flags_and_chat_map_to_the_library() {
    let path = KnownModel::SmolLM2.ensure().expect("SmolLM2");
    let args = [
        "--prompt",
        "Once upon a time",
        "--max-tokens",
        "12",
        "--json",
        "--temperature",
        "0.9",
        "--top-k",
        "20",
        "--min-p",
        "0.02",
        "--repeat-penalty",
        "1.1",
        "--seed",
        "7",
        "--chat",
    ];
    let out = json(&args);
    let model = Model::load(path).unwrap();
    let sampling = SamplingConfig {
        temperature: 0.9,
        top_k: 20,
        min_p: 0.02,
        penalty_repeat: 1.1,
        ..SamplingConfig::preset(Preset::Deterministic)
    };
    let config = GenerationConfig::default()
        .with_sampling(sampling)
        .with_seed(7)
        .with_max_tokens(12);
    let mut generator = TextGenerator::builder(&model)
        .config(config)
        .context_size(64)
        .threads(2)
        .build()
        .unwrap();
    let chat = vec![ziglama::model::chat::Message::user("Once upon a time")];
    let want = generator.generate(chat).unwrap();
    assert_eq!(ids(&out["prompt_tokens"]), want.prompt_tokens);
    assert_eq!(ids(&out["tokens"]), want.tokens);
    assert_eq!(out["text"].as_str().unwrap(), want.text);
}
