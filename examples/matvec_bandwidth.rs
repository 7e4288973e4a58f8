//! How close the matrix-vector product gets to the memory bandwidth limit.
//!
//! Decoding one token reads every weight once, so a matrix-vector product over a matrix much
//! larger than the last-level cache can go no faster than memory streams it. This program
//! measures (a) the machine's memory read bandwidth (summing a buffer far larger than L3; the
//! best of several probes: the best F32 dot kernel this CPU has, of the buffer with itself,
//! with its widest loads and four accumulators, and a plain 16-lane integer sum, each reading
//! 1, 2 or 4 interleaved streams per part), on 1 and 2 threads, and (b) for each weight
//! format, `matmul` with one activation row over a matrix of 8x L3 (at least 4x): weight bytes
//! streamed per second, best and median of the repeats, and that as a percentage of (a) on
//! the same number of threads. It also prints how fast each format's kernel runs with its
//! weights in L2 (is the kernel or memory the limit?), the time to quantize one activation
//! row, and the thread pool's per-operation overhead.
//!
//! The weight matrix is built by quantizing `--unique-rows` rows of random data with the
//! format's reference quantizer (`Tensor::quantize`) and repeating those bytes to the full
//! size: every row is real quantized data, and quantizing a gigabyte with the k-quant search
//! would take minutes.
//!
//! ```text
//! cargo run --release --example matvec_bandwidth
//! cargo run --release --example matvec_bandwidth -- --threads 1,2 --repeats 20 --json
//! ZIGLAMA_KERNELS=scalar cargo run --release --example matvec_bandwidth -- --formats q4_0
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use clap::Parser;
use serde_json::json;
use ziglama::tensor::formats::{
    Block, BlockQ4_0, BlockQ4_1, BlockQ4_K, BlockQ5_0, BlockQ5_1, BlockQ6_K, BlockQ8_0, DotKernel,
    Quantize, VecDot,
};
use ziglama::tensor::{matmul, GgmlType, Isa, Tensor, ThreadPool};

/// Measure memory read bandwidth and matrix-vector throughput per weight format.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Weight matrix rows; default: enough for the matrix to be 8x the L3 cache (at 4x, part of
    /// the matrix can survive in L3 from one repeat to the next).
    #[arg(long)]
    rows: Option<usize>,
    /// Weight matrix columns (the row length; a multiple of 256).
    #[arg(long, default_value_t = 4096)]
    cols: usize,
    /// Thread counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Timed runs per measurement (after one warm-up run); best and median are reported.
    #[arg(long, default_value_t = 10)]
    repeats: usize,
    /// Formats to measure, comma-separated: q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q6_k, f32, f16,
    /// bf16.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "q4_0,q4_1,q8_0,q4_k,q6_k"
    )]
    formats: Vec<String>,
    /// Size of the bandwidth buffer in MiB.
    #[arg(long, default_value_t = 1024)]
    buffer_mib: usize,
    /// Distinct quantized rows the weight matrix repeats.
    #[arg(long, default_value_t = 256)]
    unique_rows: usize,
    /// Size of the rows the in-cache kernel speed is measured on, in KiB (they should fit in
    /// L2).
    #[arg(long, default_value_t = 256)]
    cache_kib: usize,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

/// The L3 size in bytes from sysfs, and where it came from.
fn l3_bytes() -> (usize, &'static str) {
    for i in 0..8 {
        let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{i}");
        let level = std::fs::read_to_string(format!("{dir}/level")).unwrap_or_default();
        if level.trim() != "3" {
            continue;
        }
        let size = std::fs::read_to_string(format!("{dir}/size")).unwrap_or_default();
        let s = size.trim();
        let (num, mul) = match s.as_bytes().last() {
            Some(b'K') => (&s[..s.len() - 1], 1024),
            Some(b'M') => (&s[..s.len() - 1], 1024 * 1024),
            _ => (s, 1),
        };
        if let Ok(n) = num.parse::<usize>() {
            return (n * mul, "sysfs");
        }
    }
    (32 << 20, "assumed (no L3 in sysfs)")
}

