//! Gemma 3 270M (architecture `gemma3`) against llama.cpp: last-position logits of twelve
//! committed prompts and their greedy continuations of up to 128 tokens, two of them running
//! past 700 positions (beyond the 512-position sliding window); and the sliding-window cache:
//! what it holds, and that it gives exactly what a full cache gives.
//!
//! Golden data in `tests/data/gemma3/`, made by `scripts/golden/gemma3.py` with llama.cpp
//! (llama-cpp-python 0.3.36, AVX-512 build, flash attention off, prompts in batches of 512).
//! The tests feed llama.cpp's prompt tokens, so they do not depend on our tokenizer (its own
//! test is `tokenizer_gemma3.rs`). The strict tests have the machine requirement of
//! `llama_smollm2.rs`: ziglama-tensor's x86-64 AVX2 or AVX-512 kernels.
//!
//! With the x86 kernels (AVX2 or AVX-512), the logits of all twelve prompts are bit-equal to
//! llama.cpp's and all twelve continuations are equal token for token: the strict tests
//! require exactly that, which is tighter than the cosine 0.9999 and near-tie rule.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use common::require_x86_simd_kernels;
use common::{cases, check_greedy, check_logits, check_logits_bit_equal, pool};
use ziglama_model::catalog::KnownModel;
use ziglama_model::model::{Batch, LayeredKvCache, Model};

/// The bound that holds with any kernel set (under `ZIGLAMA_KERNELS=scalar` the worst is
/// `long_essay`, 0.99698; the short prompts stay above 0.9995).
const MIN_COSINE_ANY: f64 = 0.995;

fn data_dir() -> PathBuf {
    common::data_dir("gemma3")
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = KnownModel::Gemma3
            .ensure()
            .expect("Gemma 3 must be fetchable");
        Model::load(path).expect("Gemma 3 loads")
    })
}

#[test]
fn hyperparameters_as_llama_cpp_reads_them() {
    let hp = model().hparams();
    assert_eq!(hp.architecture, "gemma3");
    assert_eq!((hp.n_layer, hp.n_embd, hp.n_vocab), (18, 640, 262_144));
    assert_eq!(hp.embedding_scale, 640f32.sqrt());
    let windows = hp.windows();
    for (il, w) in windows.iter().enumerate() {
        let global = il % 6 == 5;
        assert_eq!(*w, (!global).then_some(512), "layer {il}");
        let c = &hp.layers[il];
        assert_eq!(
            c.rope.freq_base,
            if global { 1e6 } else { 1e4 },
            "layer {il}"
        );
        assert_eq!(c.query_scale, 1.0 / 16.0);
        assert_eq!(c.attention.kq_scale, 1.0);
        assert_eq!((c.attention.n_head, c.attention.n_head_kv), (4, 1));
        assert_eq!(c.attention.head_dim, 256);
    }
    let b = &model().weights().blocks[0];
    assert!(b.attn_q_norm.is_some() && b.attn_k_norm.is_some());
    assert!(b.attn_post_norm.is_some() && b.ffn_post_norm.is_some());
}

/// The bound that holds with any kernel set.
#[test]
fn last_position_logits_match_llama_cpp() {
    check_logits(model(), &data_dir(), MIN_COSINE_ANY);
}

/// Every prompt's logits bit-equal to llama.cpp's.
#[test]
fn last_position_logits_match_llama_cpp_strict() {
    require_x86_simd_kernels();
    check_logits_bit_equal(model(), &data_dir());
}

/// Every continuation equal to llama.cpp's token for token (no divergence allowed, not even
/// at a near-tie: the logits are bit-equal).
#[test]
fn greedy_continuations_match_llama_cpp_strict() {
    require_x86_simd_kernels();
    check_greedy(model(), &data_dir(), 0.0);
}

