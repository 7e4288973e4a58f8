//! Contrastive search: the scoring rule against a reference implementation of the paper's
//! formula (numpy, `scripts/golden/contrastive_reference.py`) on a committed 64-dim
//! recording, and on the real model (SmolLM2): with one candidate it is greedy decoding
//! (llama.cpp's greedy transcript), and it repeats itself less than greedy decoding
//! (distinct-2 and distinct-3 of the continuation).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use ziglama_infer::generator::{
    contrastive_pick, contrastive_scores, ContrastiveSearch, GenerationConfig, TextGenerator,
};
use ziglama_infer::model::catalog::KnownModel;
use ziglama_infer::model::model::Model;

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

#[test]
fn scores_and_picks_equal_the_numpy_reference_on_the_recording() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/generator/contrastive_synthetic.json");
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the recording")).unwrap();
    let dim = data["dim"].as_u64().unwrap() as usize;
    let grow_alpha = data["grow_alpha"].as_f64().unwrap();
    let mut context: Vec<f32> = floats(&data["context"]).iter().map(|&x| x as f32).collect();
    let steps = data["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 8);
    let mut penalised = 0;
    for (i, step) in steps.iter().enumerate() {
        let probs = floats(&step["probs"]);
        let candidates: Vec<f32> = floats(&step["candidates"])
            .iter()
            .map(|&x| x as f32)
            .collect();
        assert_eq!(candidates.len(), probs.len() * dim);
        let mut grow = None;
        for case in step["cases"].as_array().unwrap() {
            let alpha = case["alpha"].as_f64().unwrap() as f32;
            let want = floats(&case["scores"]);
            let got = contrastive_scores(&probs, &candidates, &context, dim, alpha);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() < 1e-9,
                    "step {i}, alpha {alpha}: {got:?} vs {want:?}"
                );
            }
            let pick = case["pick"].as_u64().unwrap() as usize;
            assert_eq!(
                contrastive_pick(&probs, &candidates, &context, dim, alpha),
                Some(pick),
                "step {i}, alpha {alpha}"
            );
            if alpha == 0.0 {
                assert_eq!(pick, 0, "alpha 0 is greedy");
            } else if pick != 0 {
                penalised += 1;
            }
            if (f64::from(alpha) - grow_alpha).abs() < 1e-6 {
                grow = Some(pick);
            }
        }
        let g = grow.expect("the alpha the run continues with");
        context.extend_from_slice(&candidates[g * dim..(g + 1) * dim]);
    }
    assert!(
        penalised >= 10,
        "the penalty should change the pick often: {penalised}"
    );
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::load(KnownModel::SmolLM2.ensure().expect("SmolLM2")).expect("load"))
}

fn generate(config: GenerationConfig, prompt: &str) -> Vec<u32> {
    TextGenerator::builder(model())
        .config(config)
        .context_size(128)
        .threads(2)
        .build()
        .unwrap()
        .generate(prompt)
        .unwrap()
        .tokens
}

/// The share of distinct n-grams among all n-grams of `tokens` (Su et al.'s diversity
/// measure is the product of these for n = 2, 3, 4).
fn distinct(tokens: &[u32], n: usize) -> f64 {
    let grams: Vec<&[u32]> = tokens.windows(n).collect();
    let unique: HashSet<&[u32]> = grams.iter().copied().collect();
    unique.len() as f64 / grams.len().max(1) as f64
}

/// llama.cpp's greedy continuation of "The capital of France is" (golden case `capital`).
fn golden_capital() -> Vec<u32> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ziglama-model/tests/data/llama/cases.tsv");
    let text = std::fs::read_to_string(path).expect("cases.tsv");
    let line = text.lines().find(|l| l.starts_with("capital\t")).unwrap();
    let field = line.split('\t').nth(2).unwrap();
    field.split(',').map(|t| t.parse().unwrap()).collect()
}

#[test]
fn one_candidate_is_greedy_decoding() {
    let tokens = generate(
        GenerationConfig::default()
            .with_max_tokens(24)
            .with_contrastive(ContrastiveSearch::new(0.6, 1)),
        "The capital of France is",
    );
    assert_eq!(tokens, golden_capital()[..24]);
}

#[test]
fn contrastive_search_repeats_less_than_greedy_decoding() {
    let prompt = "The capital of France is";
    let n = 48;
    let greedy = generate(
        GenerationConfig::greedy().with_max_tokens(n).ignoring_eos(),
        prompt,
    );
    let contrastive = generate(
        GenerationConfig::default()
            .with_max_tokens(n)
            .ignoring_eos()
            .with_contrastive(ContrastiveSearch::new(0.6, 4)),
        prompt,
    );
    assert_eq!(greedy, golden_capital()[..n]);
    assert_eq!(contrastive.len(), n);
    let (g2, g3) = (distinct(&greedy, 2), distinct(&greedy, 3));
    let (c2, c3) = (distinct(&contrastive, 2), distinct(&contrastive, 3));
    println!("distinct-2 greedy {g2:.3} contrastive {c2:.3}; distinct-3 greedy {g3:.3} contrastive {c3:.3}");
    assert!(
        c2 > g2 && c3 > g3,
        "greedy ({g2}, {g3}) vs contrastive ({c2}, {c3})"
    );
}
