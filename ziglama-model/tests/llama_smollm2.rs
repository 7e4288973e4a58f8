//! SmolLM2-135M-Instruct (architecture `llama`) against llama.cpp: last-position logits of
//! the committed prompts, greedy continuations of 128 tokens, and batching invariants.
//!
//! The golden data in `tests/data/llama/` was made by `scripts/golden/llama_smollm2.py` with
//! llama.cpp (llama-cpp-python 0.3.36, AVX-512 build, flash attention off). The tests feed
//! llama.cpp's prompt tokens, so they do not depend on our tokenizer.
//!
//! Two strengths of agreement are checked:
//!
//! - The acceptance criteria of issue 3 (`*_strict`): same top-1, cosine >= 0.9999, greedy
//!   divergence only at a near-tie (top-2 gap < 0.05). In fact every logit equals llama.cpp's
//!   bit for bit and all 15 continuations are equal, because ziglama-tensor's legacy dot
//!   products add in ggml's x86 order (one 8-lane accumulator, as ggml's AVX2
//!   `ggml_vec_dot_q4_1_q8_1`) and its Q8_0/Q8_1 activation quantizers are ggml-cpu's x86 ones
//!   (`id = 127 / amax`, rounding half to even). **Machine requirement:** these tests assume
//!   ziglama-tensor's x86-64 AVX2 or AVX-512 kernels (the default on such a CPU; also
//!   `ZIGLAMA_KERNELS=avx2`), and fail with a message under any other kernel set
//!   (`ZIGLAMA_KERNELS=scalar`, other architectures): there llama.cpp's summation order is not
//!   reproduced (ggml's generic C code is not what llama.cpp runs on this machine), and this
//!   model's massive activations (up to 22,000 in the residual stream) amplify last-bit
//!   differences of the matrix products into logit differences of ~0.5.
//! - With any kernel set, scalar included: same top-1 and cosine >= 0.995 for the last-position
//!   logits (with `ZIGLAMA_KERNELS=scalar` the worst is 0.998, `numbers`). Greedy
//!   continuations are only compared under the machine requirement: with other summation
//!   orders they diverge at gaps up to 0.34 (`chat_simple` under the scalar kernels).

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use common::{cases, check_greedy, check_logits, cosine, pool, require_x86_simd_kernels, top2_gap};
use common::{MIN_COSINE, NEAR_TIE};
use ziglama_model::catalog::KnownModel;
use ziglama_model::model::{argmax, Batch, BatchEntry, Model};
use ziglama_model::ModelError;

/// A near-tie bound for comparisons whose summation orders may differ (see
/// [`prompt_in_one_batch_equals_token_by_token`]).
const NEAR_TIE_ANY: f32 = 0.25;
/// The cosine bound that holds with any kernel set.
const MIN_COSINE_ANY: f64 = 0.995;

fn data_dir() -> PathBuf {
    common::data_dir("llama")
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = KnownModel::SmolLM2
            .ensure()
            .expect("SmolLM2 must be fetchable");
        Model::load(path).expect("SmolLM2 loads")
    })
}

/// The bound that holds with any kernel set.
#[test]
fn last_position_logits_match_llama_cpp() {
    check_logits(model(), &data_dir(), MIN_COSINE_ANY);
}

/// Issue 3's bound; bit-exact in fact on x86-64 AVX2/AVX-512 (required).
#[test]
fn last_position_logits_match_llama_cpp_strict() {
    require_x86_simd_kernels();
    check_logits(model(), &data_dir(), MIN_COSINE);
}

/// Issue 3's bound; all continuations equal in fact on x86-64 AVX2/AVX-512 (required).
#[test]
fn greedy_continuations_match_llama_cpp_strict() {
    require_x86_simd_kernels();
    check_greedy(model(), &data_dir(), NEAR_TIE);
}

