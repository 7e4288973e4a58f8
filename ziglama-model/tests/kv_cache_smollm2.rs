//! The KV cache family on a real model (SmolLM2-135M-Instruct): greedy generation through
//! every cache and storage format against the contiguous f32 cache, the drift of the
//! quantized formats, a paged fork holding its prefix once, save and restore, context
//! shifting past the context size, and prefix reuse.
//!
//! Figures are printed (`cargo test --release -p ziglama-model --test kv_cache_smollm2 --
//! --nocapture`) and quoted in docs/kv_cache.md.

mod common;

use std::sync::OnceLock;
use std::time::Instant;

use common::{cases, cosine, pool};
use ziglama_model::catalog::KnownModel;
use ziglama_model::model::{
    argmax, load_sequence, reuse_prefix, save_sequence, Batch, BatchEntry, ContiguousKvCache,
    KvType, LayeredKvCache, Model, MultiSequenceKvCache, SlidingWindowKvCache, State,
};
use ziglama_nn::KvCache;
use ziglama_tensor::ThreadPool;

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = KnownModel::SmolLM2
            .ensure()
            .expect("SmolLM2 must be fetchable");
        Model::load(path).expect("SmolLM2 loads")
    })
}

/// `n` tokens of committed prompts, one after another (any tokens serve as a context).
fn tokens(n: usize) -> Vec<u32> {
    cases(&common::data_dir("llama"))
        .iter()
        .flat_map(|c| c.prompt.clone())
        .cycle()
        .take(n)
        .collect()
}

/// Runs `prompt` on `seq` from position `start` in one batch, then `n_new` greedy steps;
/// returns the generated tokens and the logits of every step (the prompt's last first).
fn greedy<C: KvCache + Sync>(
    state: &mut State<C>,
    prompt: &[u32],
    start: usize,
    seq: usize,
    n_new: usize,
    pool: &ThreadPool,
) -> (Vec<u32>, Vec<Vec<f32>>) {
    let model = model();
    let mut logits = model
        .forward(&Batch::prompt(prompt, start, seq), state, pool)
        .expect("prompt");
    let (mut out, mut all) = (Vec::new(), Vec::new());
    for step in 0..n_new {
        let next = argmax(&logits) as u32;
        out.push(next);
        all.push(std::mem::take(&mut logits));
        let pos = start + prompt.len() + step;
        logits = model
            .forward(&Batch::one(next, pos, seq), state, pool)
            .expect("decode");
    }
    all.push(logits);
    (out, all)
}

