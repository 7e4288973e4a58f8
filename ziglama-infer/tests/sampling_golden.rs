//! The sampler catalogue against llama.cpp, step by step.
//!
//! `tests/data/sampling/vectors.json` holds llama.cpp's answers (scripts/golden/
//! sampling_vectors.py): for every llama.cpp sampler, several parameter sets, on four logit
//! vectors (random ones of 49,152 and 262,144 tokens regenerated here bit for bit, and the real
//! last-position logits of SmolLM2 and Gemma 3 for "The capital of France is"), the candidates
//! left after the chain, their count, how many are finite, the selected token, and the
//! candidates of the tokens penalties and biases touch. DRY runs with and without sequence
//! breakers (llama.cpp's "\n" and ":" through SmolLM2's vocabulary, on the 49,152-token
//! vectors). Multi-step cases carry the state of
//! penalties, DRY, Mirostat's mu and the seeded generators from step to step.
//!
//! Tolerances: probabilities within 1e-5 absolute (the bar; the f32 sums may run in a
//! different order after sorting), logits within 1e-5 relative (the same f32 operations; only
//! the order of reductions such as the mean of top-n-sigma can differ). Ids, counts and
//! selected tokens must be equal.

use std::path::PathBuf;

use serde_json::Value;
use ziglama_infer::sampling::{
    Candidates, Dist, Dry, DynamicTemperature, Greedy, LogitBias, LogitProcessor, MinP, Mirostat,
    MirostatV2, Penalties, Sampler, SamplerChain, Temperature, TopK, TopNSigma, TopP, Typical, Xtc,
};

const P_TOL: f32 = 1e-5;
const LOGIT_REL_TOL: f32 = 1e-5;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/sampling")
}

