//! Contrastive search (Su et al. 2022, "A Contrastive Framework for Neural Text
//! Generation"): the parameters and the scoring rule, as pure functions over probabilities
//! and hidden states.

use super::GenerationError;

/// The parameters of contrastive search: at each step the `top_k` most probable tokens are
/// candidates, and the one maximising
///
/// ```text
/// (1 - penalty_alpha) * p(v)  -  penalty_alpha * max_j cos(h_v, h_j)
/// ```
///
/// is chosen, where `h_v` is the last hidden state (after the final norm) the model gives
/// for candidate `v` at the next position and `h_j` those of every token before it (the
/// prompt included). The first term is the model's confidence, the second the degeneration
/// penalty: a candidate whose representation repeats one already in the context is
/// penalised, which keeps the text from looping. `penalty_alpha = 0` is greedy decoding.
///
/// Measured on SmolLM2-135M-Instruct (Q4_1), 48 tokens after "The capital of France is"
/// (test `generator_contrastive`): greedy decoding loops (" Paris.\n\nThe United States
/// has a population of approximately 311 million people." again and again), distinct-2
/// 0.383 and distinct-3 0.391 (the share of distinct token bigrams and trigrams);
/// contrastive search with `penalty_alpha` 0.6 and `top_k` 4 gives 0.957 and 0.978. Each step runs the `top_k` candidates as one batch of
/// `top_k` sequences (plus `top_k - 1` rows writing the previous pick into the sequences
/// that did not hold it), so a step costs a few times a greedy step, and the prompt runs
/// once per sequence.
///
/// ```
/// use ziglama_infer::generator::ContrastiveSearch;
/// let search = ContrastiveSearch::new(0.6, 4);
/// assert!(search.validate().is_ok());
/// assert!(ContrastiveSearch::new(0.6, 0).validate().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContrastiveSearch {
    /// The weight of the degeneration penalty, in `[0, 1]` (the paper uses 0.5 to 0.6).
    pub penalty_alpha: f32,
    /// Candidates per step, at least 1 (the paper uses 4 to 10).
    pub top_k: usize,
}

impl ContrastiveSearch {
    /// Contrastive search with these parameters.
    pub fn new(penalty_alpha: f32, top_k: usize) -> ContrastiveSearch {
        ContrastiveSearch {
            penalty_alpha,
            top_k,
        }
    }

    /// Checks the parameters.
    ///
    /// # Errors
    ///
    /// [`GenerationError::InvalidParameter`] for `penalty_alpha` outside `[0, 1]` or a
    /// `top_k` of 0.
    pub fn validate(&self) -> Result<(), GenerationError> {
        if !(0.0..=1.0).contains(&self.penalty_alpha) {
            return Err(GenerationError::InvalidParameter {
                name: "penalty_alpha",
                reason: format!("{} is outside [0, 1]", self.penalty_alpha),
            });
        }
        if self.top_k == 0 {
            return Err(GenerationError::InvalidParameter {
                name: "top_k",
                reason: "contrastive search needs at least one candidate".into(),
            });
        }
        Ok(())
    }
}

/// The `k` most probable tokens of the softmax of `logits`, most probable first (ties:
/// lower id first), with their probabilities (over the whole vocabulary).
///
/// ```
/// use ziglama_infer::generator::top_k_probabilities;
/// let top = top_k_probabilities(&[0.0, 2.0, 1.0, 2.0], 2);
/// assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), [1, 3]);
/// assert!((top[0].1 - top[1].1).abs() < 1e-12);
/// ```
pub fn top_k_probabilities(logits: &[f32], k: usize) -> Vec<(u32, f64)> {
    let max = logits
        .iter()
        .copied()
        .filter(|l| !l.is_nan())
        .fold(f32::NEG_INFINITY, f32::max);
    if k == 0 || max == f32::NEG_INFINITY {
        return Vec::new();
    }
    let sum: f64 = logits
        .iter()
        .filter(|l| !l.is_nan())
        .map(|&l| f64::from(l - max).exp())
        .sum();
    let mut top: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    for (id, &l) in logits.iter().enumerate() {
        if l.is_nan() || (top.len() == k && l <= top[k - 1].1) {
            continue;
        }
        let at = top.partition_point(|&(_, t)| t >= l);
        top.insert(at, (id as u32, l));
        top.truncate(k);
    }
    top.into_iter()
        .map(|(id, l)| (id, f64::from(l - max).exp() / sum))
        .collect()
}

/// The cosine similarity of two vectors of the same length (0 when either is zero).
fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// The contrastive score of each candidate: `(1 - alpha) * probs[i] - alpha * max_j
/// cos(candidates[i], context[j])`.
///
/// `candidates` holds one hidden state of `dim` values per probability, `context` one per
/// token before them (`context` empty: no penalty). Rows past the shorter of the two
/// inputs are ignored; a `dim` of 0 scores by probability alone.
///
/// ```
/// use ziglama_infer::generator::contrastive_scores;
/// // Two candidates in 2-d; the context holds one state pointing along x.
/// let probs = [0.6, 0.4];
/// let candidates = [1.0, 0.0, /* second: */ 0.0, 1.0];
/// let context = [2.0, 0.0];
/// let s = contrastive_scores(&probs, &candidates, &context, 2, 0.5);
/// assert!((s[0] - (0.5 * 0.6 - 0.5 * 1.0)).abs() < 1e-12);
/// assert!((s[1] - 0.5 * 0.4).abs() < 1e-12);
/// ```
pub fn contrastive_scores(
    probs: &[f64],
    candidates: &[f32],
    context: &[f32],
    dim: usize,
    alpha: f32,
) -> Vec<f64> {
    let alpha = f64::from(alpha);
    probs
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let penalty = match candidates.get(i * dim..(i + 1) * dim) {
                Some(h) if dim > 0 => context
                    .chunks_exact(dim)
                    .map(|c| cosine(h, c))
                    .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.max(c))))
                    .unwrap_or(0.0),
                _ => 0.0,
            };
            (1.0 - alpha) * p - alpha * penalty
        })
        .collect()
}

/// The index of the best contrastive score (the first one on ties), `None` when there are
/// no candidates. See [`contrastive_scores`].
///
/// ```
/// use ziglama_infer::generator::contrastive_pick;
/// let probs = [0.6, 0.4];
/// let candidates = [1.0, 0.0, 0.0, 1.0];
/// let context = [2.0, 0.0];
/// assert_eq!(contrastive_pick(&probs, &candidates, &context, 2, 0.0), Some(0)); // greedy
/// assert_eq!(contrastive_pick(&probs, &candidates, &context, 2, 0.5), Some(1));
/// ```
pub fn contrastive_pick(
    probs: &[f64],
    candidates: &[f32],
    context: &[f32],
    dim: usize,
    alpha: f32,
) -> Option<usize> {
    let scores = contrastive_scores(probs, candidates, context, dim, alpha);
    let mut best: Option<usize> = None;
    for (i, &s) in scores.iter().enumerate() {
        if best.is_none_or(|b| s > scores[b]) {
            best = Some(i);
        }
    }
    best
}
