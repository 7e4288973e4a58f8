//! Criterion bench of the KV cache: per-token decode time at context lengths 128, 512, 1,024
//! and 2,048 with the cache, against recomputing the whole prefix without it (SmolLM2).
//!
//! ```text
//! cargo bench --bench kv_cache                     # everything (the recomputations are slow)
//! cargo bench --bench kv_cache -- with_cache       # only the cached decode steps
//! cargo bench --bench kv_cache -- --test           # smoke run: each bench once
//! ```
//!
//! - `with_cache/<n>`: one decoding step at position `n` of a cache holding `n` positions;
//!   the step's position is removed again after each iteration, so every iteration sees the
//!   same context.
//! - `recompute/<n>`: the next token without a cache: all `n + 1` tokens in one batch from an
//!   empty state, logits for the last only.
//!
//! `examples/kv_cache_bench.rs` prints the same comparison as a table (docs/kv_cache.md).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ziglama::model::catalog::KnownModel;
use ziglama::model::model::{Batch, Model};
use ziglama::nn::KvCache;
use ziglama::tensor::ThreadPool;

const CONTEXTS: [usize; 4] = [128, 512, 1024, 2048];

fn tokens(n: usize) -> Vec<u32> {
    (0..n).map(|i| 100 + (i as u32 * 7919) % 40000).collect()
}

fn bench(c: &mut Criterion) {
    let model = Model::load(KnownModel::SmolLM2.ensure().expect("SmolLM2")).expect("load");
    let pool = ThreadPool::new(2);
    let mut group = c.benchmark_group("with_cache");
    group.sample_size(20);
    for n in CONTEXTS {
        let prompt = tokens(n);
        let mut state = model.new_state(n + 1, 1);
        model
            .forward(&Batch::prompt(&prompt, 0, 0), &mut state, &pool)
            .expect("prefill");
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                let logits = model
                    .forward(&Batch::one(42, n, 0), &mut state, &pool)
                    .expect("decode");
                state.cache.remove_positions(0, n..n + 1).expect("remove");
                black_box(logits)
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("recompute");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for n in CONTEXTS {
        let prompt = tokens(n + 1);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                let mut state = model.new_state(n + 1, 1);
                black_box(
                    model
                        .forward(&Batch::prompt(&prompt, 0, 0), &mut state, &pool)
                        .expect("recompute"),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
