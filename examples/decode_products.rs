//! The matrix-vector products of one decoding step of a real model, timed alone.
//!
//! A decoding step multiplies every weight matrix of the model by one activation row. This
//! program loads a GGUF model and times, on the requested thread counts, (a) each distinct
//! kind of product (tensor name without the layer number, format and shape) over all the
//! layers that have it, and (b) the whole step's products in model order, so that a change
//! to the products or the pool can be measured without the rest of the forward pass (and
//! with less of the noise of a shared machine: the figures are the best and the median of
//! `--repeats` runs after a warm-up).
//!
//! ```text
//! cargo run --release --example decode_products -- --model models/SmolLM2-135M-Instruct.Q4_1.gguf
//! cargo run --release --example decode_products -- --model M --threads 1 --repeats 50
//! ```

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use ziglama::model::model::Model;
use ziglama::tensor::{matmul, matvec::matvecs, Isa, Tensor, ThreadPool};

/// Time the matrix-vector products of one decoding step.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The GGUF model.
    #[arg(long)]
    model: String,
    /// Thread counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Timed runs per measurement (after one warm-up run).
    #[arg(long, default_value_t = 20)]
    repeats: usize,
    /// Run the products through `matvec::matvecs` (one product per call) instead of `matmul`.
    #[arg(long)]
    matvec: bool,
}

/// A small deterministic generator (SplitMix64) of values in `-1..1`.
fn random_row(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Best and median of `repeats` timed calls of `f` (after one warm-up), in microseconds.
fn time(repeats: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let mut t: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[0], t[t.len() / 2])
}

fn main() -> ExitCode {
    let args = Args::parse();
    let model = match Model::load(&args.model) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("loading {}: {e}", args.model);
            return ExitCode::FAILURE;
        }
    };
    let w = model.weights();
    // Every product of a step, in model order, with its kind.
    let mut step: Vec<(String, &Tensor)> = Vec::new();
    for b in &w.blocks {
        for (name, t) in [
            ("attn_q", &b.wq),
            ("attn_k", &b.wk),
            ("attn_v", &b.wv),
            ("attn_output", &b.wo),
            ("ffn_gate", &b.ffn_gate),
            ("ffn_up", &b.ffn_up),
            ("ffn_down", &b.ffn_down),
        ] {
            let kind = format!("{name} {:?} {:?}", t.dtype(), t.shape());
            step.push((kind, t));
        }
    }
    step.push((
        format!("output {:?} {:?}", w.output.dtype(), w.output.shape()),
        &w.output,
    ));
    let mut kinds: Vec<String> = step.iter().map(|(k, _)| k.clone()).collect();
    kinds.dedup();
    kinds.sort();
    kinds.dedup();
    let inputs: Vec<Vec<f32>> = step
        .iter()
        .enumerate()
        .map(|(i, (_, t))| random_row(t.row_len(), i as u64))
        .collect();
    let mut outputs: Vec<Vec<f32>> = step.iter().map(|(_, t)| vec![0f32; t.n_rows()]).collect();
    let product = |w: &Tensor, x: &[f32], y: &mut [f32], pool: &ThreadPool| {
        if args.matvec {
            matvecs(&[w], x, &mut [y], pool).expect("matvecs");
        } else {
            matmul(w, x, y, pool).expect("matmul");
        }
    };
    println!(
        "kernel set {:?}, {} products per step",
        Isa::active(),
        step.len()
    );
    for &threads in &args.threads {
        let pool = ThreadPool::new(threads);
        println!(
            "\n{threads} thread(s): best / median of {} runs, µs",
            args.repeats
        );
        for kind in &kinds {
            let idx: Vec<usize> = (0..step.len()).filter(|&i| &step[i].0 == kind).collect();
            let bytes: usize = idx.iter().map(|&i| step[i].1.n_bytes()).sum();
            let (best, median) = time(args.repeats, || {
                for &i in &idx {
                    product(step[i].1, &inputs[i], &mut outputs[i], &pool);
                }
            });
            println!(
                "  {kind:<44} x{:<3} {best:9.1} {median:9.1}  {:6.1} GB/s",
                idx.len(),
                bytes as f64 / best / 1e3
            );
        }
        let bytes: usize = step.iter().map(|(_, t)| t.n_bytes()).sum();
        let (best, median) = time(args.repeats, || {
            for (i, (_, t)) in step.iter().enumerate() {
                product(t, &inputs[i], &mut outputs[i], &pool);
            }
        });
        println!(
            "  {:<49} {best:9.1} {median:9.1}  {:6.1} GB/s",
            "whole step",
            bytes as f64 / best / 1e3
        );
    }
    ExitCode::SUCCESS
}
