//! The samplers llama.cpp does not have, against their papers' definitions computed here
//! independently (in f64, on small distributions where every step can be checked).

use ziglama_infer::sampling::{
    Candidates, Epsilon, Eta, Greedy, LogitProcessor, NoRepeatNgram, Sampler, SamplerChain,
    TailFree,
};

fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = logits.iter().map(|&l| (l as f64 - max).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|x| x / z).collect()
}

fn kept_ids(c: &Candidates) -> Vec<u32> {
    let mut ids: Vec<u32> = c.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    ids
}

/// Phibbs (2019): the tail starts where the normalised absolute second differences of the
/// sorted probabilities have accumulated more than z.
#[test]
fn tail_free_cuts_where_the_curve_flattens() {
    let logits = [4.0f32, 3.0, 2.9, 0.5, 0.4, 0.3, 0.2, 0.1];
    let p = softmax(&logits); // already sorted descending
    let d2: Vec<f64> = (0..p.len() - 2)
        .map(|i| ((p[i] - p[i + 1]) - (p[i + 1] - p[i + 2])).abs())
        .collect();
    let total: f64 = d2.iter().sum();
    for z in [0.3f32, 0.6, 0.9, 0.95] {
        let mut cum = 0.0;
        let mut want = logits.len();
        for (i, d) in d2.iter().enumerate() {
            cum += d / total;
            if cum > z as f64 && i >= 1 {
                want = i;
                break;
            }
        }
        let mut c = Candidates::from_logits(&logits).unwrap();
        TailFree::new(z, 1).unwrap().apply(&mut c).unwrap();
        assert_eq!(c.len(), want.max(1), "z = {z}");
        assert_eq!(kept_ids(&c), (0..c.len() as u32).collect::<Vec<_>>());
    }
}

/// Hewitt et al. (2022): epsilon keeps p >= epsilon; eta keeps p >= min(eps, sqrt(eps) e^-H).
#[test]
fn epsilon_and_eta_floors() {
    let logits = [2.0f32, 1.0, 0.0, -2.0, -4.0, -6.0, -9.0];
    let p = softmax(&logits);
    let h: f64 = -p.iter().map(|&x| x * x.ln()).sum::<f64>();
    for eps in [1e-4f32, 3e-3, 0.02, 0.1] {
        let want: Vec<u32> = (0..p.len() as u32)
            .filter(|&i| p[i as usize] >= eps as f64)
            .collect();
        let mut c = Candidates::from_logits(&logits).unwrap();
        Epsilon::new(eps, 1).unwrap().apply(&mut c).unwrap();
        assert_eq!(kept_ids(&c), want, "epsilon {eps}");

        let eta = (eps as f64).min((eps as f64).sqrt() * (-h).exp());
        let want: Vec<u32> = (0..p.len() as u32)
            .filter(|&i| p[i as usize] >= eta)
            .collect();
        let mut c = Candidates::from_logits(&logits).unwrap();
        Eta::new(eps, 1).unwrap().apply(&mut c).unwrap();
        assert_eq!(kept_ids(&c), want, "eta with epsilon {eps} (eta = {eta})");
    }
    // The floor never empties the set, and min_keep holds.
    let mut c = Candidates::from_logits(&[0.0; 10]).unwrap();
    Epsilon::new(0.5, 3).unwrap().apply(&mut c).unwrap();
    assert_eq!(c.len(), 3);
}

/// No-repeat-n-gram: greedy decoding of these logits would repeat token 0 forever; with
/// trigram blocking no trigram ever occurs twice.
#[test]
fn no_repeat_ngram_blocks_every_repeated_trigram() {
    let logits: Vec<f32> = (0..50).map(|i| -(i as f32)).collect();
    let mut chain = SamplerChain::new(Greedy::new()).with(NoRepeatNgram::new(3));
    let mut out = Vec::new();
    for _ in 0..30 {
        let t = chain.sample(&logits).unwrap();
        chain.accept(t);
        out.push(t);
    }
    let mut seen = std::collections::HashSet::new();
    for w in out.windows(3) {
        assert!(seen.insert(w.to_vec()), "trigram {w:?} repeated in {out:?}");
    }
    chain.reset();
    assert_eq!(chain.sample(&logits).unwrap(), 0);
}