/// A prompt in one batch (logits at every position) against the same prompt one token per
/// step. As in llama.cpp, the two paths add the attention products in different orders (a
/// batch of several tokens uses tinyBLAS's, a single token ggml_vec_dot_f16's), so they agree
/// to the bounds that hold with any kernel set (with the x86 SIMD kernels on the committed
/// prompt they are equal; under `ZIGLAMA_KERNELS=scalar` the worst cosine is 0.998).
#[test]
fn prompt_in_one_batch_equals_token_by_token() {
    let model = model();
    let pool = pool();
    let case = &cases(&data_dir())[2];
    let n = case.prompt.len();
    let mut whole = model.new_state(n, 1);
    let mut all = Batch::new();
    for (i, &token) in case.prompt.iter().enumerate() {
        all.push(BatchEntry {
            token,
            pos: i,
            seq: 0,
            logits: true,
        });
    }
    let batched = model.forward(&all, &mut whole, &pool).expect("batch");
    let v = model.n_vocab();
    assert_eq!(batched.len(), n * v);
    let mut stepwise = model.new_state(n, 1);
    for (i, &token) in case.prompt.iter().enumerate() {
        let one = model
            .forward(&Batch::one(token, i, 0), &mut stepwise, &pool)
            .expect("step");
        let row = &batched[i * v..][..v];
        let max_abs = one
            .iter()
            .zip(row)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let cos = cosine(&one, row);
        println!("position {i:2}: cosine {cos:.7} max|diff| {max_abs:.4}");
        assert!(cos >= MIN_COSINE_ANY, "position {i}: cosine {cos}");
        assert!(
            argmax(&one) == argmax(row) || top2_gap(row) < NEAR_TIE_ANY,
            "position {i}: top-1 {} vs {}",
            argmax(&one),
            argmax(row)
        );
    }
    // The last position of the batch equals a prompt run with logits for the last entry only.
    let mut last_only = model.new_state(n, 1);
    let last = model
        .forward(&Batch::prompt(&case.prompt, 0, 0), &mut last_only, &pool)
        .expect("prompt");
    assert_eq!(last.as_slice(), &batched[(n - 1) * v..]);
}

#[test]
fn two_sequences_in_one_batch_equal_each_alone() {
    let model = model();
    let pool = pool();
    let all = cases(&data_dir());
    let (a, b) = (&all[0].prompt, &all[1].prompt);
    let n_ctx = a.len().max(b.len());
    let mut batch = Batch::prompt(a, 0, 0);
    batch.entries.extend(Batch::prompt(b, 0, 1).entries);
    let mut state = model.new_state(n_ctx, 2);
    let both = model
        .forward(&batch, &mut state, &pool)
        .expect("two sequences");
    let v = model.n_vocab();
    for (seq, prompt) in [a, b].into_iter().enumerate() {
        let mut alone = model.new_state(n_ctx, 1);
        let one = model
            .forward(&Batch::prompt(prompt, 0, 0), &mut alone, &pool)
            .expect("alone");
        let max_abs = one
            .iter()
            .zip(&both[seq * v..][..v])
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert_eq!(max_abs, 0.0, "sequence {seq}: max|diff| {max_abs}");
    }
}

#[test]
fn prompt_longer_than_the_context_is_an_error() {
    let model = model();
    let mut state = model.new_state(4, 1);
    let err = model
        .forward(&Batch::prompt(&[1, 2, 3, 4, 5], 0, 0), &mut state, &pool())
        .unwrap_err();
    assert!(
        matches!(err, ModelError::InvalidBatch { index: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("past the context"), "{err}");
}

#[test]
fn token_outside_the_vocabulary_is_an_error() {
    let model = model();
    let mut state = model.new_state(4, 1);
    let err = model
        .forward(&Batch::one(u32::MAX, 0, 0), &mut state, &pool())
        .unwrap_err();
    assert!(err.to_string().contains("outside the vocabulary"), "{err}");
    let err = model
        .forward(&Batch::one(1, 0, 3), &mut state, &pool())
        .unwrap_err();
    assert!(err.to_string().contains("sequence 3"), "{err}");
}