/// The longest committed prompt (1,180 tokens) in one batch, with sliding-window caches,
/// equals the same prompt in batches of at most 512 tokens (as llama.cpp runs it) and a run
/// where every layer caches the full context (the window then only masks): bit for bit, at
/// the end of the prompt and for 8 decoded tokens after it.
#[test]
fn sliding_window_cache_equals_a_full_cache() {
    let model = model();
    let pool = pool();
    let case = cases(&data_dir())
        .into_iter()
        .find(|c| c.name == "long_code")
        .expect("long_code case");
    let n = case.prompt.len();
    assert!(n > 1024, "long_code has {n} tokens");
    let n_ctx = n + 8;
    let run = |state: &mut ziglama_model::model::State, chunk: usize| -> Vec<Vec<f32>> {
        let mut out = Vec::new();
        let mut logits = Vec::new();
        for (i, piece) in case.prompt.chunks(chunk).enumerate() {
            logits = model
                .forward(&Batch::prompt(piece, i * chunk, 0), state, &pool)
                .expect("prompt");
        }
        for step in 0..8 {
            let next = ziglama_model::model::argmax(&logits) as u32;
            out.push(std::mem::take(&mut logits));
            logits = model
                .forward(&Batch::one(next, n + step, 0), state, &pool)
                .expect("decode");
        }
        out.push(logits);
        out
    };
    let mut windowed = model.new_state(n_ctx, 1);
    let one_batch = run(&mut windowed, n);
    for layer in 0..18 {
        let want = if layer % 6 == 5 { n + 8 } else { 512 };
        assert_eq!(windowed.cache.held(layer, 0), want, "layer {layer}");
    }
    let mut ubatches = model.new_state(n_ctx, 1);
    assert_eq!(run(&mut ubatches, 512), one_batch, "batches of 512");
    let mut full = model.new_state(n_ctx, 1);
    let row_len = 256;
    full.cache = LayeredKvCache::new(&[None; 18], 1, n_ctx, row_len);
    assert_eq!(run(&mut full, n), one_batch, "full cache");
    // 1 KiB per position and layer: 18 full layers against 15 windows of 512 and 3 full.
    assert_eq!(full.cache.bytes(), 18 * n_ctx * 1024);
    assert_eq!(windowed.cache.bytes(), (15 * 512 + 3 * n_ctx) * 1024);
}

/// Issue 4's memory line: for a 2,000-token sequence the local layers hold at most 512
/// positions each, the global ones all 2,000; the cache's byte count says so.
#[test]
fn cache_memory_for_a_2000_token_sequence() {
    let model = model();
    let pool = pool();
    let prompt: Vec<u32> = cases(&data_dir())
        .iter()
        .flat_map(|c| c.prompt.iter().copied())
        .cycle()
        .take(1999)
        .collect();
    let mut state = model.new_state(2000, 1);
    let logits = model
        .forward(&Batch::prompt(&prompt, 0, 0), &mut state, &pool)
        .expect("1,999-token prompt");
    let next = ziglama_model::model::argmax(&logits) as u32;
    let logits = model
        .forward(&Batch::one(next, 1999, 0), &mut state, &pool)
        .expect("position 1,999");
    assert!(logits.iter().all(|v| v.is_finite()));
    let cache = &state.cache;
    let (mut local, mut global) = (0, 0);
    for layer in 0..18 {
        let held = cache.held(layer, 0);
        if layer % 6 == 5 {
            assert_eq!(held, 2000, "global layer {layer}");
            global += cache.layer_bytes(layer);
        } else {
            assert!(held <= 512, "local layer {layer} holds {held}");
            assert_eq!(cache.capacity(layer), 512);
            local += cache.layer_bytes(layer);
        }
    }
    // Rows of 256 f16 keys and values: 1 KiB per position and layer.
    assert_eq!(local, 15 * 512 * 1024);
    assert_eq!(global, 3 * 2000 * 1024);
    assert_eq!(cache.bytes(), local + global);
    println!(
        "KV cache after 2,000 positions: {} bytes ({local} in the 15 local layers, {global} in the 3 global ones); a full cache would take {}",
        cache.bytes(),
        18 * 2000 * 1024
    );
}
