//! Criterion benches of the dot-product and matrix-vector kernels, per format, for the active
//! kernel set and the scalar reference, and of the thread pool's per-operation overhead.
//!
//! ```text
//! cargo bench --bench kernels                      # everything, a few minutes
//! cargo bench --bench kernels -- 'dot/Q4_K'         # one group
//! cargo bench --bench kernels -- --test            # smoke run: each bench once
//! ```
//!
//! - `dot/<format>/<kernel>`: one 4096-element row of weights with its activation row (already
//!   in the activation format), both in L1; throughput in weight bytes.
//! - `matvec/<format>/<kernel set>/<threads>t`: `matmul` of a 4096x4096 matrix with one f32 row,
//!   activation quantization included; throughput in weight bytes. The matrix (2.3 to
//!   16 MiB for the quantized formats) fits in this machine's L3, so this is kernel and
//!   threading cost, not DRAM bandwidth: `examples/matvec_bandwidth.rs` measures that.
//! - `decode_step/smollm2_shaped/<threads>t`: the 211 matrix products of one decode step of a
//!   SmolLM2-135M-shaped model (96 MB of Q4_1 and Q8_0 weights, streamed from memory).
//! - `gemm/<format>/<kernel set>/<rows>x<cols>x<acts>`: `matmul` of a SmolLM2-shaped weight
//!   matrix with 64 activation rows (a slice of a prompt), activation quantization and the
//!   final transposition included, one thread; throughput in multiply-adds (elements). The
//!   active kernel set uses the GEMM tiles where the format has them.
//! - `pool/run/<threads>t/<tasks>`: one `ThreadPool::run` of trivial tasks (the caller may
//!   run them all before a worker notices); `pool/run/<threads>t/rendezvous`: every thread
//!   must take one task.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ziglama::tensor::formats::{
    BlockQ4_0, BlockQ4_1, BlockQ4_K, BlockQ5_0, BlockQ5_1, BlockQ6_K, BlockQ8_0, DotKernel,
    Quantize, VecDot,
};
use ziglama::tensor::matmul::{matmul, matmul_with_isa};
use ziglama::tensor::{GgmlType, Isa, Tensor, ThreadPool};

/// Row length of every bench.
const K: usize = 4096;
/// Rows of the matrix-vector bench.
const M: usize = 4096;
/// Distinct random rows quantized for the matrix-vector bench (then repeated to `M` rows).
const UNIQUE_ROWS: usize = 64;

/// Deterministic values in [-1, 1) (SplitMix64).
fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

/// The kernel sets to compare: the active one and the scalar reference.
fn isas() -> Vec<Isa> {
    let mut v = vec![Isa::active()];
    if Isa::active() != Isa::Scalar {
        v.push(Isa::Scalar);
    }
    v
}

/// `x` quantized to `B` with the reference quantizer.
fn quantized<B: Quantize>(x: &[f32]) -> Vec<B> {
    let t = Tensor::quantize(B::TYPE, &[x.len(), 1], x).expect("quantize");
    t.blocks::<B>().expect("aligned blocks").to_vec()
}

/// [`dot_of`] for an element type named only through a function returning it (the facade
/// does not depend on the `half` crate that defines f16 and bf16).
fn dot_of_type_of<T: VecDot + Quantize, A>(c: &mut Criterion, name: &str, _witness: fn(A) -> T) {
    dot_of::<T>(c, name);
}

fn dot_of<W: VecDot + Quantize>(c: &mut Criterion, name: &str) {
    let w: Vec<W> = quantized(&random(K, 1));
    let a: Vec<W::Activation> = quantized(&random(K, 2));
    let mut g = c.benchmark_group(format!("dot/{name}"));
    g.throughput(Throughput::Bytes(std::mem::size_of_val(w.as_slice()) as u64));
    for isa in isas() {
        let k = DotKernel::<W>::select(isa);
        // The kernel that actually runs: on AVX-512, the VNNI variant only where the format
        // has one (`Isa`'s name says "avx512+vnni" for the whole set on a VNNI CPU).
        let name = match k.isa() {
            Isa::Avx512 if Isa::has_avx512_vnni() && W::KERNELS.avx512_vnni.is_some() => {
                "avx512-vnni".to_string()
            }
            Isa::Avx512 => "avx512".to_string(),
            other => other.to_string(),
        };
        g.bench_function(name, |b| {
            b.iter(|| black_box(k.call(black_box(&w), black_box(&a))))
        });
    }
    g.finish();
}

fn dots(c: &mut Criterion) {
    dot_of::<f32>(c, "F32");
    dot_of_type_of(c, "F16", |b: &BlockQ8_0| b.d);
    dot_of_type_of(c, "BF16", ziglama::tensor::formats::bf16::bf16_from_f32);
    dot_of::<BlockQ4_0>(c, "Q4_0");
    dot_of::<BlockQ4_1>(c, "Q4_1");
    dot_of::<BlockQ5_0>(c, "Q5_0");
    dot_of::<BlockQ5_1>(c, "Q5_1");
    dot_of::<BlockQ8_0>(c, "Q8_0");
    dot_of::<BlockQ4_K>(c, "Q4_K");
    dot_of::<BlockQ6_K>(c, "Q6_K");
}

/// An `M x K` matrix of `ty`: `UNIQUE_ROWS` random rows quantized, repeated.
fn matrix(ty: GgmlType) -> Tensor {
    let q = Tensor::quantize(ty, &[K, UNIQUE_ROWS], &random(K * UNIQUE_ROWS, 3)).expect("quantize");
    let mut w = Tensor::zeros(ty, &[K, M]).expect("matrix");
    let src = q.bytes();
    for dst in w.bytes_mut().chunks_mut(src.len()) {
        dst.copy_from_slice(&src[..dst.len()]);
    }
    w
}

