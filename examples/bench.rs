//! Prompt-processing and generation speed of a model, measured as llama.cpp's `llama-bench`
//! measures it, so the two can be compared side by side (`benches/side_by_side.py`).
//!
//! ```text
//! cargo run --release --example bench -- --model models/SmolLM2-135M-Instruct.Q4_1.gguf
//! cargo run --release --example bench -- --model M -p 512 -n 128 -t 2 -r 3 --json
//! ZIGLAMA_KERNELS=scalar cargo run --release --example bench -- -p 64 -n 16 -r 1
//! ```
//!
//! Two tests, each as `llama-bench` runs them:
//!
//! - **pp** (`-p`): a prompt of `p` tokens (the model's BOS, if it adds one, then random
//!   tokens) processed in one batch from an empty cache;
//! - **tg** (`-n`): `n` tokens decoded one at a time from an empty cache, each a random token
//!   (the speed of generation does not depend on which token is fed back).
//!
//! Each test runs once as a warm-up (the whole prompt for pp, one token for tg), then `r`
//! times from a cleared cache; the speed of a run is tokens over wall time, and the figures
//! are the mean and sample standard deviation of those speeds. Also reported: the load time
//! (file open to a model, tokenizer, state and thread pool ready to run) and the peak resident
//! memory of the process (`VmHWM` of `/proc/self/status`, Linux only), and the kernel set that
//! ran (`ZIGLAMA_KERNELS` caps it).
//!
//! `--json` prints one object: `{"pp_tok_s", "pp_std", "tg_tok_s", "tg_std", "load_s",
//! "peak_rss_mb", "kernels", "threads", "p", "n", "r", "model"}`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use ziglama::model::catalog::KnownModel;
use ziglama::model::model::{Batch, Model, State};
use ziglama::model::tokenizer::Tokenizer;
use ziglama::tensor::{Isa, ThreadPool};

/// Measure prompt processing (pp) and generation (tg) speed, as llama-bench does.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The GGUF file; without it, SmolLM2-135M-Instruct (fetched on first use).
    #[arg(short, long)]
    model: Option<PathBuf>,
    /// Prompt tokens processed in one batch (0: skip the pp test).
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    n_prompt: usize,
    /// Tokens generated one at a time (0: skip the tg test).
    #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
    n_gen: usize,
    /// Threads (the caller plus `t - 1` workers).
    #[arg(short = 't', long = "threads", default_value_t = 2)]
    threads: usize,
    /// Timed repetitions of each test (after one warm-up run).
    #[arg(short = 'r', long = "repetitions", default_value_t = 3)]
    reps: usize,
    /// Seed of the random prompt and generation tokens.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// SplitMix64: random token ids, reproducible from `--seed`.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn token(&mut self, n_vocab: usize) -> u32 {
        (self.next_u64() % n_vocab as u64) as u32
    }
}

/// Mean and sample standard deviation.
fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Peak resident set size in MiB (`VmHWM`), where the OS reports it.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

struct Bench<'a> {
    model: &'a Model,
    state: State,
    pool: ThreadPool,
    bos: Option<u32>,
    rng: SplitMix64,
}

impl Bench<'_> {
    /// One pp run: `p` tokens in one batch from an empty cache; returns seconds.
    fn prompt(&mut self, p: usize) -> Result<f64, Box<dyn std::error::Error>> {
        let n_vocab = self.model.n_vocab();
        let tokens: Vec<u32> = (0..p)
            .map(|i| match (i, self.bos) {
                (0, Some(b)) => b,
                _ => self.rng.token(n_vocab),
            })
            .collect();
        self.state.clear(0);
        let t = Instant::now();
        let logits =
            self.model
                .forward(&Batch::prompt(&tokens, 0, 0), &mut self.state, &self.pool)?;
        let s = t.elapsed().as_secs_f64();
        std::hint::black_box(logits);
        Ok(s)
    }

    /// One tg run: `n` tokens decoded one at a time from an empty cache; returns seconds.
    fn generate(&mut self, n: usize) -> Result<f64, Box<dyn std::error::Error>> {
        let n_vocab = self.model.n_vocab();
        self.state.clear(0);
        let mut token = self.bos.unwrap_or_else(|| self.rng.token(n_vocab));
        let t = Instant::now();
        for pos in 0..n {
            let logits =
                self.model
                    .forward(&Batch::one(token, pos, 0), &mut self.state, &self.pool)?;
            std::hint::black_box(logits);
            token = self.rng.token(n_vocab);
        }
        Ok(t.elapsed().as_secs_f64())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let path = match &args.model {
        Some(p) => p.clone(),
        None => KnownModel::SmolLM2.ensure()?,
    };
    let threads = args.threads.max(1);
    // As llama-bench: a context of p + n positions.
    let n_ctx = (args.n_prompt + args.n_gen).max(1);

    let t_load = Instant::now();
    let model = Model::load(&path)?;
    let tokenizer = Tokenizer::from_gguf(model.gguf())?;
    let state = model.new_state(n_ctx, 1);
    let pool = ThreadPool::new(threads);
    let load_s = t_load.elapsed().as_secs_f64();
    let bos = if tokenizer.add_bos() {
        tokenizer.bos()
    } else {
        None
    };
    drop(tokenizer);
    let kernels = Isa::active().to_string();

    let mut bench = Bench {
        model: &model,
        state,
        pool,
        bos,
        rng: SplitMix64(args.seed),
    };
    let mut pp = Vec::new();
    if args.n_prompt > 0 {
        bench.prompt(args.n_prompt)?;
        for _ in 0..args.reps {
            pp.push(args.n_prompt as f64 / bench.prompt(args.n_prompt)?);
        }
    }
    let mut tg = Vec::new();
    if args.n_gen > 0 {
        bench.generate(1)?;
        for _ in 0..args.reps {
            tg.push(args.n_gen as f64 / bench.generate(args.n_gen)?);
        }
    }
    let (pp_mean, pp_std) = mean_std(&pp);
    let (tg_mean, tg_std) = mean_std(&tg);
    let rss = peak_rss_mb();
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();

    if args.json {
        let report = serde_json::json!({
            "model": name,
            "kernels": kernels,
            "threads": threads,
            "p": args.n_prompt,
            "n": args.n_gen,
            "r": args.reps,
            "pp_tok_s": pp_mean,
            "pp_std": pp_std,
            "tg_tok_s": tg_mean,
            "tg_std": tg_std,
            "load_s": load_s,
            "peak_rss_mb": rss,
        });
        println!("{report}");
    } else {
        println!("| model | kernels | threads | test | t/s |");
        println!("|---|---|---|---|---|");
        if args.n_prompt > 0 {
            println!(
                "| {name} | {kernels} | {threads} | pp{} | {pp_mean:.2} ± {pp_std:.2} |",
                args.n_prompt
            );
        }
        if args.n_gen > 0 {
            println!(
                "| {name} | {kernels} | {threads} | tg{} | {tg_mean:.2} ± {tg_std:.2} |",
                args.n_gen
            );
        }
        println!();
        match rss {
            Some(mb) => println!("load {load_s:.3} s, peak resident memory {mb:.1} MiB"),
            None => println!("load {load_s:.3} s, peak resident memory unknown"),
        }
    }
    Ok(())
}
