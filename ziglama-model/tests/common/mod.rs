//! Golden-data comparisons with llama.cpp shared by the architecture tests: the committed
//! cases (prompt tokens, greedy continuation, top-2 gaps) and last-position logits that
//! `scripts/golden/llama_smollm2.py` and `scripts/golden/gemma3.py` record.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ziglama_model::model::{argmax, Batch, Model};
use ziglama_tensor::{Isa, ThreadPool};

/// Greedy divergence is allowed only where llama.cpp's top-2 logits are this close.
pub(crate) const NEAR_TIE: f32 = 0.05;
/// Minimum cosine similarity of our last-position logits with llama.cpp's.
pub(crate) const MIN_COSINE: f64 = 0.9999;

/// One committed prompt.
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) prompt: Vec<u32>,
    pub(crate) greedy: Vec<u32>,
    pub(crate) gaps: Vec<f32>,
}

/// `tests/data/<name>` of this crate.
pub(crate) fn data_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn list<T: std::str::FromStr>(field: &str) -> Vec<T>
where
    T::Err: std::fmt::Debug,
{
    field
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("a number in cases.tsv"))
        .collect()
}

/// The cases of `dir/cases.tsv` (at least 12).
pub(crate) fn cases(dir: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(dir.join("cases.tsv")).expect("cases.tsv");
    let cases: Vec<Case> = text
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 4, "cases.tsv line {line:?}");
            Case {
                name: f[0].to_owned(),
                prompt: list(f[1]),
                greedy: list(f[2]),
                gaps: list(f[3]),
            }
        })
        .collect();
    assert!(cases.len() >= 12, "only {} golden cases", cases.len());
    cases
}

/// llama.cpp's last-position logits of case `name`.
pub(crate) fn golden_logits(dir: &Path, name: &str) -> Vec<f32> {
    let bytes = std::fs::read(dir.join(format!("{name}.f32"))).expect("golden logits");
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The strict tests' machine requirement: fails, saying why, unless the active kernels are
/// ziglama-tensor's x86-64 AVX2 or AVX-512 ones (which add in llama.cpp's x86 order).
pub(crate) fn require_x86_simd_kernels() {
    let isa = Isa::active();
    assert!(
        matches!(isa, Isa::Avx2 | Isa::Avx512),
        "the strict comparison with llama.cpp assumes ziglama-tensor's x86-64 AVX2 or AVX-512 \
         kernels (they add in the order of llama.cpp's x86 code); the active kernel set is \
         {isa:?} (ZIGLAMA_KERNELS={:?})",
        std::env::var("ZIGLAMA_KERNELS").ok()
    );
}

pub(crate) fn pool() -> ThreadPool {
    ThreadPool::new(2)
}

pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa.sqrt() * bb.sqrt())
}

/// The two top logits' gap.
pub(crate) fn top2_gap(logits: &[f32]) -> f32 {
    let (mut a, mut b) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for &v in logits {
        if v > a {
            (a, b) = (v, a);
        } else if v > b {
            b = v;
        }
    }
    a - b
}

/// Every case's last-position logits against llama.cpp's: same top-1 and cosine at least
/// `min_cosine`; prints per case the cosine, the largest difference and the count of logits
/// that are not bit-equal.
pub(crate) fn check_logits(model: &Model, dir: &Path, min_cosine: f64) {
    check_logits_of(model, dir, min_cosine, &[]);
}

/// [`check_logits`], and every case's logits must equal llama.cpp's bit for bit.
pub(crate) fn check_logits_bit_equal(model: &Model, dir: &Path) {
    let names: Vec<String> = cases(dir).into_iter().map(|c| c.name).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    check_logits_of(model, dir, 0.9999, &names);
}