fn matvecs(c: &mut Criterion) {
    let x = random(K, 4);
    let n_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pools: Vec<ThreadPool> = [1, n_threads.min(2)]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(ThreadPool::new)
        .collect();
    for ty in [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
    ] {
        let w = matrix(ty);
        let mut y = vec![0f32; M];
        let mut g = c.benchmark_group(format!("matvec/{}", ty.name()));
        g.throughput(Throughput::Bytes(w.n_bytes() as u64));
        for isa in isas() {
            for pool in &pools {
                let id = BenchmarkId::new(isa.to_string(), format!("{}t", pool.n_threads()));
                g.bench_function(id, |b| {
                    b.iter(|| matmul_with_isa(&w, black_box(&x), &mut y, pool, isa).unwrap())
                });
            }
        }
        g.finish();
    }
}

/// The matrix products of one decode step of a SmolLM2-135M-shaped model (30 layers of
/// Q4_1 projections 576 wide with a 1536-wide feed-forward, and a 49152-row Q8_0 output
/// matrix: 211 products over 96 MB of weights, three times L3), one activation row each, on
/// 1 and 2 threads. Unlike one small matrix repeated (which stays in cache), this streams
/// the weights from memory as decoding does, and shows the per-product costs (activation
/// quantization, the pool's hand-off) at their real weight.
fn decode_step(c: &mut Criterion) {
    const N_EMBD: usize = 576;
    const N_KV: usize = 192;
    const N_FF: usize = 1536;
    const N_VOCAB: usize = 49152;
    const N_LAYER: usize = 30;
    let mut seed = 10;
    let mut mat = |ty: GgmlType, rows: usize, cols: usize| {
        seed += 1;
        Tensor::quantize(ty, &[cols, rows], &random(rows * cols, seed)).expect("quantize")
    };
    let mut weights = Vec::new();
    for _ in 0..N_LAYER {
        for (rows, cols) in [
            (N_EMBD, N_EMBD),
            (N_KV, N_EMBD),
            (N_KV, N_EMBD),
            (N_EMBD, N_EMBD),
            (N_FF, N_EMBD),
            (N_FF, N_EMBD),
            (N_EMBD, N_FF),
        ] {
            weights.push(mat(GgmlType::Q4_1, rows, cols));
        }
    }
    weights.push(mat(GgmlType::Q8_0, N_VOCAB, N_EMBD));
    let bytes: usize = weights.iter().map(Tensor::n_bytes).sum();
    let x = random(N_FF, 6);
    let mut y = vec![0f32; N_VOCAB];
    let pools = [ThreadPool::new(1), ThreadPool::new(2)];
    let mut g = c.benchmark_group("decode_step/smollm2_shaped");
    g.throughput(Throughput::Bytes(bytes as u64));
    for pool in &pools {
        g.bench_function(format!("{}t", pool.n_threads()), |b| {
            b.iter(|| {
                for w in &weights {
                    let (k, m) = (w.row_len(), w.n_rows());
                    matmul(w, black_box(&x[..k]), &mut y[..m], pool).unwrap();
                }
            })
        });
    }
    g.finish();
}

/// Prompt-processing products: the projections of a SmolLM2-135M-shaped layer (576 wide,
/// 1536-wide feed-forward) with 64 activation rows, one thread, per format with GEMM tiles.
fn gemms(c: &mut Criterion) {
    const N_ACT: usize = 64;
    let pool = ThreadPool::new(1);
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
    ] {
        let mut g = c.benchmark_group(format!("gemm/{}", ty.name()));
        for (rows, cols) in [(576usize, 576usize), (1536, 576), (576, 1536)] {
            if !cols.is_multiple_of(ty.block_size()) {
                continue;
            }
            let w =
                Tensor::quantize(ty, &[cols, rows], &random(rows * cols, 21)).expect("quantize");
            let x = random(N_ACT * cols, 22);
            let mut y = vec![0f32; N_ACT * rows];
            g.throughput(Throughput::Elements((rows * cols * N_ACT) as u64));
            let isa = Isa::active();
            let id = BenchmarkId::new(isa.to_string(), format!("{rows}x{cols}x{N_ACT}"));
            g.bench_function(id, |b| {
                b.iter(|| matmul_with_isa(&w, black_box(&x), &mut y, &pool, isa).unwrap())
            });
        }
        g.finish();
    }
}

fn pool_overhead(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool/run");
    let threads = 2;
    let pool = ThreadPool::new(threads);
    for tasks in [2usize, 16] {
        g.bench_function(BenchmarkId::new(format!("{threads}t"), tasks), |b| {
            b.iter(|| {
                pool.run(tasks, |i| {
                    black_box(i);
                })
            })
        });
    }
    // Every thread must take one task (each waits until all have started): the round trip of
    // handing work to the workers and waiting for them, which `matmul` pays once per call.
    let started = AtomicUsize::new(0);
    let mut round = 0usize;
    g.bench_function(BenchmarkId::new(format!("{threads}t"), "rendezvous"), |b| {
        b.iter(|| {
            round += 1;
            let target = round * threads;
            pool.run(threads, |_| {
                started.fetch_add(1, Ordering::AcqRel);
                while started.load(Ordering::Acquire) < target {
                    std::hint::spin_loop();
                }
            })
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = dots, matvecs, gemms, decode_step, pool_overhead
}
criterion_main!(benches);
