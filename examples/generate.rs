//! Generate text with a model: tokenize a prompt, run it in one batch, then decode one token
//! per step (greedy, or sampled with a temperature) until an end-of-generation token or the
//! token budget.
//!
//! ```text
//! cargo run --release --example generate -- --prompt "The capital of France is"
//! cargo run --release --example generate -- --prompt-file chat.txt --max-tokens 64 --json
//! cargo run --release --example generate -- --prompt "Once" --temperature 0.8 --seed 42
//! ```
//!
//! Without `--model` it runs SmolLM2-135M-Instruct, fetched on first use. Special-token text
//! in the prompt (`<|im_start|>`, ...) is parsed as the special tokens.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use ziglama::model::catalog::KnownModel;
use ziglama::model::model::{argmax, Batch, Model};
use ziglama::model::tokenizer::Tokenizer;
use ziglama::model::ModelError;
use ziglama::tensor::ThreadPool;

/// Generate a continuation of a prompt.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The GGUF file; without it, SmolLM2-135M-Instruct (fetched on first use).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The prompt text.
    #[arg(
        long,
        conflicts_with = "prompt_file",
        required_unless_present = "prompt_file"
    )]
    prompt: Option<String>,
    /// A file holding the prompt text.
    #[arg(long)]
    prompt_file: Option<PathBuf>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Sampling temperature; 0 picks the most likely token (greedy).
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Seed of the sampler's random numbers (with a temperature above 0).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Print one JSON object (prompt tokens, tokens, text, stop reason, timings) instead of
    /// the text.
    #[arg(long)]
    json: bool,
    /// Write the last prompt position's logits to this file, as little-endian f32.
    #[arg(long)]
    logits_out: Option<PathBuf>,
}

/// A small seeded random number generator (SplitMix64), enough for sampling in an example;
/// the sampler library belongs to ziglama-infer.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Greedy with `temperature <= 0`, else a draw from `softmax(logits / temperature)`.
fn sample(logits: &[f32], temperature: f32, rng: &mut SplitMix64) -> u32 {
    if temperature <= 0.0 {
        return argmax(logits) as u32;
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = logits
        .iter()
        .map(|&l| (f64::from(l - max) / f64::from(temperature)).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut r = rng.next_f64() * total;
    for (i, w) in weights.iter().enumerate() {
        if r < *w {
            return i as u32;
        }
        r -= w;
    }
    argmax(logits) as u32
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("generate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let t_load = Instant::now();
    let path = match &args.model {
        Some(p) => p.clone(),
        None => KnownModel::SmolLM2.ensure()?,
    };
    let model = Model::load(&path)?;
    let tokenizer = Tokenizer::from_gguf(model.gguf())?;
    let load_ms = t_load.elapsed().as_secs_f64() * 1e3;

    let text = match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| format!("cannot read the prompt file {}: {e}", f.display()))?,
        (None, None) => return Err("give --prompt or --prompt-file".into()),
    };
    let prompt = tokenizer.encode(&text, true, true)?;
    if prompt.is_empty() {
        return Err("the prompt has no tokens".into());
    }
    let n_ctx = model.n_ctx_train();
    if prompt.len() > n_ctx {
        return Err(ModelError::ContextOverflow {
            n_tokens: prompt.len(),
            n_ctx,
        }
        .into());
    }
    let n_ctx_used = (prompt.len() + args.max_tokens).min(n_ctx);
    let mut state = model.new_state(n_ctx_used, 1);
    let pool = ThreadPool::new(args.threads.max(1));
    let mut rng = SplitMix64(args.seed);

    let t_prompt = Instant::now();
    let mut logits = model.forward(&Batch::prompt(&prompt, 0, 0), &mut state, &pool)?;
    let prompt_ms = t_prompt.elapsed().as_secs_f64() * 1e3;
    if let Some(out) = &args.logits_out {
        let bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(out, bytes)
            .map_err(|e| format!("cannot write the logits to {}: {e}", out.display()))?;
    }

    let t_decode = Instant::now();
    let mut tokens = Vec::new();
    let mut stop_reason = "max_tokens";
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (step, pos) in (0..args.max_tokens).zip(prompt.len()..) {
        let token = sample(&logits, args.temperature, &mut rng);
        if tokenizer.is_eog(token) {
            stop_reason = "eog";
            break;
        }
        tokens.push(token);
        if !args.json {
            out.write_all(tokenizer.token_to_piece(token))?;
            out.flush()?;
        }
        if step + 1 == args.max_tokens {
            break;
        }
        if pos >= n_ctx {
            stop_reason = "context";
            break;
        }
        logits = model.forward(&Batch::one(token, pos, 0), &mut state, &pool)?;
    }
    let decode_ms = t_decode.elapsed().as_secs_f64() * 1e3;
    // Decode steps run: one per generated token after the first.
    let decode_steps = tokens.len().saturating_sub(1).max(1) as f64;
    let text_out = String::from_utf8_lossy(&tokenizer.decode(&tokens)).into_owned();
    if args.json {
        let report = serde_json::json!({
            "prompt_tokens": prompt,
            "tokens": tokens,
            "text": text_out,
            "stop_reason": stop_reason,
            "timings": {
                "load_ms": load_ms,
                "prompt_ms": prompt_ms,
                "prompt_tokens_per_s": prompt.len() as f64 / (prompt_ms / 1e3),
                "decode_ms": decode_ms,
                "decode_tokens_per_s": decode_steps / (decode_ms / 1e3),
                "threads": pool.n_threads(),
            },
        });
        writeln!(out, "{report}")?;
    } else {
        writeln!(out)?;
        eprintln!(
            "[{} prompt tokens in {prompt_ms:.1} ms ({:.1} t/s), {} tokens in {decode_ms:.1} ms ({:.1} t/s), stop: {stop_reason}]",
            prompt.len(),
            prompt.len() as f64 / (prompt_ms / 1e3),
            tokens.len(),
            decode_steps / (decode_ms / 1e3),
        );
    }
    Ok(())
}
