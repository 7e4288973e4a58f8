//! Generate text with a model through `TextGenerator`: tokenize a prompt, run it in one
//! batch, then decode one token per step with any sampler of the catalogue (greedy by
//! default) until an end-of-generation token, a stop string or the token budget.
//!
//! ```text
//! cargo run --release --example generate -- --prompt "The capital of France is"
//! cargo run --release --example generate -- --prompt-file chat.txt --max-tokens 64 --json
//! cargo run --release --example generate -- --prompt "Once" --temperature 0.8 --seed 42 --stream
//! cargo run --release --example generate -- --chat --prompt "Write a haiku" --temperature 0.7 --stop "\n\n"
//! cargo run --release --example generate -- --prompt "Once" --contrastive-alpha 0.6 --contrastive-k 4
//! ```
//!
//! Without `--model` it runs SmolLM2-135M-Instruct, fetched on first use. Special-token text
//! in the prompt (`<|im_start|>`, ...) is parsed as the special tokens; `--chat` instead
//! wraps the prompt as a user message through the model's chat template. The sampler flags
//! are llama.cpp's (`--top-k`, `--min-p`, `--mirostat`, `--dry-multiplier`, ...) plus the
//! samplers beyond it (`--tail-free`, `--epsilon`, `--eta`, `--no-repeat-ngram`); a
//! temperature of 0 (the default) picks the most likely token after them.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use ziglama::infer::generator::{ContrastiveSearch, GenerationConfig, Prompt, TextGenerator};
use ziglama::infer::sampling::{MirostatMode, Preset, SamplerKind, SamplingConfig};
use ziglama::infer::stream::{FlushPolicy, StopReason};
use ziglama::model::catalog::KnownModel;
use ziglama::model::chat::Message;
use ziglama::model::model::{Batch, Model};
use ziglama::tensor::ThreadPool;

/// Sampling presets.
#[derive(Clone, Copy, ValueEnum)]
enum PresetArg {
    Creative,
    Balanced,
    Focused,
    Deterministic,
}

/// Where streamed text is cut.
#[derive(Clone, Copy, ValueEnum)]
enum FlushArg {
    Token,
    Word,
    Sentence,
    Line,
}

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
    /// Wrap the prompt as a user message through the model's chat template.
    #[arg(long)]
    chat: bool,
    /// A system message for --chat.
    #[arg(long, requires = "chat")]
    system: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Fewest tokens to generate (end-of-generation tokens are masked until then).
    #[arg(long, default_value_t = 0)]
    min_tokens: usize,
    /// Stop where the text reaches this string (repeatable; `\n` and `\t` are unescaped).
    #[arg(long = "stop")]
    stop: Vec<String>,
    /// Keep generating past end-of-generation tokens.
    #[arg(long)]
    ignore_eos: bool,
    /// Print the text as it is generated.
    #[arg(long)]
    stream: bool,
    /// Where streamed text is cut into chunks.
    #[arg(long, value_enum, default_value = "token")]
    flush: FlushArg,
    /// Print the prompt's text before the generated text.
    #[arg(long)]
    echo: bool,
    /// Record the top N log-probabilities of each token (shown with --json).
    #[arg(long, default_value_t = 0)]
    logprobs: usize,
    /// Start from a preset's sampling parameters (the flags below override them).
    #[arg(long, value_enum)]
    preset: Option<PresetArg>,
    /// Sampling temperature; 0 picks the most likely token (greedy).
    #[arg(long)]
    temperature: Option<f32>,
    /// Seed of the sampler's random numbers.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Top-k (0 = off).
    #[arg(long)]
    top_k: Option<usize>,
    /// Top-p (1 = off).
    #[arg(long)]
    top_p: Option<f32>,
    /// Min-p (0 = off).
    #[arg(long)]
    min_p: Option<f32>,
    /// Locally typical sampling (1 = off).
    #[arg(long)]
    typical: Option<f32>,
    /// Dynamic temperature range (0 = off).
    #[arg(long)]
    dynatemp_range: Option<f32>,
    /// Dynamic temperature exponent.
    #[arg(long)]
    dynatemp_exp: Option<f32>,
    /// Top-n-sigma (-1 = off).
    #[arg(long)]
    top_n_sigma: Option<f32>,
    /// XTC probability (0 = off).
    #[arg(long)]
    xtc_probability: Option<f32>,
    /// XTC threshold.
    #[arg(long)]
    xtc_threshold: Option<f32>,
    /// Mirostat version (0 = off, 1, 2).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=2))]
    mirostat: Option<u8>,
    /// Mirostat target surprise.
    #[arg(long)]
    mirostat_tau: Option<f32>,
    /// Mirostat learning rate.
    #[arg(long)]
    mirostat_eta: Option<f32>,
    /// Repetition penalty (1 = off).
    #[arg(long)]
    repeat_penalty: Option<f32>,
    /// Tokens the penalties look back over.
    #[arg(long)]
    repeat_last_n: Option<usize>,
    /// Frequency penalty (0 = off).
    #[arg(long)]
    frequency_penalty: Option<f32>,
    /// Presence penalty (0 = off).
    #[arg(long)]
    presence_penalty: Option<f32>,
    /// DRY multiplier (0 = off).
    #[arg(long)]
    dry_multiplier: Option<f32>,
    /// DRY base.
    #[arg(long)]
    dry_base: Option<f32>,
    /// DRY allowed length.
    #[arg(long)]
    dry_allowed_length: Option<usize>,
    /// Tokens DRY looks back over.
    #[arg(long)]
    dry_last_n: Option<usize>,
    /// Add BIAS to token ID's logit, as ID=BIAS or ID+BIAS/ID-BIAS (repeatable).
    #[arg(long = "logit-bias", value_parser = parse_bias)]
    logit_bias: Vec<(u32, f32)>,
    /// Tail-free sampling z (1 = off).
    #[arg(long)]
    tail_free: Option<f32>,
    /// Epsilon sampling floor (0 = off).
    #[arg(long)]
    epsilon: Option<f32>,
    /// Eta sampling (0 = off).
    #[arg(long)]
    eta: Option<f32>,
    /// Never repeat an n-gram of this size (0 = off).
    #[arg(long)]
    no_repeat_ngram: Option<usize>,
    /// Contrastive search: the degeneration penalty's weight (with --contrastive-k).
    #[arg(long, requires = "contrastive_k")]
    contrastive_alpha: Option<f32>,
    /// Contrastive search: candidates per step.
    #[arg(long, requires = "contrastive_alpha")]
    contrastive_k: Option<usize>,
    /// Context size (positions); default: the prompt and --max-tokens, at most the model's.
    #[arg(long)]
    ctx_size: Option<usize>,
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