fn n_layer() -> usize {
    model().hparams().n_layer
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

/// Every cache gives the contiguous cache's tokens and logits, bit for bit, in f32 and in
/// f16 storage. f16 against f32 storage is a different computation: the first divergence of
/// their greedy continuations is printed with the f32 run's top-2 gap there.
#[test]
fn greedy_generation_is_the_same_through_every_cache_in_f32_and_f16() {
    let model = model();
    let pool = pool();
    let prompt = &cases(&common::data_dir("llama"))[0].prompt;
    let (n_ctx, n_new, row) = (prompt.len() + 40, 32, model.kv_row_len());
    let l = n_layer();
    let mut references = Vec::new();
    for ty in [KvType::F32, KvType::F16] {
        let reference = {
            let cache = ContiguousKvCache::with_type(l, 1, n_ctx, row, ty).unwrap();
            greedy(&mut model.new_state_with(cache), prompt, 0, 0, n_new, &pool)
        };
        let caches: Vec<(&str, Box<dyn KvCache + Send + Sync>)> = vec![
            (
                "layered",
                Box::new(
                    LayeredKvCache::with_type(&model.hparams().windows(), 1, n_ctx, row, ty)
                        .unwrap(),
                ),
            ),
            (
                "multi-sequence",
                Box::new(MultiSequenceKvCache::new(l, 1, n_ctx, row, 16, ty).unwrap()),
            ),
            (
                "sliding window (window = context)",
                Box::new(SlidingWindowKvCache::with_type(l, 1, n_ctx, row, ty).unwrap()),
            ),
        ];
        for (name, cache) in caches {
            let mut state = model.new_state_with(cache);
            let got = greedy(&mut state, prompt, 0, 0, n_new, &pool);
            assert_eq!(got.0, reference.0, "{name} {ty}: tokens");
            assert!(got.1 == reference.1, "{name} {ty}: logits bit for bit");
        }
        references.push(reference);
    }
    let (f32_run, f16_run) = (&references[0], &references[1]);
    match f32_run.0.iter().zip(&f16_run.0).position(|(a, b)| a != b) {
        None => println!("f16 storage: the same {n_new} tokens as f32 storage"),
        Some(i) => {
            let mut sorted = f32_run.1[i].clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            println!(
                "f16 storage: the same tokens as f32 storage up to step {i}, where f32's top-2 gap is {:.3}",
                sorted[0] - sorted[1]
            );
        }
    }
}

/// The quantized formats' drift against the f32 cache on a committed text: the text is run
/// in chunks of 32 tokens (so each chunk reads the earlier ones from the cache) with logits
/// at every position; perplexity of the text and the largest logit difference.
#[test]
fn quantized_storage_drift_on_a_committed_text() {
    let model = model();
    let pool = pool();
    let text = tokens(512);
    let row = model.kv_row_len();
    let run = |ty: KvType| -> (Vec<f32>, f64) {
        let cache = ContiguousKvCache::with_type(n_layer(), 1, text.len(), row, ty).unwrap();
        let mut state = model.new_state_with(cache);
        let mut logits = Vec::new();
        for (c, chunk) in text.chunks(32).enumerate() {
            let mut batch = Batch::new();
            for (i, &token) in chunk.iter().enumerate() {
                batch.push(BatchEntry {
                    token,
                    pos: c * 32 + i,
                    seq: 0,
                    logits: true,
                });
            }
            logits.extend(model.forward(&batch, &mut state, &pool).expect("chunk"));
        }
        let v = model.n_vocab();
        let mut nll = 0f64;
        for (i, next) in text.iter().enumerate().skip(1) {
            let row = &logits[(i - 1) * v..][..v];
            let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
            nll -= row[*next as usize] as f64 - max - sum.ln();
        }
        (logits, (nll / (text.len() - 1) as f64).exp())
    };
    let (base, ppl32) = run(KvType::F32);
    println!(
        "f32 cache: perplexity {ppl32:.4} over {} tokens",
        text.len()
    );
    for (ty, max_ppl_change) in [
        (KvType::F16, 0.01),
        (KvType::Q8_0, 0.02),
        (KvType::Q4_0, 0.25),
    ] {
        let (logits, ppl) = run(ty);
        let diff = max_diff(&logits, &base);
        let v = model.n_vocab();
        let worst_cos = logits
            .chunks(v)
            .zip(base.chunks(v))
            .map(|(a, b)| cosine(a, b))
            .fold(1f64, f64::min);
        println!(
            "{ty} cache: perplexity {ppl:.4} ({:+.3}%), max |logit diff| {diff:.4}, worst cosine {worst_cos:.6}",
            (ppl / ppl32 - 1.0) * 100.0
        );
        assert!(
            (ppl / ppl32 - 1.0).abs() < max_ppl_change,
            "{ty}: perplexity {ppl} against {ppl32}"
        );
    }
}

#[test]
fn two_continuations_of_a_forked_500_token_prefix_hold_it_once() {
    let model = model();
    let pool = pool();
    let prefix = tokens(500);
    let (n_ctx, n_new, row) = (560, 16, model.kv_row_len());
    let mut cache = MultiSequenceKvCache::new(n_layer(), 2, n_ctx, row, 16, KvType::F16).unwrap();
    let block = cache.block_bytes();
    cache = cache.with_max_blocks(1000);
    let mut state = model.new_state_with(cache);
    let logits = model
        .forward(&Batch::prompt(&prefix, 0, 0), &mut state, &pool)
        .expect("prefix");
    let prefix_blocks = 500usize.div_ceil(16);
    assert_eq!(state.cache.bytes(), prefix_blocks * block);
    state.cache.copy_sequence(0, 1).unwrap();
    assert_eq!(state.cache.bytes(), prefix_blocks * block, "a fork is free");
    // Two different first tokens: the best and the second best.
    let first = argmax(&logits) as u32;
    let mut masked = logits.clone();
    masked[first as usize] = f32::NEG_INFINITY;
    let second = argmax(&masked) as u32;
    let a = greedy(&mut state, &[first], 500, 0, n_new, &pool);
    let b = greedy(&mut state, &[second], 500, 1, n_new, &pool);
    // Positions 500..517: the block holding 496..511 is copied once, and each sequence
    // has its own block 512..527.
    let both = (prefix_blocks + 1 + 2) * block;
    println!(
        "fork of a 500-token prefix, two continuations of {} tokens: {} bytes ({} blocks of {block}); two independent caches: {}",
        n_new + 1,
        state.cache.bytes(),
        state.cache.bytes() / block,
        2 * (prefix_blocks + 1) * block
    );
    assert_eq!(state.cache.bytes(), both);
    for (first, (tokens, logits)) in [(first, a), (second, b)] {
        let mut alone = model.new_state(n_ctx, 1);
        model
            .forward(&Batch::prompt(&prefix, 0, 0), &mut alone, &pool)
            .expect("prefix");
        let (t, l) = greedy(&mut alone, &[first], 500, 0, n_new, &pool);
        assert_eq!(t, tokens, "continuation from {first}");
        assert_eq!(l, logits, "continuation from {first}: logits bit for bit");
    }
}

#[test]
fn a_restored_state_continues_as_the_uninterrupted_run() {
    let model = model();
    let pool = pool();
    let prompt = &cases(&common::data_dir("llama"))[3].prompt;
    let n_ctx = prompt.len() + 40;
    let mut state = model.new_state(n_ctx, 1);
    let (_, logits) = greedy(&mut state, prompt, 0, 0, 8, &pool);
    // The state now holds the prompt and the 8 generated tokens; the next comes from the
    // last logits.
    let pos = prompt.len() + 8;
    let mut file = Vec::new();
    save_sequence(&state.cache, 0, &mut file).unwrap();
    let next = argmax(logits.last().unwrap()) as u32;
    let uninterrupted = greedy(&mut state, &[next], pos, 0, 16, &pool);
    let mut restored = model.new_state(n_ctx, 1);
    load_sequence(&mut restored.cache, 0, &mut file.as_slice()).unwrap();
    assert_eq!(restored.cache.seq_len(0), pos);
    let resumed = greedy(&mut restored, &[next], pos, 0, 16, &pool);
    assert_eq!(resumed, uninterrupted);
}

#[test]
fn generation_continues_past_the_context_size_by_shifting() {
    let model = model();
    let pool = pool();
    let (n_ctx, n_keep, n_new) = (64, 4, 120);
    let prompt = tokens(40);
    let mut state = model.new_state(n_ctx, 1);
    let rotation = model.key_rotation();
    let mut logits = model
        .forward(&Batch::prompt(&prompt, 0, 0), &mut state, &pool)
        .expect("prompt");
    let mut pos = prompt.len();
    let mut shifts = 0;
    for _ in 0..n_new {
        if pos == n_ctx {
            // llama.cpp's context shift: keep the first n_keep, drop half of the rest.
            let discard = (pos - n_keep) / 2;
            state
                .cache
                .remove_positions(0, n_keep..n_keep + discard)
                .unwrap();
            state
                .cache
                .shift_positions(0, n_keep + discard..pos, -(discard as isize), &rotation)
                .unwrap();
            pos -= discard;
            shifts += 1;
            assert_eq!(state.cache.seq_len(0), pos);
        }
        let next = argmax(&logits) as u32;
        logits = model
            .forward(&Batch::one(next, pos, 0), &mut state, &pool)
            .expect("decode after a shift");
        assert!(logits.iter().all(|x| x.is_finite()));
        pos += 1;
    }
    println!("{n_new} tokens generated in a context of {n_ctx} with {shifts} shifts");
    assert!(shifts >= 3);
}

#[test]
fn a_prompt_sharing_a_1000_token_prefix_reuses_it() {
    let model = model();
    let pool = pool();
    let cached = tokens(1000);
    let mut prompt = cached.clone();
    prompt.extend(tokens(1020)[1000..].iter().map(|t| t + 1));
    let n_ctx = 1100;
    let row = model.kv_row_len();
    let cache = MultiSequenceKvCache::new(n_layer(), 2, n_ctx, row, 16, KvType::F16).unwrap();
    let mut state = model.new_state_with(cache);
    model
        .forward(&Batch::prompt(&cached, 0, 0), &mut state, &pool)
        .expect("cached prompt");
    let start = Instant::now();
    let n = reuse_prefix(&mut state.cache, &cached, 0, 1, &prompt).unwrap();
    let warm = model
        .forward(&Batch::prompt(&prompt[n..], n, 1), &mut state, &pool)
        .expect("rest of the prompt");
    let warm_time = start.elapsed();
    assert_eq!(n, 1000);
    let mut cold_state = model.new_state(n_ctx, 1);
    let start = Instant::now();
    let cold = model
        .forward(&Batch::prompt(&prompt, 0, 0), &mut cold_state, &pool)
        .expect("cold prompt");
    let cold_time = start.elapsed();
    println!(
        "time to first token, {} tokens sharing a 1,000-token prefix: reused {:.1} ms, cold {:.1} ms ({:.1}x)",
        prompt.len(),
        warm_time.as_secs_f64() * 1e3,
        cold_time.as_secs_f64() * 1e3,
        cold_time.as_secs_f64() / warm_time.as_secs_f64()
    );
    assert_eq!(argmax(&warm), argmax(&cold));
    assert!(cosine(&warm, &cold) > 0.9999, "{}", cosine(&warm, &cold));
}
