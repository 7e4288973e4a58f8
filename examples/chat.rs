//! Chat with a model in the terminal: each line you type is a user message; the reply is
//! streamed as it is generated, through the model's chat template (the GGUF
//! `tokenizer.chat_template`). The conversation is kept, and the KV cache with it, so each
//! turn only runs its new tokens. `/quit` or end of input ends the chat; `/reset` starts a
//! new conversation.
//!
//! ```text
//! cargo run --release --example chat
//! cargo run --release --example chat -- --system "You are a pirate." --temperature 0.7
//! echo "What is the capital of France?" | cargo run --release --example chat
//! ```
//!
//! Without `--model` it runs SmolLM2-135M-Instruct, fetched on first use. Each reply is
//! followed by a newline on standard output; prompts and statistics go to standard error,
//! and only when standard input is a terminal.

use std::io::{BufRead, IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ziglama::infer::generator::{GenerationConfig, GenerationError, TextGenerator};
use ziglama::infer::sampling::{Preset, SamplingConfig};
use ziglama::infer::stream::FlushPolicy;
use ziglama::model::catalog::KnownModel;
use ziglama::model::chat::Message;
use ziglama::model::model::Model;

/// Chat with a model.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The GGUF file; without it, SmolLM2-135M-Instruct (fetched on first use).
    #[arg(long)]
    model: Option<PathBuf>,
    /// A system message that opens the conversation.
    #[arg(long)]
    system: Option<String>,
    /// Most tokens per reply.
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// Sampling temperature; 0 picks the most likely token (greedy).
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Top-k (0 = off).
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    /// Top-p (1 = off).
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Min-p (0 = off).
    #[arg(long, default_value_t = 0.05)]
    min_p: f32,
    /// Repetition penalty (1 = off).
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    /// Seed of the sampler's random numbers.
    #[arg(long, default_value_t = 0)]
    seed: u32,
    /// Positions of the conversation the KV cache holds; older turns are dropped beyond it.
    #[arg(long, default_value_t = 2048)]
    ctx_size: usize,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let path = match &args.model {
        Some(p) => p.clone(),
        None => KnownModel::SmolLM2.ensure()?,
    };
    let model = Model::load(&path)?;
    let sampling = SamplingConfig {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        min_p: args.min_p,
        penalty_repeat: args.repeat_penalty,
        ..SamplingConfig::preset(Preset::Balanced)
    };
    let config = GenerationConfig::default()
        .with_sampling(sampling)
        .with_seed(args.seed)
        .with_max_tokens(args.max_tokens)
        .with_flush_policy(FlushPolicy::EveryToken);
    let mut generator = TextGenerator::builder(&model)
        .config(config)
        .context_size(args.ctx_size.clamp(1, model.n_ctx_train().max(1)))
        .threads(args.threads)
        .build()?;
    generator.chat_template()?;

    let interactive = std::io::stdin().is_terminal();
    let opening: Vec<Message> = args.system.iter().map(Message::system).collect();
    let mut conversation = opening.clone();
    let stdout = std::io::stdout();
    let mut lines = std::io::stdin().lock().lines();
    loop {
        if interactive {
            eprint!("> ");
        }
        let Some(line) = lines.next() else { break };
        let line = line?;
        match line.trim() {
            "/quit" | "/exit" => break,
            "/reset" => {
                conversation = opening.clone();
                continue;
            }
            "" => continue,
            _ => {}
        }
        conversation.push(Message::user(line));
        let mut out = stdout.lock();
        let result = loop {
            let streamed = generator.stream(conversation.clone(), |chunk| {
                match out.write_all(chunk.as_bytes()).and_then(|()| out.flush()) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(_) => ControlFlow::Break(()),
                }
            });
            match streamed {
                // Too long for the context: drop the oldest exchange and try again.
                Err(GenerationError::PromptTooLong { .. })
                    if conversation.len() > opening.len() + 1 =>
                {
                    let first = opening.len();
                    let n = if conversation.len() > first + 2 { 2 } else { 1 };
                    conversation.drain(first..first + n);
                }
                other => break other?,
            }
        };
        writeln!(out)?;
        out.flush()?;
        if interactive {
            let t = &result.timings;
            eprintln!(
                "[{} tokens, {:.1} t/s, first after {:.0} ms, stop: {}]",
                result.tokens.len(),
                t.generated_tokens_per_second().unwrap_or(0.0),
                t.time_to_first_token.map_or(0.0, |d| d.as_secs_f64() * 1e3),
                result.stop_reason,
            );
        }
        conversation.push(Message::assistant(result.text));
    }
    Ok(())
}
