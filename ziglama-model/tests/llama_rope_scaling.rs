//! RoPE scaling against llama.cpp: SmolLM2 with YaRN (factor 4, original context 2048) and
//! linear (factor 2) scaling metadata added, last-position logits of three golden prompts,
//! against issue 3's bound (cosine >= 0.9999; bit-exact in fact), and that the scaling matters
//! (the unscaled model is further from llama.cpp's scaled logits than ours are). Golden data:
//! `scripts/golden/llama_rope_scaling.py`.
//!
//! **Machine requirement**, as for the strict tests of `llama_smollm2.rs`: ziglama-tensor's
//! x86-64 AVX2 or AVX-512 kernels, whose products add in ggml's x86 order; under any other
//! kernel set the tests fail with a message. (With another summation order, YaRN's magnitude
//! correction sharpens attention and with it the amplification of last-bit differences:
//! cosine 0.988 on `chat_simple` under `ZIGLAMA_KERNELS=scalar`.)

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use ziglama_model::catalog::KnownModel;
use ziglama_model::gguf::{GgufFile, GgufWriter, Metadata};
use ziglama_model::model::{argmax, Batch, Model};
use ziglama_tensor::{Isa, ThreadPool};

const MIN_COSINE: f64 = 0.9999;
const PROMPTS: [&str; 3] = ["story", "code_rust", "chat_simple"];

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/llama")
}

fn smollm2() -> &'static GgufFile {
    static FILE: OnceLock<GgufFile> = OnceLock::new();
    FILE.get_or_init(|| {
        GgufFile::open(
            KnownModel::SmolLM2
                .ensure()
                .expect("SmolLM2 must be fetchable"),
        )
        .expect("SmolLM2 opens")
    })
}

fn with_metadata(edit: impl Fn(&mut Metadata)) -> Model {
    let file = smollm2();
    let mut w = GgufWriter::new();
    *w.metadata_mut() = file.metadata().clone();
    edit(w.metadata_mut());
    for info in file.tensor_infos() {
        w.add_tensor(&info.name, file.tensor(&info.name).expect("tensor"))
            .expect("add tensor");
    }
    let bytes = w.to_bytes().expect("write");
    Model::from_gguf(GgufFile::from_bytes(Arc::new(bytes)).expect("read")).expect("load")
}

fn prompt_tokens(name: &str) -> Vec<u32> {
    let text = std::fs::read_to_string(data_dir().join("cases.tsv")).expect("cases.tsv");
    let line = text
        .lines()
        .find(|l| l.split('\t').next() == Some(name))
        .expect("prompt in cases.tsv");
    line.split('\t')
        .nth(1)
        .expect("tokens")
        .split(',')
        .map(|t| t.parse().expect("id"))
        .collect()
}

fn golden(variant: &str, name: &str) -> Vec<f32> {
    std::fs::read(data_dir().join(format!("rope_{variant}_{name}.f32")))
        .expect("golden logits")
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa.sqrt() * bb.sqrt())
}

fn last_logits(model: &Model, tokens: &[u32], pool: &ThreadPool) -> Vec<f32> {
    let mut state = model.new_state(tokens.len(), 1);
    model
        .forward(&Batch::prompt(tokens, 0, 0), &mut state, pool)
        .expect("forward")
}

fn check(variant: &str, edit: impl Fn(&mut Metadata), min_cosine: f64) {
    let scaled = with_metadata(edit);
    let plain = with_metadata(|_| {});
    let pool = ThreadPool::new(2);
    let mut failures = Vec::new();
    for name in PROMPTS {
        let tokens = prompt_tokens(name);
        let want = golden(variant, name);
        let got = last_logits(&scaled, &tokens, &pool);
        let unscaled = last_logits(&plain, &tokens, &pool);
        let max_abs = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let (cos, cos_plain) = (cosine(&got, &want), cosine(&unscaled, &want));
        let unequal = got
            .iter()
            .zip(&want)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        println!(
            "{variant:6} {name:12} cosine {cos:.7} max|diff| {max_abs:.4} (unscaled: cosine {cos_plain:.7}), {unequal} logits not bit-equal"
        );
        if argmax(&got) != argmax(&want) || cos < min_cosine || cos <= cos_plain {
            failures.push(format!(
                "{variant} {name}: cosine {cos} (unscaled {cos_plain})"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

fn yarn(m: &mut Metadata) {
    m.set("llama.rope.scaling.type", "yarn");
    m.set("llama.rope.scaling.factor", 4.0f32);
    m.set("llama.rope.scaling.original_context_length", 2048u32);
}

fn linear(m: &mut Metadata) {
    m.set("llama.rope.scaling.type", "linear");
    m.set("llama.rope.scaling.factor", 2.0f32);
}

/// The strict tests' machine requirement (see the module documentation).
fn require_x86_simd_kernels() {
    let isa = Isa::active();
    assert!(
        matches!(isa, Isa::Avx2 | Isa::Avx512),
        "the strict comparison with llama.cpp assumes ziglama-tensor's x86-64 AVX2 or AVX-512 \
         kernels (they add in the order of llama.cpp's x86 code); the active kernel set is \
         {isa:?} (ZIGLAMA_KERNELS={:?})",
        std::env::var("ZIGLAMA_KERNELS").ok()
    );
}

#[test]
fn yarn_matches_llama_cpp_strict() {
    require_x86_simd_kernels();
    check("yarn", yarn, MIN_COSINE);
}

#[test]
fn linear_matches_llama_cpp_strict() {
    require_x86_simd_kernels();
    check("linear", linear, MIN_COSINE);
}
