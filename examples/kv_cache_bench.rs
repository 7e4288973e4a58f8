//! What the KV cache buys: per-token decode time at several context lengths with the cache,
//! against recomputing the whole prefix for every token without it (SmolLM2 by default).
//!
//! ```text
//! cargo run --release --example kv_cache_bench
//! cargo run --release --example kv_cache_bench -- --contexts 128,512,1024,2048 --steps 8 --threads 2
//! ```
//!
//! For each context length `n` it fills a cache with `n` tokens (one prompt batch), then times
//! `--steps` decoding steps (mean milliseconds per token). Without a cache, producing the next
//! token means running all `n + 1` tokens again (one batch, logits for the last only); that
//! is timed `--recompute-steps` times. It prints a Markdown table (docs/kv_cache.md quotes
//! it). The criterion version is `cargo bench --bench kv_cache` (benches/kv_cache.rs).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use ziglama::model::catalog::KnownModel;
use ziglama::model::model::{argmax, Batch, Model};
use ziglama::tensor::ThreadPool;

/// Per-token decode time with and without a KV cache.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The GGUF file; without it, SmolLM2-135M-Instruct (fetched on first use).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Context lengths to measure at, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "128,512,1024,2048")]
    contexts: Vec<usize>,
    /// Decoding steps timed with the cache.
    #[arg(long, default_value_t = 16)]
    steps: usize,
    /// Whole-prefix recomputations timed without the cache.
    #[arg(long, default_value_t = 2)]
    recompute_steps: usize,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let path = match args.model {
        Some(p) => p,
        None => KnownModel::SmolLM2.ensure()?,
    };
    let model = Model::load(&path)?;
    let pool = ThreadPool::new(args.threads);
    println!("{}, {} threads", path.display(), args.threads);
    println!("| context | with cache (ms/token) | recomputing the prefix (ms/token) | ratio |");
    println!("|---:|---:|---:|---:|");
    for &n in &args.contexts {
        // Any tokens will do: the cost does not depend on them.
        let tokens: Vec<u32> = (0..n + args.steps.max(args.recompute_steps) + 1)
            .map(|i| 1000 + (i as u32 * 7919) % 20000)
            .collect();
        let n_ctx = n + args.steps + 1;
        let mut state = model.new_state(n_ctx, 1);
        let mut logits = model.forward(&Batch::prompt(&tokens[..n], 0, 0), &mut state, &pool)?;
        let start = Instant::now();
        for step in 0..args.steps {
            let next = argmax(&logits) as u32;
            logits = model.forward(&Batch::one(next, n + step, 0), &mut state, &pool)?;
        }
        let cached = start.elapsed().as_secs_f64() * 1e3 / args.steps.max(1) as f64;
        let start = Instant::now();
        for step in 0..args.recompute_steps {
            let mut fresh = model.new_state(n + step + 1, 1);
            model.forward(
                &Batch::prompt(&tokens[..n + step + 1], 0, 0),
                &mut fresh,
                &pool,
            )?;
        }
        let recompute = start.elapsed().as_secs_f64() * 1e3 / args.recompute_steps.max(1) as f64;
        println!(
            "| {n} | {cached:.2} | {recompute:.1} | {:.0}x |",
            recompute / cached
        );
    }
    Ok(())
}
