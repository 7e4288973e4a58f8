//! SmolLM2-135M-Instruct (architecture `llama`) against llama.cpp: last-position logits of
//! the committed prompts, greedy continuations of 128 tokens, and batching invariants.
//!
//! The golden data in `tests/data/llama/` was made by `scripts/golden/llama_smollm2.py` with
//! llama.cpp (llama-cpp-python 0.3.36, AVX-512 build, flash attention off). The tests feed
//! llama.cpp's prompt tokens, so they do not depend on our tokenizer.
//!
//! Two strengths of agreement are checked:
//!
//! - The acceptance criteria of issue 3 (`*_strict`): same top-1, cosine >= 0.9999, greedy
//!   divergence only at a near-tie (top-2 gap < 0.05). In fact every logit equals llama.cpp's
//!   bit for bit and all 15 continuations are equal, because ziglama-tensor's legacy dot
//!   products add in ggml's x86 order (one 8-lane accumulator, as ggml's AVX2
//!   `ggml_vec_dot_q4_1_q8_1`) and its Q8_0/Q8_1 activation quantizers are ggml-cpu's x86 ones
//!   (`id = 127 / amax`, rounding half to even). **Machine requirement:** these tests assume
//!   ziglama-tensor's x86-64 AVX2 or AVX-512 kernels (the default on such a CPU; also
//!   `ZIGLAMA_KERNELS=avx2`), and fail with a message under any other kernel set
//!   (`ZIGLAMA_KERNELS=scalar`, other architectures): there llama.cpp's summation order is not
//!   reproduced (ggml's generic C code is not what llama.cpp runs on this machine), and this
//!   model's massive activations (up to 22,000 in the residual stream) amplify last-bit
//!   differences of the matrix products into logit differences of ~0.5.
//! - With any kernel set, scalar included: same top-1 and cosine >= 0.995 for the last-position
//!   logits (with `ZIGLAMA_KERNELS=scalar` the worst is 0.998, `numbers`). Greedy
//!   continuations are only compared under the machine requirement: with other summation
//!   orders they diverge at gaps up to 0.34 (`chat_simple` under the scalar kernels).

use std::path::PathBuf;
use std::sync::OnceLock;

use ziglama_model::catalog::KnownModel;
use ziglama_model::model::{argmax, Batch, BatchEntry, Model};
use ziglama_model::ModelError;
use ziglama_tensor::{Isa, ThreadPool};

/// Greedy divergence is allowed only where llama.cpp's top-2 logits are this close (issue 3).
const NEAR_TIE: f32 = 0.05;
/// Minimum cosine similarity of our last-position logits with llama.cpp's (issue 3).
const MIN_COSINE: f64 = 0.9999;
/// A near-tie bound for comparisons whose summation orders may differ (see
/// [`prompt_in_one_batch_equals_token_by_token`]).
const NEAR_TIE_ANY: f32 = 0.25;
/// The cosine bound that holds with any kernel set.
const MIN_COSINE_ANY: f64 = 0.995;

struct Case {
    name: String,
    prompt: Vec<u32>,
    greedy: Vec<u32>,
    gaps: Vec<f32>,
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/llama")
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

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(data_dir().join("cases.tsv")).expect("cases.tsv");
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

fn golden_logits(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(data_dir().join(format!("{name}.f32"))).expect("golden logits");
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = KnownModel::SmolLM2
            .ensure()
            .expect("SmolLM2 must be fetchable");
        Model::load(path).expect("SmolLM2 loads")
    })
}

/// The strict tests' machine requirement (see the module documentation): fails, saying why,
/// unless the active kernels are ziglama-tensor's x86-64 AVX2 or AVX-512 ones.
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

