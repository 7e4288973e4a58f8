//! Tokenize a text with a GGUF file's tokenizer and print the token ids as JSON, as
//! llama.cpp's `llama_tokenize` would.
//!
//! ```text
//! cargo run --release --example tokenize -- --text "Hello world"          # SmolLM2
//! cargo run --release --example tokenize -- --model my.gguf --text-file prompt.txt --special
//! {"tokens":[19556,905]}
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use ziglama::model::catalog::KnownModel;
use ziglama::model::gguf::GgufFile;
use ziglama::model::tokenizer::Tokenizer;

/// Print the tokens of a text as {"tokens":[...]}.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The GGUF file; without it, SmolLM2-135M-Instruct (fetched on first use).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The text to tokenize.
    #[arg(
        long,
        conflicts_with = "text_file",
        required_unless_present = "text_file"
    )]
    text: Option<String>,
    /// A file holding the text to tokenize (UTF-8).
    #[arg(long)]
    text_file: Option<PathBuf>,
    /// Parse special tokens written in the text (`<|im_start|>`) as tokens.
    #[arg(long)]
    special: bool,
    /// Add no BOS/EOS even if the vocabulary asks for them.
    #[arg(long)]
    no_bos: bool,
    /// Print the time taken and the speed to standard error.
    #[arg(long)]
    timings: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokenize: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let text = match (&args.text, &args.text_file) {
        (Some(t), _) => t.clone(),
        (None, Some(path)) => {
            let bytes =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            String::from_utf8(bytes).map_err(|e| {
                format!(
                    "{} is not UTF-8 (invalid byte at offset {})",
                    path.display(),
                    e.utf8_error().valid_up_to()
                )
            })?
        }
        (None, None) => return Err("give --text or --text-file".into()),
    };
    let path = match &args.model {
        Some(p) => p.clone(),
        None => KnownModel::SmolLM2.ensure()?,
    };
    let load = Instant::now();
    let file = GgufFile::open(&path)?;
    let tokenizer = Tokenizer::from_gguf(&file)?;
    let loaded = load.elapsed();

    let start = Instant::now();
    let tokens = tokenizer.encode(&text, !args.no_bos, args.special)?;
    let took = start.elapsed();

    let list: Vec<String> = tokens.iter().map(u32::to_string).collect();
    println!("{{\"tokens\":[{}]}}", list.join(","));
    if args.timings {
        let secs = took.as_secs_f64();
        eprintln!(
            "tokenize: loaded in {:.1} ms; {} bytes -> {} tokens in {:.2} ms ({:.0} tokens/s, {:.1} MB/s)",
            loaded.as_secs_f64() * 1e3,
            text.len(),
            tokens.len(),
            secs * 1e3,
            tokens.len() as f64 / secs,
            text.len() as f64 / secs / 1e6
        );
    }
    Ok(())
}
