//! Requantize a GGUF file to another tensor type, as `llama-quantize --allow-requantize`
//! does without an importance matrix (see `ziglama::model::gguf::requantize` for what it does
//! and does not do): every matrix to `--type`, 1-D tensors (norms) kept, and per-tensor
//! exceptions with `--keep`.
//!
//! ```text
//! # SmolLM2 Q4_1 -> Q4_0 with the Q8_0 token embeddings kept: the same weights as
//! # `llama-quantize --allow-requantize SmolLM2-135M-Instruct.Q4_1.gguf OUT Q4_0`.
//! cargo run --release --example requantize -- --out smollm2-Q4_0.gguf --type Q4_0 \
//!     --keep token_embd.weight
//! cargo run --release --example requantize -- --model in.gguf --out out.gguf --type Q8_0 \
//!     --keep token_embd.weight=Q6_K --vectors F32 --dry-run
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use ziglama::model::catalog::KnownModel;
use ziglama::model::gguf::requantize::RequantizePlan;
use ziglama::model::gguf::GgufFile;
use ziglama::tensor::GgmlType;

/// Requantize a GGUF file: dequantize each tensor whose type changes and quantize it with
/// ggml's reference quantizer of its new type.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The GGUF file to read; without it, SmolLM2-135M-Instruct (fetched on first use).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The file to write.
    #[arg(long, required_unless_present = "dry_run")]
    out: Option<PathBuf>,
    /// The type of every tensor with two or more dimensions (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
    /// Q4_K, Q6_K, F16, BF16, F32).
    #[arg(long = "type", value_parser = parse_type)]
    ty: GgmlType,
    /// NAME=TYPE: tensor NAME becomes TYPE; NAME alone: tensor NAME is kept as it is.
    /// Repeatable.
    #[arg(long, value_name = "NAME[=TYPE]")]
    keep: Vec<String>,
    /// Convert 1-D tensors (norms) to this type instead of keeping them.
    #[arg(long, value_parser = parse_type)]
    vectors: Option<GgmlType>,
    /// The general.file_type to write (llama.cpp's llama_ftype number) instead of the one
    /// that goes with --type.
    #[arg(long)]
    file_type: Option<u32>,
    /// Print the plan and write nothing.
    #[arg(long)]
    dry_run: bool,
}

fn parse_type(s: &str) -> Result<GgmlType, String> {
    GgmlType::ALL
        .into_iter()
        .find(|t| t.name().eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            let names: Vec<&str> = GgmlType::ALL.iter().map(|t| t.name()).collect();
            format!("unknown type `{s}` (known: {})", names.join(", "))
        })
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("requantize: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let path = match &args.model {
        Some(p) => p.clone(),
        None => KnownModel::SmolLM2.ensure()?,
    };
    let file = GgufFile::open(&path)?;

    let mut plan = RequantizePlan::new(args.ty);
    for k in &args.keep {
        plan = match k.split_once('=') {
            Some((name, ty)) => plan.with_type(name, parse_type(ty)?),
            None => plan.keep(k.as_str()),
        };
    }
    if let Some(ty) = args.vectors {
        plan = plan.vectors_to(ty);
    }
    if let Some(ftype) = args.file_type {
        plan = plan.file_type(ftype);
    }

    let steps = plan.plan(&file)?;
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for s in &steps {
        *counts.entry((s.from.name(), s.to.name())).or_default() += 1;
    }
    eprintln!("{}: {} tensors", path.display(), steps.len());
    for ((from, to), n) in &counts {
        let what = if from == to { "copied" } else { "requantized" };
        eprintln!("  {n:4} {from:>5} -> {to:<5} {what}");
    }
    if args.dry_run {
        for s in &steps {
            println!("{}\t{:?}\t{}\t{}", s.name, s.shape, s.from, s.to);
        }
        return Ok(());
    }
    let Some(out) = &args.out else {
        return Err("--out is required unless --dry-run is given".into());
    };
    let start = Instant::now();
    let writer = plan.apply(&file)?;
    let requantized = start.elapsed();
    writer.write_file(out)?;
    eprintln!(
        "wrote {} in {:.2} s ({:.2} s requantizing)",
        out.display(),
        start.elapsed().as_secs_f64(),
        requantized.as_secs_f64()
    );
    Ok(())
}