/// [`check_logits`]; the cases named in `bit_exact` must also equal llama.cpp's bit for bit.
fn check_logits_of(model: &Model, dir: &Path, min_cosine: f64, bit_exact: &[&str]) {
    let pool = pool();
    let mut failures = Vec::new();
    for case in cases(dir) {
        let want = golden_logits(dir, &case.name);
        assert_eq!(want.len(), model.n_vocab(), "{}: golden length", case.name);
        let mut state = model.new_state(case.prompt.len(), 1);
        let got = model
            .forward(&Batch::prompt(&case.prompt, 0, 0), &mut state, &pool)
            .expect("forward");
        let max_abs = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let cos = cosine(&got, &want);
        let (top_got, top_want) = (argmax(&got), argmax(&want));
        let unequal = got
            .iter()
            .zip(&want)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        println!(
            "{:12} tokens {:4} cosine {cos:.7} max|diff| {max_abs:.4} top1 {top_got} (llama.cpp {top_want}), {unequal} of {} logits not bit-equal",
            case.name,
            case.prompt.len(),
            want.len()
        );
        if top_got != top_want || cos < min_cosine {
            failures.push(format!(
                "{}: top1 {top_got} vs {top_want}, cosine {cos}",
                case.name
            ));
        }
        if bit_exact.contains(&case.name.as_str()) && unequal > 0 {
            failures.push(format!("{}: {unequal} logits not bit-equal", case.name));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Every case's greedy continuation against llama.cpp's, token for token; a divergence is
/// allowed only where llama.cpp's top-2 gap is below `near_tie` (0 allows none), and is
/// reported.
pub(crate) fn check_greedy(model: &Model, dir: &Path, near_tie: f32) {
    let pool = pool();
    let mut failures = Vec::new();
    for case in cases(dir) {
        let n_ctx = case.prompt.len() + case.greedy.len();
        let mut state = model.new_state(n_ctx, 1);
        let mut logits = model
            .forward(&Batch::prompt(&case.prompt, 0, 0), &mut state, &pool)
            .expect("prompt");
        let mut outcome = format!("equal ({} tokens)", case.greedy.len());
        for (step, &want) in case.greedy.iter().enumerate() {
            let got = argmax(&logits) as u32;
            if got != want {
                let gap = case.gaps[step];
                outcome = format!(
                    "diverges at step {step}: {got} vs llama.cpp {want}, llama.cpp top-2 gap {gap}"
                );
                if gap >= near_tie {
                    failures.push(format!("{}: {outcome}", case.name));
                } else {
                    outcome.push_str(&format!(" (below {near_tie}: allowed)"));
                }
                break;
            }
            if step + 1 == case.greedy.len() {
                break;
            }
            logits = model
                .forward(
                    &Batch::one(got, case.prompt.len() + step, 0),
                    &mut state,
                    &pool,
                )
                .expect("decode step");
        }
        println!("{:12} {outcome}", case.name);
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("token array")
        .iter()
        .map(|t| t.as_u64().expect("token id") as u32)
        .collect()
}

/// The tokenizer corpus `tests/data/tokenizer/<file>` against `tok`: every string encodes to
/// llama.cpp's tokens with and without `parse_special`, and decodes back to its bytes.
pub(crate) fn check_corpus(tok: &ziglama_model::tokenizer::Tokenizer, file: &str) {
    let path = data_dir("tokenizer").join(file);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read corpus")).expect("json");
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 300, "corpus has {} strings", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let text = case["text"].as_str().expect("text");
        for (key, parse_special) in [("tokens", false), ("tokens_special", true)] {
            let expected = ids(&case[key]);
            let got = tok.encode(text, true, parse_special).unwrap();
            if got != expected {
                failures.push(format!(
                    "{text:?} (parse_special {parse_special})\n  expected {expected:?}\n  got      {got:?}"
                ));
            }
            let body = if tok.add_bos() { &got[1..] } else { &got[..] };
            if tok.decode(body) != text.as_bytes() {
                failures.push(format!(
                    "{text:?} (parse_special {parse_special}) decodes to {:?}",
                    tok.decode_lossy(body)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} checks failed:\n{}",
        failures.len(),
        cases.len() * 4,
        failures.join("\n")
    );
}

/// The plan that turns SmolLM2 Q4_1 into what `llama-quantize --allow-requantize
/// SmolLM2-135M-Instruct.Q4_1.gguf OUT Q4_0` makes: every matrix Q4_0, the Q8_0 token
/// embeddings (the tied output matrix, which llama-quantize's Q4_0 mixture leaves Q8_0)
/// copied, the norms kept F32. `tests/requantize_smollm2.rs` checks the result against
/// llama-quantize's file, tensor by tensor.
pub(crate) fn smollm2_q4_0_plan() -> ziglama_model::gguf::requantize::RequantizePlan {
    use ziglama_model::tensor::GgmlType;
    ziglama_model::gguf::requantize::RequantizePlan::new(GgmlType::Q4_0)
        .with_type("token_embd.weight", GgmlType::Q8_0)
}

/// SmolLM2 requantized to Q4_0 by [`smollm2_q4_0_plan`], built once per test binary, in
/// memory (no file is written).
pub(crate) fn smollm2_q4_0_gguf() -> &'static ziglama_model::gguf::GgufFile {
    use std::sync::{Arc, OnceLock};
    use ziglama_model::catalog::KnownModel;
    use ziglama_model::gguf::GgufFile;
    static FILE: OnceLock<GgufFile> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = KnownModel::SmolLM2
            .ensure()
            .expect("SmolLM2 must be fetchable");
        let q4_1 = GgufFile::open(path).expect("SmolLM2 opens");
        let bytes = smollm2_q4_0_plan()
            .apply(&q4_1)
            .and_then(|w| w.to_bytes())
            .expect("SmolLM2 requantizes to Q4_0");
        GgufFile::from_bytes(Arc::new(bytes)).expect("the requantized file parses")
    })
}

/// The model of [`smollm2_q4_0_gguf`] (sharing its bytes), built once per test binary:
/// SmolLM2 with the weights llama-quantize gives it for Q4_0, for comparisons with
/// llama.cpp's answers on that file (`tests/data/llama-q4_0/`).
pub(crate) fn smollm2_q4_0() -> &'static Model {
    use std::sync::OnceLock;
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::from_gguf(smollm2_q4_0_gguf().clone()).expect("SmolLM2 Q4_0 loads"))
}