/// The random logits of the golden script: splitmix64 counter stream, 24-bit uniforms,
/// `((24 u0) u1) u2 - 6` in f32.
fn splitmix_logits(seed: u64, n: usize) -> Vec<f32> {
    let draw = |i: u64| {
        let mut z = seed.wrapping_add((i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 * (1.0 / 16_777_216.0)
    };
    (0..n as u64)
        .map(|i| {
            let (u0, u1, u2) = (draw(3 * i), draw(3 * i + 1), draw(3 * i + 2));
            24.0f32 * u0 * u1 * u2 - 6.0
        })
        .collect()
}

fn load_logits(source: &str) -> Vec<f32> {
    let parts: Vec<&str> = source.split(':').collect();
    match parts[0] {
        "splitmix" => splitmix_logits(parts[1].parse().unwrap(), parts[2].parse().unwrap()),
        "file" => {
            let bytes = std::fs::read(data_dir().join(parts[1])).expect("golden logits file");
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        }
        other => panic!("unknown logits source {other}"),
    }
}

fn num(v: &Value) -> f32 {
    match v {
        Value::String(s) => match s.as_str() {
            "inf" => f32::INFINITY,
            "-inf" => f32::NEG_INFINITY,
            _ => f32::NAN,
        },
        _ => v.as_f64().expect("a number") as f32,
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().expect("an integer")
}

fn keep(v: &Value) -> usize {
    int(v).max(0) as usize
}

/// The chain of one case: processors, then an optional selector.
struct Chain {
    processors: Vec<Box<dyn LogitProcessor>>,
    selector: Option<Box<dyn Sampler>>,
}

impl Chain {
    /// `breaker_tokens`: the single-token DRY breakers llama.cpp derived from the breaker
    /// strings with SmolLM2's vocabulary (the tokens whose text contains one).
    fn from_json(spec: &Value, n_vocab: usize, breaker_tokens: &[u32]) -> Chain {
        let mut processors: Vec<Box<dyn LogitProcessor>> = Vec::new();
        let mut selector: Option<Box<dyn Sampler>> = None;
        for step in spec.as_array().unwrap() {
            let (k, v) = step.as_object().unwrap().iter().next().unwrap();
            let a = |i: usize| &v[i];
            let p: Box<dyn LogitProcessor> = match k.as_str() {
                "top_k" => Box::new(TopK::new(keep(v))),
                "top_p" => Box::new(TopP::new(num(a(0)), keep(a(1))).unwrap()),
                "min_p" => Box::new(MinP::new(num(a(0)), keep(a(1))).unwrap()),
                "typical" => Box::new(Typical::new(num(a(0)), keep(a(1))).unwrap()),
                "temp" => Box::new(Temperature::new(num(v)).unwrap()),
                "temp_ext" => {
                    Box::new(DynamicTemperature::new(num(a(0)), num(a(1)), num(a(2))).unwrap())
                }
                "xtc" => {
                    Box::new(Xtc::new(num(a(0)), num(a(1)), keep(a(2)), int(a(3)) as u32).unwrap())
                }
                "top_n_sigma" => Box::new(TopNSigma::new(num(v)).unwrap()),
                "penalties" => {
                    Box::new(Penalties::new(keep(a(0)), num(a(1)), num(a(2)), num(a(3))).unwrap())
                }
                "dry" => Box::new(
                    Dry::new(num(a(0)), num(a(1)), keep(a(2)), keep(a(3)), Vec::new()).unwrap(),
                ),
                "dry_breakers" => Box::new(
                    Dry::new(
                        num(a(0)),
                        num(a(1)),
                        keep(a(2)),
                        keep(a(3)),
                        breaker_tokens.iter().map(|&t| vec![t]),
                    )
                    .unwrap(),
                ),
                "logit_bias" => Box::new(
                    LogitBias::new(
                        v.as_array()
                            .unwrap()
                            .iter()
                            .map(|tb| (int(&tb[0]) as u32, num(&tb[1]))),
                    )
                    .unwrap(),
                ),
                "greedy" => {
                    selector = Some(Box::new(Greedy::new()));
                    continue;
                }
                "dist" => {
                    selector = Some(Box::new(Dist::new(int(v) as u32)));
                    continue;
                }
                "mirostat" => {
                    selector = Some(Box::new(
                        Mirostat::new(n_vocab, int(a(0)) as u32, num(a(1)), num(a(2)), keep(a(3)))
                            .unwrap(),
                    ));
                    continue;
                }
                "mirostat_v2" => {
                    selector = Some(Box::new(
                        MirostatV2::new(int(a(0)) as u32, num(a(1)), num(a(2))).unwrap(),
                    ));
                    continue;
                }
                other => panic!("unknown sampler {other}"),
            };
            assert!(selector.is_none(), "a selector must come last");
            processors.push(p);
        }
        Chain {
            processors,
            selector,
        }
    }

    fn accept(&mut self, token: u32) {
        for p in &mut self.processors {
            p.accept(token);
        }
        if let Some(s) = &mut self.selector {
            s.accept(token);
        }
    }

    fn step(&mut self, c: &mut Candidates) -> Option<u32> {
        for p in &mut self.processors {
            p.apply(c).unwrap();
        }
        self.selector.as_mut().map(|s| s.select(c).unwrap())
    }
}

fn close_logit(ours: f32, theirs: f32) -> bool {
    ours == theirs || (ours - theirs).abs() <= LOGIT_REL_TOL * theirs.abs().max(1.0)
}

fn compare_entries(
    what: &str,
    ours: &[(u32, f32, f32)],
    theirs: &[Value],
    errors: &mut Vec<String>,
) {
    if ours.len() != theirs.len() {
        errors.push(format!(
            "{what}: {} entries, llama.cpp {}",
            ours.len(),
            theirs.len()
        ));
        return;
    }
    for (o, t) in ours.iter().zip(theirs) {
        let (id, l, p) = (int(&t[0]) as u32, num(&t[1]), num(&t[2]));
        if o.0 != id || !close_logit(o.1, l) || (o.2 - p).abs() > P_TOL {
            errors.push(format!(
                "{what}: ours (id {}, logit {}, p {}), llama.cpp (id {id}, logit {l}, p {p})",
                o.0, o.1, o.2
            ));
            return;
        }
    }
}

/// Runs every case on one logits source; returns the number of steps compared.
fn run_source(source: &str) -> usize {
    let text = std::fs::read_to_string(data_dir().join("vectors.json")).expect("vectors.json");
    let golden: Value = serde_json::from_str(&text).unwrap();
    let logits = load_logits(source);
    if let Some(check) = golden["generator_check"].get(source) {
        for (i, v) in check.as_array().unwrap().iter().enumerate() {
            assert_eq!(logits[i], num(v), "generator of {source} at {i}");
        }
    }
    let breaker_tokens: Vec<u32> = golden["dry_breakers"]["smollm2"]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| int(t) as u32)
        .collect();
    let mut errors = Vec::new();
    let mut n_steps = 0;
    let mut n_sampled = 0;
    let mut c = Candidates::new();
    for case in golden["cases"].as_array().unwrap() {
        if case["logits"] != source {
            continue;
        }
        let name = serde_json::to_string(&case["chain"]).unwrap();
        let mut chain = Chain::from_json(&case["chain"], logits.len(), &breaker_tokens);
        // The same chain as a SamplerChain, through `Sampler::sample` (the path a generator
        // takes: identity processors skipped, top-k fused with the candidate fill).
        let mut sampler = {
            let Chain {
                processors,
                selector,
            } = Chain::from_json(&case["chain"], logits.len(), &breaker_tokens);
            selector.map(|s| SamplerChain::from_boxed(processors, s))
        };
        if let Some(h) = case.get("history") {
            for t in h.as_array().unwrap() {
                chain.accept(int(t) as u32);
                if let Some(s) = &mut sampler {
                    s.accept(int(t) as u32);
                }
            }
        }
        for (s, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            let what = format!("{source} {name} step {s}");
            c.fill_from_logits(&logits).unwrap();
            let selected = chain.step(&mut c);
            n_steps += 1;
            let want_sel = step["selected"].as_i64().map(|x| x as u32);
            if selected != want_sel {
                errors.push(format!(
                    "{what}: selected {selected:?}, llama.cpp {want_sel:?}"
                ));
            }
            if c.len() != keep(&step["n_candidates"]) {
                errors.push(format!(
                    "{what}: {} candidates, llama.cpp {}",
                    c.len(),
                    step["n_candidates"]
                ));
            }
            let finite = c.iter().filter(|x| x.logit.is_finite()).count();
            if finite != keep(&step["n_finite"]) {
                errors.push(format!(
                    "{what}: {finite} finite, llama.cpp {}",
                    step["n_finite"]
                ));
            }
            let mut left: Vec<(u32, f32, f32)> = c.iter().map(|x| (x.id, x.logit, x.p)).collect();
            left.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let want = step["candidates"].as_array().unwrap();
            left.truncate(want.len());
            compare_entries(&what, &left, want, &mut errors);
            let want_probes = step["probes"].as_array().unwrap();
            let probes: Vec<(u32, f32, f32)> = want_probes
                .iter()
                .filter_map(|t| {
                    let id = int(&t[0]) as u32;
                    c.iter().find(|x| x.id == id).map(|x| (x.id, x.logit, x.p))
                })
                .collect();
            compare_entries(&format!("{what} probes"), &probes, want_probes, &mut errors);
            if let Some(sampler) = &mut sampler {
                let token = sampler.sample(&logits).unwrap();
                n_sampled += 1;
                let left = sampler.candidates().unwrap();
                if Some(token) != want_sel || left.len() != c.len() {
                    errors.push(format!(
                        "{what}: SamplerChain::sample chose {token} of {}, step by step {want_sel:?} of {}",
                        left.len(),
                        c.len()
                    ));
                }
                sampler.accept(int(&step["accepted_after"]) as u32);
            }
            chain.accept(int(&step["accepted_after"]) as u32);
        }
    }
    assert!(
        n_sampled >= 40,
        "{n_sampled} steps through SamplerChain::sample"
    );
    assert!(
        errors.is_empty(),
        "{} mismatches:\n{}",
        errors.len(),
        errors.join("\n")
    );
    n_steps
}

#[test]
fn random_logits_49152() {
    assert!(run_source("splitmix:1:49152") >= 60);
}

#[test]
fn random_logits_262144() {
    assert!(run_source("splitmix:2:262144") >= 60);
}

#[test]
fn smollm2_logits() {
    assert!(run_source("file:smollm2.f32") >= 60);
}

#[test]
fn gemma3_logits() {
    assert!(run_source("file:gemma3.f32") >= 60);
}