/// The CPU model name from /proc/cpuinfo.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Best and median of `v` (sorted in place).
fn best_median(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(|a, b| b.total_cmp(a));
    (v[0], v[v.len() / 2])
}

/// How the bandwidth probe reads a chunk of the buffer.
#[derive(Clone, Copy, Debug)]
enum Probe {
    /// The active ISA's F32 dot kernel of the chunk with itself (64-byte loads on AVX-512).
    Dot,
    /// A plain Rust sum of the bits as u32 in 16 lanes (what the compiler vectorizes for the
    /// baseline target: 16-byte loads).
    Sum,
}

/// Read bandwidth in GB/s (1e9 bytes) on `pool`'s threads, one run per entry. Each task
/// reads its part of `buf` as `streams` interleaved sequential streams, 16 KiB at a time:
/// with 4 KiB pages the hardware prefetcher restarts at every page boundary, and several
/// streams keep more misses in flight (what reads fastest differs between machines).
fn read_bandwidth(
    buf: &[f32],
    pool: &ThreadPool,
    probe: Probe,
    streams: usize,
    repeats: usize,
) -> Vec<f64> {
    const STEP: usize = 4096; // f32 elements: 16 KiB
                              // The machine's bandwidth, not the kernel set's: the best F32 kernel the CPU has, whatever
                              // `ZIGLAMA_KERNELS` says.
    let kernel = DotKernel::<f32>::select(Isa::detect());
    let read = |c: &[f32]| -> u32 {
        match probe {
            Probe::Dot => kernel.call(c, c).to_bits(),
            Probe::Sum => {
                let mut lanes = [0u32; 16];
                for v in c.chunks_exact(16) {
                    for (l, x) in lanes.iter_mut().zip(v) {
                        *l = l.wrapping_add(x.to_bits());
                    }
                }
                lanes.iter().fold(0, |a, &l| a ^ l)
            }
        }
    };
    // Eight parts per thread, claimed dynamically as `matmul` does, so a thread the OS delays
    // does not hold the others up.
    let parts = pool.n_threads() * 8;
    let per_part = buf.len() / parts;
    let sink = AtomicUsize::new(0);
    (0..=repeats)
        .map(|_| {
            let t = Instant::now();
            pool.run(parts, |p| {
                let mine = &buf[p * per_part..(p + 1) * per_part];
                let per_stream = mine.len() / streams;
                let mut acc = 0u32;
                for o in (0..per_stream).step_by(STEP) {
                    for s in 0..streams {
                        let start = s * per_stream + o;
                        let end = s * per_stream + (o + STEP).min(per_stream);
                        acc ^= read(&mine[start..end]);
                    }
                }
                sink.fetch_xor(acc as usize, Ordering::Relaxed);
            });
            (per_part * parts * 4) as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .skip(1)
        .collect()
}

/// Nanoseconds per `ThreadPool::run` of `n_threads` tasks (best of 20 batches); with
/// `rendezvous`, each task waits until all have started, so every thread must take one.
fn pool_overhead(pool: &ThreadPool, rendezvous: bool) -> f64 {
    let n = pool.n_threads();
    let started = AtomicUsize::new(0);
    let mut best = f64::MAX;
    for _ in 0..20 {
        let t = Instant::now();
        for i in 0..5_000 {
            let target = (i + 1) * n;
            pool.run(n, |j| {
                std::hint::black_box(i + j);
                if rendezvous {
                    started.fetch_add(1, Ordering::AcqRel);
                    let mut spins = 0u32;
                    while started.load(Ordering::Acquire) < target {
                        spins += 1;
                        if spins < 1 << 12 {
                            std::hint::spin_loop();
                        } else {
                            std::thread::yield_now();
                        }
                    }
                }
            });
        }
        started.store(0, Ordering::Relaxed);
        best = best.min(t.elapsed().as_secs_f64() * 1e9 / 5_000.0);
    }
    best
}

/// The kernel `W`'s dot product runs with under the active kernel set: its instruction set,
/// and on AVX-512 whether it is the VNNI variant (`Isa`'s own name says "avx512+vnni" for
/// any AVX-512 kernel on a VNNI CPU).
fn kernel_name<W: VecDot>() -> (String, bool) {
    let isa = DotKernel::<W>::select(Isa::active()).isa();
    let name = match isa {
        Isa::Avx512 if Isa::has_avx512_vnni() && W::KERNELS.avx512_vnni.is_some() => {
            "avx512-vnni".to_string()
        }
        Isa::Avx512 => "avx512".to_string(),
        other => other.to_string(),
    };
    (name, isa != Isa::Scalar)
}

/// GB/s of `W`'s dot kernel alone (one thread, no activation quantization, no pool) over
/// rows totalling about `kib` KiB, small enough to stay in L2: how fast the kernel is when
/// memory is not the limit.
fn in_cache_gbs<W: VecDot>(cols: usize, kib: usize) -> f64 {
    let ty = W::TYPE;
    let rows = ((kib << 10) / ty.row_size(cols).expect("row size")).max(1);
    let w = build_matrix(ty, rows, cols, rows);
    let weights: &[W] = w.blocks().expect("aligned blocks");
    let mut rng = Rng(7);
    let x: Vec<f32> = (0..cols).map(|_| rng.next_f32()).collect();
    let at = <W::Activation as Block>::TYPE;
    let xq = Tensor::quantize(at, &[cols, 1], &x).expect("quantizing activations");
    let a: &[W::Activation] = xq.blocks().expect("aligned blocks");
    let kernel = DotKernel::<W>::select(Isa::active());
    let per_row = cols / W::BLOCK_SIZE;
    let mut best = 0f64;
    let mut sink = 0f32;
    for _ in 0..20 {
        let t = Instant::now();
        for _ in 0..20 {
            for row in weights.chunks_exact(per_row) {
                sink += kernel.call(row, a);
            }
        }
        best = best.max(20.0 * w.n_bytes() as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    std::hint::black_box(sink);
    best
}

/// A format to measure: its type, its kernel's name and whether it is SIMD, its in-cache
/// kernel speed function and its activation quantization time function.
type FormatCase = (
    GgmlType,
    (String, bool),
    fn(usize, usize) -> f64,
    fn(&[f32]) -> f64,
);

fn parse_format(s: &str) -> Option<FormatCase> {
    fn case<W: VecDot>() -> FormatCase {
        (
            W::TYPE,
            kernel_name::<W>(),
            in_cache_gbs::<W>,
            activation_quantize_us::<W>,
        )
    }
    // f16 and bf16 are named through functions returning them (this package does not depend
    // on the `half` crate that defines them).
    fn case_of<W: VecDot, A>(_witness: fn(A) -> W) -> FormatCase {
        case::<W>()
    }
    Some(match s.to_ascii_lowercase().as_str() {
        "q4_0" => case::<BlockQ4_0>(),
        "q4_1" => case::<BlockQ4_1>(),
        "q8_0" => case::<BlockQ8_0>(),
        "q4_k" => case::<BlockQ4_K>(),
        "q6_k" => case::<BlockQ6_K>(),
        "q5_0" => case::<BlockQ5_0>(),
        "q5_1" => case::<BlockQ5_1>(),
        "f32" => case::<f32>(),
        "f16" => case_of(|b: &BlockQ8_0| b.d),
        "bf16" => case_of(ziglama::tensor::formats::bf16::bf16_from_f32),
        _ => return None,
    })
}

/// A `rows x cols` matrix of `ty`: `unique` rows of random data quantized, repeated.
fn build_matrix(ty: GgmlType, rows: usize, cols: usize, unique: usize) -> Tensor {
    let unique = unique.min(rows).max(1);
    let mut rng = Rng(0x5eed ^ ty.id() as u64);
    let data: Vec<f32> = (0..unique * cols).map(|_| rng.next_f32()).collect();
    let q = Tensor::quantize(ty, &[cols, unique], &data).expect("quantizing the rows");
    let mut w = Tensor::zeros(ty, &[cols, rows]).expect("allocating the matrix");
    let src = q.bytes();
    for dst in w.bytes_mut().chunks_mut(src.len()) {
        dst.copy_from_slice(&src[..dst.len()]);
    }
    w
}

/// Time of quantizing one activation row to `W`'s activation format with the quantizer
/// `matmul` uses (`Quantize::quantize_activation`), in microseconds (best of 50).
fn activation_quantize_us<W: VecDot>(x: &[f32]) -> f64 {
    let at = <W::Activation as Block>::TYPE;
    let t = Tensor::zeros(at, &[x.len(), 1]).expect("activation row");
    let mut out: Vec<W::Activation> = t.blocks().expect("aligned blocks").to_vec();
    let mut best = f64::MAX;
    for _ in 0..50 {
        let t = Instant::now();
        <W::Activation as Quantize>::quantize_activation(x, &mut out);
        best = best.min(t.elapsed().as_secs_f64() * 1e6);
    }
    std::hint::black_box(&out);
    best
}

/// The 1-minute load average, from /proc/loadavg (how busy the machine was).
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn run(args: &Args) -> Result<(), String> {
    let load_before = load_average();
    let (l3, l3_source) = l3_bytes();
    let isa = Isa::active();
    let pools: Vec<ThreadPool> = args.threads.iter().map(|&t| ThreadPool::new(t)).collect();
    let mut formats = Vec::new();
    for f in &args.formats {
        formats.push(parse_format(f).ok_or_else(|| format!("unknown format {f}"))?);
    }
    if !args.cols.is_multiple_of(256) || args.cols == 0 {
        return Err(format!("--cols {} is not a multiple of 256", args.cols));
    }

    // (a) Read bandwidth.
    // The reference is the best over the probes and stream counts, so percentages are
    // against the most this machine was seen to deliver.
    let buf = vec![1.0f32; (args.buffer_mib << 20) / 4];
    let mut bw = Vec::new();
    let mut bw_streams = Vec::new();
    for pool in &pools {
        let mut best = (0.0, 0.0);
        for (probe, streams) in [
            (Probe::Dot, 1),
            (Probe::Dot, 2),
            (Probe::Dot, 4),
            (Probe::Sum, 1),
            (Probe::Sum, 2),
        ] {
            let r = best_median(&mut read_bandwidth(
                &buf,
                pool,
                probe,
                streams,
                args.repeats,
            ));
            bw_streams.push(json!({
                "threads": pool.n_threads(), "probe": format!("{probe:?}"),
                "streams": streams, "best_gbs": r.0, "median_gbs": r.1,
            }));
            if r.0 > best.0 {
                best = r;
            }
        }
        bw.push((pool.n_threads(), best.0, best.1));
    }
    drop(buf);

    // Pool overhead, two ways: `run` of as many trivial tasks as threads (the caller may run
    // them all before a worker notices), and a rendezvous in which every thread must take
    // one task (the round trip of handing work to every worker and waiting for it).
    let mut pool_ns = Vec::new();
    for pool in &pools {
        let n = pool.n_threads();
        let (trivial, rendezvous) = (pool_overhead(pool, false), pool_overhead(pool, true));
        pool_ns.push((n, trivial, rendezvous));
    }

    // (b) Matrix-vector products.
    let mut rng = Rng(42);
    let x: Vec<f32> = (0..args.cols).map(|_| rng.next_f32()).collect();
    let mut results = Vec::new();
    for &(ty, (ref kernel, simd), in_cache_gbs, activation_quantize_us) in &formats {
        let row_bytes = ty.row_size(args.cols).map_err(|e| e.to_string())?;
        let rows = args
            .rows
            .unwrap_or_else(|| (8 * l3).div_ceil(row_bytes).next_multiple_of(64));
        let w = build_matrix(ty, rows, args.cols, args.unique_rows);
        let quant_us = activation_quantize_us(&x);
        let in_cache = in_cache_gbs(args.cols, args.cache_kib);
        let mut y = vec![0f32; rows];
        for (pool, &(threads, bw_best, _)) in pools.iter().zip(&bw) {
            let mut gbs: Vec<f64> = (0..=args.repeats)
                .map(|_| {
                    let t = Instant::now();
                    matmul(&w, &x, &mut y, pool).expect("matmul");
                    w.n_bytes() as f64 / t.elapsed().as_secs_f64() / 1e9
                })
                .skip(1)
                .collect();
            let (best, median) = best_median(&mut gbs);
            results.push(json!({
                "format": ty.name(),
                "kernel": kernel,
                "simd": simd,
                "threads": threads,
                "rows": rows,
                "cols": args.cols,
                "matrix_mib": w.n_bytes() as f64 / (1 << 20) as f64,
                "best_gbs": best,
                "median_gbs": median,
                "pct_of_read_bw": 100.0 * best / bw_best,
                "activation_quantize_us": quant_us,
                "kernel_in_cache_gbs": in_cache,
            }));
        }
    }

    let report = json!({
        "cpu": cpu_model(),
        "logical_cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "l3_bytes": l3,
        "l3_source": l3_source,
        "isa": isa.to_string(),
        "repeats": args.repeats,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "read_bandwidth_by_probe": bw_streams,
        "read_bandwidth": bw.iter().map(|&(t, b, m)| json!({
            "threads": t, "best_gbs": b, "median_gbs": m,
        })).collect::<Vec<_>>(),
        "pool_run_ns": pool_ns.iter().map(|&(t, ns, r)| json!({
            "threads": t, "trivial_ns": ns, "rendezvous_ns": r,
        })).collect::<Vec<_>>(),
        "matvec": results,
    });
    if args.json {
        println!("{report:#}");
        return Ok(());
    }
    println!(
        "cpu: {} ({} logical CPUs)",
        report["cpu"].as_str().unwrap_or(""),
        report["logical_cpus"]
    );
    println!(
        "L3: {} MiB ({l3_source}); kernels: {isa} (ZIGLAMA_KERNELS caps it)",
        l3 >> 20
    );
    if let (Some(a), Some(b)) = (load_before, load_average()) {
        println!("load average: {a:.2} before, {b:.2} after (other work makes figures noisy)");
    }
    println!(
        "read bandwidth ({} MiB buffer, best probe: F32 dot kernel with 1/2/4 streams \
         per thread or a plain u32 sum with 1/2; best/median of {}):",
        args.buffer_mib, args.repeats
    );
    for &(t, b, m) in &bw {
        println!("  {t} thread(s): {b:6.2} / {m:6.2} GB/s");
    }
    for &(t, ns, r) in &pool_ns {
        println!(
            "pool, {t} thread(s): run() of {t} trivial tasks {ns:.0} ns, \
             with every thread taking one {r:.0} ns"
        );
    }
    println!();
    println!(
        "{:<6} {:<12} {:>7} {:>9} {:>10} {:>10} {:>8} {:>10} {:>9}",
        "format",
        "kernel",
        "threads",
        "MiB",
        "best GB/s",
        "med GB/s",
        "% of bw",
        "kernel L2",
        "act q µs"
    );
    for r in &results {
        println!(
            "{:<6} {:<12} {:>7} {:>9.0} {:>10.2} {:>10.2} {:>7.0}% {:>10.1} {:>9.2}",
            r["format"].as_str().unwrap_or(""),
            r["kernel"].as_str().unwrap_or(""),
            r["threads"],
            r["matrix_mib"].as_f64().unwrap_or(0.0),
            r["best_gbs"].as_f64().unwrap_or(0.0),
            r["median_gbs"].as_f64().unwrap_or(0.0),
            r["pct_of_read_bw"].as_f64().unwrap_or(0.0),
            r["kernel_in_cache_gbs"].as_f64().unwrap_or(0.0),
            r["activation_quantize_us"].as_f64().unwrap_or(0.0),
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("matvec_bandwidth: {e}");
            ExitCode::FAILURE
        }
    }
}
