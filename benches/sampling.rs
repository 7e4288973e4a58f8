//! Criterion benches of the sampler chain: llama.cpp's default chain on one step's logits.
//!
//! ```text
//! cargo bench --bench sampling                     # everything, about a minute
//! cargo bench --bench sampling -- --test           # smoke run: each bench once
//! ```
//!
//! - `default_chain/<logits>`: one token with [`SamplingConfig::default`] (penalties, DRY,
//!   top-n-σ, top-k 40, typical, top-p 0.95, min-p 0.05, XTC, temperature 0.8, dist: llama.cpp's
//!   `common_params_sampling` defaults and order) on the real last-position logits of Gemma 3
//!   (262,144 tokens) and SmolLM2 (49,152), as `chain.sample(logits)` then `chain.accept(token)`:
//!   the candidate set filled from the logits, the chain applied, the token accepted. This is
//!   what llama.cpp's `llama_sampler_sample` does per token, and `benches/sampling_peer.py`
//!   times that call on the same logits for the side-by-side comparison (docs/sampling.md).
//! - `mirostat_v2_chain/<logits>`: llama.cpp's chain for `--mirostat 2` (temperature 0.8,
//!   Mirostat 2 with tau 5, eta 0.1), per token as above (`sampling_peer.py` times it too).
//! - `top_k_40/<logits>`: the candidate fill and top-k alone (the unfused path).

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ziglama::infer::sampling::{
    Candidates, LogitProcessor, MirostatMode, Sampler, SamplingConfig, TopK,
};

/// The committed golden logits (`ziglama-infer/tests/data/sampling/<name>.f32`).
fn logits(name: &str) -> Vec<f32> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ziglama-infer/tests/data/sampling")
        .join(format!("{name}.f32"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn bench_chain(c: &mut Criterion) {
    for name in ["gemma3", "smollm2"] {
        let logits = logits(name);
        let n = logits.len();
        let mut g = c.benchmark_group("default_chain");
        g.throughput(Throughput::Elements(1));
        let mut chain = SamplingConfig::default()
            .with_seed(1234)
            .build(n)
            .expect("default config");
        g.bench_function(format!("{name}_{n}"), |b| {
            b.iter(|| {
                let token = chain.sample(black_box(&logits)).unwrap();
                chain.accept(token);
                token
            })
        });
        g.finish();

        let mut g = c.benchmark_group("mirostat_v2_chain");
        let mut chain = SamplingConfig {
            mirostat: MirostatMode::V2,
            ..SamplingConfig::default()
        }
        .with_seed(1234)
        .build(n)
        .expect("mirostat config");
        g.bench_function(format!("{name}_{n}"), |b| {
            b.iter(|| {
                let token = chain.sample(black_box(&logits)).unwrap();
                chain.accept(token);
                token
            })
        });
        g.finish();

        let mut g = c.benchmark_group("top_k_40");
        let mut cands = Candidates::new();
        let mut top_k = TopK::new(40);
        g.bench_function(format!("{name}_{n}"), |b| {
            b.iter(|| {
                cands.fill_from_logits(black_box(&logits)).unwrap();
                top_k.apply(&mut cands).unwrap();
                cands.len()
            })
        });
        g.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_chain
}
criterion_main!(benches);
