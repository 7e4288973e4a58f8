//! What a generation returns: its text and tokens, why it stopped, log-probabilities and
//! timings.

use std::time::Duration;

use crate::sampling::StepLogprobs;
use crate::stream::StopReason;

/// The log-probabilities of one generated token.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprobs {
    /// The token.
    pub token: u32,
    /// `ln p` of the token under the model's raw distribution (softmax of its logits, before
    /// any sampler touched them).
    pub logprob: f32,
    /// The top-n of the raw and of the final distribution at this step, when the sampler
    /// records them (a chain built from the configuration does).
    pub top: Option<StepLogprobs>,
}

/// How long a generation took.
///
/// ```
/// use std::time::Duration;
/// use ziglama_infer::generator::Timings;
/// let t = Timings {
///     prompt_tokens: 10,
///     prompt_time: Duration::from_millis(50),
///     time_to_first_token: Some(Duration::from_millis(60)),
///     token_latencies: vec![Duration::from_millis(60), Duration::from_millis(20), Duration::from_millis(30)],
///     total: Duration::from_millis(120),
/// };
/// assert_eq!(t.prompt_tokens_per_second(), Some(200.0));
/// assert_eq!(t.generated_tokens_per_second(), Some(40.0)); // 2 decode steps in 50 ms
/// assert_eq!(t.decode_time(), Duration::from_millis(50));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timings {
    /// Prompt tokens run through the model (those already in the cache from an earlier
    /// generation, a previous chat turn, are not run again and not counted).
    pub prompt_tokens: usize,
    /// Time of the prompt's forward pass (one batch).
    pub prompt_time: Duration,
    /// From the start of the generation to the first token: the prompt's forward pass and
    /// the first sampling step (`None` if no token was made).
    pub time_to_first_token: Option<Duration>,
    /// For each token of the result, the time to make it: for the first one the time to
    /// first token, for each later one its decoding step (a one-token forward pass) and
    /// its sampling.
    pub token_latencies: Vec<Duration>,
    /// The whole generation, detokenization and delivery of the text included.
    pub total: Duration,
}

impl Timings {
    /// Prompt tokens per second of the prompt's forward pass.
    pub fn prompt_tokens_per_second(&self) -> Option<f64> {
        rate(self.prompt_tokens, self.prompt_time)
    }

    /// The time of the decoding steps: every token's latency but the first one's.
    pub fn decode_time(&self) -> Duration {
        self.token_latencies.iter().skip(1).sum()
    }

    /// Generated tokens per second of the decoding steps (the first token, which comes with
    /// the prompt's pass, is left out; `None` with fewer than two tokens).
    pub fn generated_tokens_per_second(&self) -> Option<f64> {
        rate(
            self.token_latencies.len().saturating_sub(1),
            self.decode_time(),
        )
    }
}

fn rate(n: usize, time: Duration) -> Option<f64> {
    (n > 0 && !time.is_zero()).then(|| n as f64 / time.as_secs_f64())
}

/// What a generation made.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationResult {
    /// The text: the prompt's text first if the configuration asked for echo, then the
    /// generated text, which ends before a stop string and leaves out end-of-generation and
    /// stop tokens. A streamed generation delivered exactly this text, chunk by chunk.
    pub text: String,
    /// The generated tokens whose text was taken (the one that completed a stop string
    /// included; an end-of-generation or stop token not).
    pub tokens: Vec<u32>,
    /// The prompt's tokens.
    pub prompt_tokens: Vec<u32>,
    /// Why the generation stopped.
    pub stop_reason: StopReason,
    /// One entry per token of [`tokens`](Self::tokens), when the configuration asked for
    /// log-probabilities (empty otherwise).
    pub logprobs: Vec<TokenLogprobs>,
    /// How long it took.
    pub timings: Timings,
}
