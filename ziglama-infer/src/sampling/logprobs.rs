//! Log-probabilities of one step: the top-n of the raw distribution (softmax of the model's
//! logits) and of the final one (softmax of the logits the chain left, after its processors).

use super::TokenId;

/// One token and its natural-log probability.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenLogprob {
    /// The token.
    pub id: TokenId,
    /// `ln p` (`-inf` for a masked token).
    pub logprob: f32,
}

/// The log-probabilities of one sampling step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepLogprobs {
    /// The token chosen.
    pub token: TokenId,
    /// The top-n of the raw distribution, most probable first.
    pub raw: Vec<TokenLogprob>,
    /// The top-n of the final distribution (over the candidates left), most probable first.
    pub final_: Vec<TokenLogprob>,
}

/// The `n` most probable tokens of the softmax of `logits` (as `(id, logit)` pairs), with their
/// log-probabilities `l_i - max - ln sum_j exp(l_j - max)`, most probable first (ties: lower
/// id first).
///
/// ```
/// use ziglama_infer::sampling::top_logprobs;
/// let top = top_logprobs([(0, 0.0f32), (1, 0.0), (2, f32::NEG_INFINITY)].into_iter(), 2);
/// assert_eq!(top.len(), 2);
/// assert!((top[0].logprob - 0.5f32.ln()).abs() < 1e-6);
/// ```
pub fn top_logprobs(
    logits: impl Iterator<Item = (TokenId, f32)> + Clone,
    n: usize,
) -> Vec<TokenLogprob> {
    let max = logits
        .clone()
        .map(|(_, l)| l)
        .fold(f32::NEG_INFINITY, f32::max);
    if n == 0 || max == f32::NEG_INFINITY {
        return Vec::new();
    }
    let sum: f64 = logits
        .clone()
        .map(|(_, l)| f64::from((l - max).exp()))
        .sum();
    let log_z = max + sum.ln() as f32;
    let mut top: Vec<(TokenId, f32)> = Vec::with_capacity(n + 1);
    for (id, l) in logits {
        if top.len() == n {
            let (lid, ll) = top[n - 1];
            if !(l > ll || (l == ll && id < lid)) {
                continue;
            }
            top.pop();
        }
        let pos = top.partition_point(|&(tid, tl)| tl > l || (tl == l && tid < id));
        top.insert(pos, (id, l));
    }
    top.into_iter()
        .map(|(id, l)| TokenLogprob {
            id,
            logprob: l - log_z,
        })
        .collect()
}
