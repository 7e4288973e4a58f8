//! Which weight formats give llama.cpp's logits bit for bit: SmolLM2 requantized by
//! llama-quantize to each type, against llama.cpp's answers on the same file (last-position
//! logits of the 15 prompts of `tests/data/llama/`, and the 128-token greedy continuations).
//!
//! Developers only (ignored): the files and answers need llama.cpp, which CI does not have.
//! `scripts/golden/agreement_by_format.sh` makes them and runs this test, which prints, per
//! type, the prompts whose logits are bit-equal and the continuations that are equal, and
//! fails if a type of [`BIT_EQUAL`] is not bit-equal on every prompt and continuation. (CI
//! checks the Q4_1 file, Gemma 3's Q4_K_M mixture and SmolLM2 requantized to Q4_0 the same
//! way: `llama_smollm2.rs`, `gemma3.rs`, `llama_smollm2_q4_0.rs`.)
//!
//! What it found on this machine (x86-64, AVX-512 VNNI) is in docs/kernels.md, "Agreement
//! with llama.cpp by format".

mod common;

use std::path::PathBuf;

use ziglama_model::model::{argmax, Batch, Model};

/// The types whose every product follows one of llama.cpp's x86 orders that ziglama models.
const BIT_EQUAL: &[&str] = &["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K_M", "Q6_K"];

/// Prompts whose logits are bit-equal, and continuations equal to the end, out of how many.
fn agreement(model: &Model, dir: &std::path::Path) -> (usize, usize, usize) {
    let pool = common::pool();
    let (mut logits_equal, mut greedy_equal, mut n) = (0, 0, 0);
    for case in common::cases(dir) {
        n += 1;
        let want = common::golden_logits(dir, &case.name);
        let mut state = model.new_state(case.prompt.len() + case.greedy.len(), 1);
        let mut logits = model
            .forward(&Batch::prompt(&case.prompt, 0, 0), &mut state, &pool)
            .expect("prompt");
        if logits
            .iter()
            .zip(&want)
            .all(|(a, b)| a.to_bits() == b.to_bits())
        {
            logits_equal += 1;
        }
        let mut equal = true;
        for (step, &token) in case.greedy.iter().enumerate() {
            if argmax(&logits) as u32 != token {
                equal = false;
                break;
            }
            if step + 1 < case.greedy.len() {
                let position = case.prompt.len() + step;
                logits = model
                    .forward(&Batch::one(token, position, 0), &mut state, &pool)
                    .expect("decode step");
            }
        }
        greedy_equal += usize::from(equal);
    }
    (logits_equal, greedy_equal, n)
}

#[test]
#[ignore = "needs llama-quantize's files and llama.cpp's answers: run scripts/golden/agreement_by_format.sh"]
fn agreement_by_format() {
    let dir = PathBuf::from(std::env::var("ZIGLAMA_AGREEMENT_DIR").expect("ZIGLAMA_AGREEMENT_DIR"));
    let types = std::env::var("ZIGLAMA_AGREEMENT_TYPES").expect("ZIGLAMA_AGREEMENT_TYPES");
    println!("kernel set {:?}", ziglama_tensor::Isa::active());
    println!("| type | logits bit-equal | greedy equal |\n|---|---|---|");
    let mut failures = Vec::new();
    for t in types.split(',') {
        let model = Model::load(dir.join(format!("smollm2-{t}.gguf"))).expect("model loads");
        let (logits, greedy, n) = agreement(&model, &dir.join(format!("golden-{t}")));
        println!("| {t} | {logits} / {n} | {greedy} / {n} |");
        if BIT_EQUAL.contains(&t) && (logits, greedy) != (n, n) {
            failures.push(t.to_owned());
        }
    }
    assert!(failures.is_empty(), "not bit-equal any more: {failures:?}");
}