fn pool() -> ThreadPool {
    ThreadPool::new(2)
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

/// The bound that holds with any kernel set.
#[test]
fn last_position_logits_match_llama_cpp() {
    check_logits(MIN_COSINE_ANY);
}

/// Issue 3's bound; bit-exact in fact on x86-64 AVX2/AVX-512 (required).
#[test]
fn last_position_logits_match_llama_cpp_strict() {
    require_x86_simd_kernels();
    check_logits(MIN_COSINE);
}

fn check_logits(min_cosine: f64) {
    let model = model();
    let pool = pool();
    let mut failures = Vec::new();
    for case in cases() {
        let want = golden_logits(&case.name);
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
            "{:12} tokens {:3} cosine {cos:.7} max|diff| {max_abs:.4} top1 {top_got} (llama.cpp {top_want}), {unequal} of {} logits not bit-equal",
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
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Issue 3's bound; all continuations equal in fact on x86-64 AVX2/AVX-512 (required).
#[test]
fn greedy_continuations_match_llama_cpp_strict() {
    require_x86_simd_kernels();
    check_greedy(NEAR_TIE);
}

fn check_greedy(near_tie: f32) {
    let model = model();
    let pool = pool();
    let mut failures = Vec::new();
    for case in cases() {
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

/// The two top logits' gap.
fn top2_gap(logits: &[f32]) -> f32 {
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

/// A prompt in one batch (logits at every position) against the same prompt one token per
/// step. As in llama.cpp, the two paths add the attention products in different orders (a
/// batch of several tokens uses tinyBLAS's, a single token ggml_vec_dot_f16's), so they agree
/// to the bounds that hold with any kernel set (with the x86 SIMD kernels on the committed
/// prompt they are equal; under `ZIGLAMA_KERNELS=scalar` the worst cosine is 0.998).
#[test]
fn prompt_in_one_batch_equals_token_by_token() {
    let model = model();
    let pool = pool();
    let case = &cases()[2];
    let n = case.prompt.len();
    let mut whole = model.new_state(n, 1);
    let mut all = Batch::new();
    for (i, &token) in case.prompt.iter().enumerate() {
        all.push(BatchEntry {
            token,
            pos: i,
            seq: 0,
            logits: true,
        });
    }
    let batched = model.forward(&all, &mut whole, &pool).expect("batch");
    let v = model.n_vocab();
    assert_eq!(batched.len(), n * v);
    let mut stepwise = model.new_state(n, 1);
    for (i, &token) in case.prompt.iter().enumerate() {
        let one = model
            .forward(&Batch::one(token, i, 0), &mut stepwise, &pool)
            .expect("step");
        let row = &batched[i * v..][..v];
        let max_abs = one
            .iter()
            .zip(row)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let cos = cosine(&one, row);
        println!("position {i:2}: cosine {cos:.7} max|diff| {max_abs:.4}");
        assert!(cos >= MIN_COSINE_ANY, "position {i}: cosine {cos}");
        assert!(
            argmax(&one) == argmax(row) || top2_gap(row) < NEAR_TIE_ANY,
            "position {i}: top-1 {} vs {}",
            argmax(&one),
            argmax(row)
        );
    }
    // The last position of the batch equals a prompt run with logits for the last entry only.
    let mut last_only = model.new_state(n, 1);
    let last = model
        .forward(&Batch::prompt(&case.prompt, 0, 0), &mut last_only, &pool)
        .expect("prompt");
    assert_eq!(last.as_slice(), &batched[(n - 1) * v..]);
}

#[test]
fn two_sequences_in_one_batch_equal_each_alone() {
    let model = model();
    let pool = pool();
    let all = cases();
    let (a, b) = (&all[0].prompt, &all[1].prompt);
    let n_ctx = a.len().max(b.len());
    let mut batch = Batch::prompt(a, 0, 0);
    batch.entries.extend(Batch::prompt(b, 0, 1).entries);
    let mut state = model.new_state(n_ctx, 2);
    let both = model
        .forward(&batch, &mut state, &pool)
        .expect("two sequences");
    let v = model.n_vocab();
    for (seq, prompt) in [a, b].into_iter().enumerate() {
        let mut alone = model.new_state(n_ctx, 1);
        let one = model
            .forward(&Batch::prompt(prompt, 0, 0), &mut alone, &pool)
            .expect("alone");
        let max_abs = one
            .iter()
            .zip(&both[seq * v..][..v])
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert_eq!(max_abs, 0.0, "sequence {seq}: max|diff| {max_abs}");
    }
}

#[test]
fn prompt_longer_than_the_context_is_an_error() {
    let model = model();
    let mut state = model.new_state(4, 1);
    let err = model
        .forward(&Batch::prompt(&[1, 2, 3, 4, 5], 0, 0), &mut state, &pool())
        .unwrap_err();
    assert!(
        matches!(err, ModelError::InvalidBatch { index: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("past the context"), "{err}");
}

#[test]
fn token_outside_the_vocabulary_is_an_error() {
    let model = model();
    let mut state = model.new_state(4, 1);
    let err = model
        .forward(&Batch::one(u32::MAX, 0, 0), &mut state, &pool())
        .unwrap_err();
    assert!(err.to_string().contains("outside the vocabulary"), "{err}");
    let err = model
        .forward(&Batch::one(1, 0, 3), &mut state, &pool())
        .unwrap_err();
    assert!(err.to_string().contains("sequence 3"), "{err}");
}
