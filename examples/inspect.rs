//! Print what a GGUF file holds: version, alignment, every metadata key with its type and
//! value, and a table of tensors with their types, shapes and sizes.
//!
//! ```text
//! cargo run --release --example inspect                       # SmolLM2, fetched on first use
//! cargo run --release --example inspect -- --model my.gguf --items 20
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ziglama::model::catalog::KnownModel;
use ziglama::model::gguf::{GgufFile, MetadataArray, MetadataValue};

/// Print the header, metadata and tensor table of a GGUF file (what `gguf-dump` shows).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The GGUF file; without it, SmolLM2-135M-Instruct (fetched on first use).
    #[arg(long)]
    model: Option<PathBuf>,
    /// How many items of a long array to show.
    #[arg(long, default_value_t = 6)]
    items: usize,
    /// Longest string shown in full, in characters (longer ones are cut, with their length).
    #[arg(long, default_value_t = 80)]
    max_string: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("inspect: {e}");
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
    println!("{}", path.display());
    println!(
        "GGUF version {}, alignment {}, {} bytes, tensor data from byte {}",
        file.version(),
        file.alignment(),
        file.bytes().len(),
        file.data_offset()
    );

    let meta = file.metadata();
    println!("\n{} metadata keys:", meta.len());
    let key_width = meta.keys().map(str::len).max().unwrap_or(0);
    let type_width = meta
        .iter()
        .map(|(_, v)| v.type_description().len())
        .max()
        .unwrap_or(0);
    for (key, value) in meta.iter() {
        println!(
            "  {key:key_width$}  {:type_width$}  {}",
            value.type_description(),
            show_value(value, args)
        );
    }

    let infos = file.tensor_infos();
    println!("\n{} tensors:", infos.len());
    let name_width = infos.iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    println!(
        "  {:>4}  {:name_width$}  {:7}  {:22}  {:>12}",
        "#", "name", "type", "shape", "bytes"
    );
    let mut by_type: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let (mut total_bytes, mut total_elements) = (0usize, 0usize);
    for (i, t) in infos.iter().enumerate() {
        let shape = format!("{:?}", t.shape);
        println!(
            "  {i:>4}  {:name_width$}  {:7}  {shape:22}  {:>12}",
            t.name,
            t.dtype.name(),
            t.n_bytes
        );
        let e = by_type.entry(t.dtype.name().to_string()).or_default();
        e.0 += 1;
        e.1 += t.n_elements();
        e.2 += t.n_bytes;
        total_bytes += t.n_bytes;
        total_elements += t.n_elements();
    }
    println!("\nby type:");
    for (ty, (n, elements, bytes)) in &by_type {
        println!(
            "  {ty:7}  {n:>4} tensors  {elements:>12} elements  {bytes:>12} bytes  {:.3} bits/weight",
            *bytes as f64 * 8.0 / (*elements).max(1) as f64
        );
    }
    println!(
        "total: {} tensors, {total_elements} elements, {total_bytes} bytes ({:.1} MiB), {:.3} bits/weight",
        infos.len(),
        total_bytes as f64 / (1u64 << 20) as f64,
        total_bytes as f64 * 8.0 / total_elements.max(1) as f64
    );
    Ok(())
}

/// A value as one line: strings quoted and escaped (cut if long), arrays abbreviated to
/// their first items and the count.
fn show_value(v: &MetadataValue, args: &Args) -> String {
    match v {
        MetadataValue::String(s) => show_string(&s.to_string(), args.max_string),
        MetadataValue::Array(a) => show_array(a, args),
        v => v.to_string(),
    }
}

fn show_string(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut:?}... ({n} characters)")
    }
}

fn show_array(a: &MetadataArray, args: &Args) -> String {
    let shown = a.len().min(args.items);
    let items: Vec<String> = (0..shown)
        .filter_map(|i| a.get(i))
        .map(|v| match &v {
            MetadataValue::String(s) => show_string(&s.to_string(), args.max_string),
            MetadataValue::Array(inner) => show_array(inner, args),
            v => v.to_string(),
        })
        .collect();
    if shown < a.len() {
        format!("[{}, ...] ({} items)", items.join(", "), a.len())
    } else {
        format!("[{}]", items.join(", "))
    }
}