/// `ID=BIAS`, `ID+BIAS` or `ID-BIAS`.
fn parse_bias(s: &str) -> Result<(u32, f32), String> {
    let at = s
        .find(['=', '+', '-'])
        .ok_or_else(|| format!("{s:?}: expected ID=BIAS"))?;
    let id = s[..at]
        .parse()
        .map_err(|e| format!("{s:?}: token id: {e}"))?;
    let bias = match &s[at..at + 1] {
        "=" => &s[at + 1..],
        _ => &s[at..],
    };
    let bias: f32 = bias.parse().map_err(|e| format!("{s:?}: bias: {e}"))?;
    Ok((id, bias))
}

/// `\n`, `\t` and `\\` in a command-line string.
fn unescape(s: &str) -> String {
    s.replace("\\n", "\n")
        .replace("\\t", "\t")
        .replace("\\\\", "\\")
}

/// The sampling parameters the flags describe.
fn sampling(args: &Args) -> SamplingConfig {
    let mut s = match args.preset {
        Some(PresetArg::Creative) => SamplingConfig::preset(Preset::Creative),
        Some(PresetArg::Balanced) => SamplingConfig::preset(Preset::Balanced),
        Some(PresetArg::Focused) => SamplingConfig::preset(Preset::Focused),
        Some(PresetArg::Deterministic) | None => SamplingConfig::preset(Preset::Deterministic),
    };
    macro_rules! set {
        ($($flag:ident => $field:ident),* $(,)?) => {
            $(if let Some(v) = args.$flag { s.$field = v; })*
        };
    }
    set!(
        temperature => temperature, top_k => top_k, top_p => top_p, min_p => min_p,
        typical => typical_p, dynatemp_range => dynatemp_range, dynatemp_exp => dynatemp_exponent,
        top_n_sigma => top_n_sigma, xtc_probability => xtc_probability,
        xtc_threshold => xtc_threshold, mirostat_tau => mirostat_tau, mirostat_eta => mirostat_eta,
        repeat_penalty => penalty_repeat, repeat_last_n => penalty_last_n,
        frequency_penalty => penalty_freq, presence_penalty => penalty_present,
        dry_multiplier => dry_multiplier, dry_base => dry_base,
        dry_allowed_length => dry_allowed_length, dry_last_n => dry_penalty_last_n,
        tail_free => tail_free_z, epsilon => epsilon, eta => eta, no_repeat_ngram => no_repeat_ngram,
    );
    s.mirostat = match args.mirostat {
        Some(1) => MirostatMode::V1,
        Some(2) => MirostatMode::V2,
        Some(_) => MirostatMode::Off,
        None => s.mirostat,
    };
    s.logit_bias.extend(args.logit_bias.iter().copied());
    // The samplers beyond llama.cpp's chain run after it when asked for.
    let extra = [
        (args.tail_free.is_some(), SamplerKind::TailFree),
        (args.epsilon.is_some(), SamplerKind::Epsilon),
        (args.eta.is_some(), SamplerKind::Eta),
        (args.no_repeat_ngram.is_some(), SamplerKind::NoRepeatNgram),
    ];
    for (on, kind) in extra {
        if on && !s.samplers.contains(&kind) {
            s.samplers.push(kind);
        }
    }
    s
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

fn stop_name(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndOfGeneration(_) => "eog",
        StopReason::StopToken(_) => "stop_token",
        StopReason::StopString(_) => "stop_string",
        StopReason::MaxTokens => "max_tokens",
        StopReason::ContextFull => "context",
        StopReason::Cancelled => "cancelled",
        _ => "other",
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let t_load = Instant::now();
    let path = match &args.model {
        Some(p) => p.clone(),
        None => KnownModel::SmolLM2.ensure()?,
    };
    let model = Model::load(&path)?;
    let text = match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| format!("cannot read the prompt file {}: {e}", f.display()))?,
        (None, None) => return Err("give --prompt or --prompt-file".into()),
    };
    let prompt = if args.chat {
        let mut messages: Vec<Message> = args.system.iter().map(Message::system).collect();
        messages.push(Message::user(text));
        Prompt::Chat(messages)
    } else {
        Prompt::Text(text)
    };

    let mut config = GenerationConfig::default()
        .with_sampling(sampling(args))
        .with_seed(args.seed as u32)
        .with_max_tokens(args.max_tokens)
        .with_min_tokens(args.min_tokens)
        .with_stop_strings(args.stop.iter().map(|s| unescape(s)))
        .with_logprobs(args.logprobs)
        .with_echo(args.echo)
        .with_flush_policy(match args.flush {
            FlushArg::Token => FlushPolicy::EveryToken,
            FlushArg::Word => FlushPolicy::WordBoundary,
            FlushArg::Sentence => FlushPolicy::SentenceBoundary,
            FlushArg::Line => FlushPolicy::Newline,
        });
    if args.ignore_eos {
        config = config.ignoring_eos();
    }
    if let (Some(alpha), Some(k)) = (args.contrastive_alpha, args.contrastive_k) {
        config = config.with_contrastive(ContrastiveSearch::new(alpha, k));
    }
    let pool = std::sync::Arc::new(ThreadPool::new(args.threads.max(1)));
    let mut generator = TextGenerator::builder(&model)
        .config(config)
        .thread_pool(pool.clone())
        .context_size(1)
        .build()?;
    let (prompt_tokens, _) = generator.prompt_tokens(prompt.clone())?;
    let n_ctx = args
        .ctx_size
        .unwrap_or(prompt_tokens.len() + args.max_tokens)
        .clamp(1, model.n_ctx_train().max(1));
    let config = generator.config().clone();
    let mut generator = TextGenerator::builder(&model)
        .config(config)
        .thread_pool(pool.clone())
        .context_size(n_ctx)
        .build()?;
    let load_ms = t_load.elapsed().as_secs_f64() * 1e3;

    if let Some(out) = &args.logits_out {
        if !prompt_tokens.is_empty() {
            let mut state = model.new_state(prompt_tokens.len(), 1);
            let logits = model.forward(&Batch::prompt(&prompt_tokens, 0, 0), &mut state, &pool)?;
            let bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(out, bytes)
                .map_err(|e| format!("cannot write the logits to {}: {e}", out.display()))?;
        }
    }

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut write_error = None;
    let result = if args.stream && !args.json {
        generator.stream(prompt, |chunk| {
            match out.write_all(chunk.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    write_error = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?
    } else {
        generator.generate(prompt)?
    };
    if let Some(e) = write_error {
        return Err(e.into());
    }
    let t = &result.timings;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    if args.json {
        let logprobs: Vec<serde_json::Value> = result
            .logprobs
            .iter()
            .map(|lp| {
                let top: Vec<serde_json::Value> = lp
                    .top
                    .iter()
                    .flat_map(|s| &s.raw)
                    .map(|t| serde_json::json!({"id": t.id, "logprob": t.logprob}))
                    .collect();
                serde_json::json!({"token": lp.token, "logprob": lp.logprob, "top": top})
            })
            .collect();
        let report = serde_json::json!({
            "prompt_tokens": result.prompt_tokens,
            "tokens": result.tokens,
            "text": result.text,
            "stop_reason": stop_name(result.stop_reason),
            "logprobs": logprobs,
            "timings": {
                "load_ms": load_ms,
                "prompt_ms": ms(t.prompt_time),
                "prompt_tokens_per_s": t.prompt_tokens_per_second(),
                "time_to_first_token_ms": t.time_to_first_token.map(ms),
                "decode_ms": ms(t.decode_time()),
                "decode_tokens_per_s": t.generated_tokens_per_second(),
                "token_latencies_ms": t.token_latencies.iter().copied().map(ms).collect::<Vec<_>>(),
                "threads": pool.n_threads(),
            },
        });
        writeln!(out, "{report}")?;
    } else {
        if !args.stream {
            out.write_all(result.text.as_bytes())?;
        }
        writeln!(out)?;
        eprintln!(
            "[{} prompt tokens in {:.1} ms ({:.1} t/s), {} tokens in {:.1} ms ({:.1} t/s), first after {:.1} ms, stop: {}]",
            t.prompt_tokens,
            ms(t.prompt_time),
            t.prompt_tokens_per_second().unwrap_or(0.0),
            result.tokens.len(),
            ms(t.decode_time()),
            t.generated_tokens_per_second().unwrap_or(0.0),
            t.time_to_first_token.map_or(0.0, ms),
            result.stop_reason,
        );
    }
    Ok(())
}
