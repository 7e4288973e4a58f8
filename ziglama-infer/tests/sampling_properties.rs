//! Invariants of the sampler catalogue, on random logits (proptest) and in distribution
//! (a chi-square test of dist's picks).

use proptest::prelude::*;
use ziglama_infer::sampling::{
    Candidates, Dist, Epsilon, Eta, Greedy, LogitProcessor, MinP, Mirostat, MirostatV2,
    NoRepeatNgram, Preset, Sampler, SamplerChain, SamplingConfig, SamplingError, TailFree,
    Temperature, TopK, TopNSigma, TopP, Typical, Xtc,
};

/// Logits as a model gives them: finite, some tokens masked with `-inf` (at least one not).
fn logits() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(
        prop_oneof![9 => -30.0f32..30.0, 1 => Just(f32::NEG_INFINITY)],
        1..400,
    )
    .prop_filter("one finite logit", |v| v.iter().any(|l| l.is_finite()))
}

/// Every truncating processor with a `min_keep`, built from proptest's parameters.
fn truncators(p: f32, min_keep: usize, seed: u32) -> Vec<Box<dyn LogitProcessor>> {
    vec![
        Box::new(TopP::new(p, min_keep).unwrap()),
        Box::new(MinP::new(p, min_keep).unwrap()),
        Box::new(Typical::new(p, min_keep).unwrap()),
        Box::new(Xtc::new(1.0, p * 0.5, min_keep, seed).unwrap()),
        Box::new(TailFree::new(p, min_keep).unwrap()),
        Box::new(Epsilon::new(p * 0.5, min_keep).unwrap()),
        Box::new(Eta::new(p * 0.5, min_keep).unwrap()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// After dist, the probabilities of the candidates left sum to 1 within 1e-5 (f32 sums of
    /// up to 400 terms), whatever the chain before it.
    #[test]
    fn probabilities_sum_to_one(l in logits(), k in 0usize..50, p in 0.0f32..=1.0, t in 0.05f32..3.0,
                                seed: u32) {
        let mut chain = SamplerChain::new(Dist::new(seed))
            .with(TopK::new(k))
            .with(TopP::new(p, 1).unwrap())
            .with(MinP::new(p * 0.5, 1).unwrap())
            .with(Temperature::new(t).unwrap());
        let token = chain.sample(&l).unwrap();
        let c = chain.candidates().unwrap();
        prop_assert!(c.is_normalized());
        let sum: f32 = c.iter().map(|c| c.p).sum();
        prop_assert!((sum - 1.0).abs() <= 1e-5, "sum {sum}");
        prop_assert!(l[token as usize].is_finite());
        let mut s = Candidates::from_logits(&l).unwrap();
        s.softmax(true).unwrap();
        let sum: f32 = s.iter().map(|c| c.p).sum();
        prop_assert!((sum - 1.0).abs() <= 1e-5, "softmax sum {sum}");
    }

    /// Every truncating processor keeps at least min(min_keep, n) candidates (and at least one).
    #[test]
    fn min_keep_is_honoured(l in logits(), p in 0.0f32..=1.0, min_keep in 0usize..60, seed: u32) {
        for mut proc in truncators(p, min_keep, seed) {
            let mut c = Candidates::from_logits(&l).unwrap();
            proc.apply(&mut c).unwrap();
            let want = min_keep.min(l.len()).max(1);
            prop_assert!(c.len() >= want, "{} kept {} of {}, min_keep {min_keep}",
                proc.name(), c.len(), l.len());
        }
    }

    /// The same seed gives the same tokens, across fresh chains and after reset.
    #[test]
    fn same_seed_same_tokens(l in logits(), seed: u32, preset in 0usize..3) {
        let preset = [Preset::Creative, Preset::Balanced, Preset::Focused][preset];
        let cfg = SamplingConfig::preset(preset).with_seed(seed);
        let run = |chain: &mut SamplerChain| -> Vec<u32> {
            (0..12).map(|_| { let t = chain.sample(&l).unwrap(); chain.accept(t); t }).collect()
        };
        let mut a = cfg.build(l.len()).unwrap();
        let mut b = cfg.build(l.len()).unwrap();
        let first = run(&mut a);
        prop_assert_eq!(&first, &run(&mut b));
        a.reset();
        prop_assert_eq!(&first, &run(&mut a));
    }

    /// No panic on any admissible input: every sampler either chooses a finite-logit token or
    /// says why not.
    #[test]
    fn never_panics(l in logits(), seed: u32, n in 0.0f32..4.0) {
        let mut selectors: Vec<Box<dyn Sampler>> = vec![
            Box::new(Greedy::new()),
            Box::new(Dist::new(seed)),
            Box::new(Mirostat::new(l.len(), seed, 5.0, 0.1, 100).unwrap()),
            Box::new(MirostatV2::new(seed, 5.0, 0.1).unwrap()),
            Box::new(SamplerChain::new(Dist::new(seed)).with(TopNSigma::new(n).unwrap())),
            Box::new(SamplerChain::new(Greedy::new()).with(NoRepeatNgram::new(2))),
        ];
        for s in &mut selectors {
            let t = s.sample(&l).unwrap();
            prop_assert!(l[t as usize].is_finite() || s.name() == "greedy");
            s.accept(t);
        }
    }
}

/// dist's picks follow the distribution: 200,000 draws over 12 tokens, Pearson's chi-square
/// against the softmax below 31.26, the 0.999 quantile of chi-square with 11 degrees of
/// freedom (a correct sampler fails one seed in a thousand; the seeds are fixed, so the test
/// is deterministic).
#[test]
fn dist_follows_the_distribution_chi_square() {
    let logits: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin() * 2.0).collect();
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let w: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
    let z: f64 = w.iter().sum();
    for seed in [1u32, 42, 2024] {
        let mut dist = Dist::new(seed);
        let draws = 200_000;
        let mut counts = vec![0u64; logits.len()];
        for _ in 0..draws {
            counts[dist.sample(&logits).unwrap() as usize] += 1;
        }
        let chi2: f64 = counts
            .iter()
            .zip(&w)
            .map(|(&o, &wi)| {
                let e = draws as f64 * wi / z;
                (o as f64 - e).powi(2) / e
            })
            .sum();
        assert!(
            chi2 < 31.26,
            "seed {seed}: chi-square {chi2:.2}, counts {counts:?}"
        );
    }
}

/// Mirostat 2's mu persists across tokens and returns to 2 tau on reset.
#[test]
fn mirostat_mu_persists_and_resets() {
    let logits: Vec<f32> = (0..100).map(|i| -(i as f32) * 0.1).collect();
    let mut m = MirostatV2::new(3, 3.0, 0.5).unwrap();
    assert_eq!(m.mu(), 6.0);
    let t = m.sample(&logits).unwrap();
    m.accept(t);
    let mu1 = m.mu();
    assert_ne!(mu1, 6.0);
    m.sample(&logits).unwrap();
    assert_ne!(m.mu(), mu1);
    m.reset();
    assert_eq!(m.mu(), 6.0);
}

/// Bad input gives a clear error, never a panic.
#[test]
fn bad_input_is_an_error() {
    let mut chain = SamplingConfig::default().build(3).unwrap();
    let e = chain.sample(&[0.0, f32::NAN, 1.0]).unwrap_err();
    assert!(
        matches!(e, SamplingError::NonFiniteLogit { token: 1, .. }),
        "{e}"
    );
    let e = chain.sample(&[f32::INFINITY]).unwrap_err();
    assert!(
        matches!(e, SamplingError::NonFiniteLogit { token: 0, .. }),
        "{e}"
    );
    assert!(matches!(
        chain.sample(&[]).unwrap_err(),
        SamplingError::EmptyCandidates { .. }
    ));
    assert!(matches!(
        chain.sample(&[f32::NEG_INFINITY; 4]).unwrap_err(),
        SamplingError::AllMasked { .. }
    ));
    for p in [-0.1, 1.5, f32::NAN] {
        let e = TopP::new(p, 1).unwrap_err();
        assert!(e.to_string().contains("top-p: p ="), "{e}");
    }
    let cfg = SamplingConfig {
        min_p: 2.0,
        ..SamplingConfig::default()
    };
    assert!(cfg.build(10).unwrap_err().to_string().contains("min-p"));
    let cfg = SamplingConfig {
        logit_bias: vec![(10, 1.0)],
        ..SamplingConfig::default()
    };
    assert!(matches!(
        cfg.build(10).unwrap_err(),
        SamplingError::TokenOutOfRange { token: 10, .. }
    ));
    // k larger than the vocabulary keeps (and sorts) everything.
    let mut c = Candidates::from_logits(&[1.0, 3.0, 2.0]).unwrap();
    TopK::new(1_000_000).apply(&mut c).unwrap();
    assert_eq!(c.iter().map(|c| c.id).collect::<Vec<_>>(), [1, 2, 0]);
}

/// Log-probabilities: the raw top-n is the softmax of the logits, the final top-n that of the
/// candidates the chain left (here top-k 2, so two tokens share all the mass).
#[test]
fn logprobs_of_raw_and_final_distributions() {
    let logits = [0.0f32, 2.0, 1.0, -1.0];
    let mut chain = SamplerChain::new(Greedy::new())
        .with(TopK::new(2))
        .with_logprobs(3);
    assert_eq!(chain.sample(&logits).unwrap(), 1);
    let lp = chain.logprobs().unwrap();
    let z: f32 = logits.iter().map(|l| l.exp()).sum();
    assert_eq!(lp.raw.iter().map(|t| t.id).collect::<Vec<_>>(), [1, 2, 0]);
    assert!((lp.raw[0].logprob - (2.0 - z.ln())).abs() < 1e-6);
    assert_eq!(lp.final_.len(), 2);
    let z2 = 2.0f32.exp() + 1.0f32.exp();
    assert!((lp.final_[1].logprob - (1.0 - z2.ln())).abs() < 1e-6);
    assert_eq!(lp.token, 1);
}
