//! What a sliding-window KV cache buys: memory and decode time of a model with sliding-window
//! layers (Gemma 3 by default) at two positions.
//!
//! ```text
//! cargo run --release --example sliding_window
//! cargo run --release --example sliding_window -- --positions 500,2000 --steps 16 --threads 2
//! ```
//!
//! For each position `p` it fills a cache to `p` (one prompt batch), then times `--steps`
//! decoding steps from `p` (mean milliseconds per token), and times attention alone, for one
//! sliding-window layer and one global layer, at `p` (the cost that grows with the position in
//! a global layer and stays flat in a windowed one). It prints the cache's bytes and the
//! positions each kind of layer holds.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use ziglama::model::catalog::KnownModel;
use ziglama::model::model::{argmax, Batch, Model};
use ziglama::nn::attention::{causal_attention, BatchKv};
use ziglama::tensor::ThreadPool;

/// Memory and decode time of a sliding-window model at several positions.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The GGUF file; without it, Gemma 3 270M (fetched on first use).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Positions to measure at, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "500,2000")]
    positions: Vec<usize>,
    /// Decoding steps timed at each position.
    #[arg(long, default_value_t = 16)]
    steps: usize,
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
        None => KnownModel::Gemma3.ensure()?,
    };
    let model = Model::load(&path)?;
    let pool = ThreadPool::new(args.threads.max(1));
    let hp = model.hparams();
    let windows = hp.windows();
    let local = windows.iter().position(Option::is_some);
    let global = windows.iter().position(Option::is_none);
    println!(
        "{}: {} layers, {} with a sliding window ({:?}), {} threads",
        path.display(),
        hp.n_layer,
        windows.iter().filter(|w| w.is_some()).count(),
        windows.iter().flatten().next(),
        args.threads
    );
    for &p in &args.positions {
        let n_ctx = p + args.steps + 1;
        let mut state = model.new_state(n_ctx, 1);
        // Any tokens will do: the cost does not depend on them.
        let prompt: Vec<u32> = (0..p).map(|i| 1000 + (i as u32 * 7919) % 20000).collect();
        let mut logits = model.forward(&Batch::prompt(&prompt, 0, 0), &mut state, &pool)?;
        let start = Instant::now();
        for step in 0..args.steps {
            let next = argmax(&logits) as u32;
            logits = model.forward(&Batch::one(next, p + step, 0), &mut state, &pool)?;
        }
        let per_token = start.elapsed().as_secs_f64() * 1e3 / args.steps.max(1) as f64;
        let attention_ms = |layer: Option<usize>| -> Result<f64, Box<dyn std::error::Error>> {
            let Some(layer) = layer else { return Ok(0.0) };
            let shape = hp.layers[layer].attention;
            let q = vec![0.01f32; shape.n_head * shape.head_dim];
            let mut out = vec![0f32; q.len()];
            let pos = p + args.steps - 1;
            let reps = 50;
            let start = Instant::now();
            for _ in 0..reps {
                causal_attention(
                    &shape,
                    layer,
                    &q,
                    BatchKv::EMPTY,
                    &[pos],
                    &[0],
                    &state.cache,
                    &mut out,
                    &pool,
                )?;
            }
            Ok(start.elapsed().as_secs_f64() * 1e3 / reps as f64)
        };
        let (a_local, a_global) = (attention_ms(local)?, attention_ms(global)?);
        let row_len = hp.layers[0].attention.n_head_kv * hp.layers[0].attention.head_dim;
        // Keys and values, f16, every layer holding every position.
        let full_cache_bytes = hp.n_layer * 2 * n_ctx * row_len * 2;
        let held = |l: Option<usize>| l.map_or(0, |l| state.cache.held(l, 0));
        println!(
            "position {p:5}: decode {per_token:7.2} ms/token | attention of one layer: windowed {a_local:.3} ms, global {a_global:.3} ms | held: windowed {}, global {} | KV cache {:.1} MiB (a full cache: {:.1} MiB)",
            held(local),
            held(global),
            state.cache.bytes() as f64 / 1048576.0,
            full_cache_bytes as f64 / 1048576.0,
        );
    }
    Ok(())
}
