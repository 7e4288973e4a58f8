//! Turning logits into tokens: the [`Sampler`] and [`LogitProcessor`] traits and the catalogue.
//!
//! A step starts from the model's logits, one per vocabulary entry, as a [`Candidates`] set of
//! (id, logit, p). [`LogitProcessor`]s transform it (penalties, top-k, top-p, min-p, typical,
//! temperature, ...), a [`Sampler`] selects one token from it (greedy, dist, Mirostat), and a
//! [`SamplerChain`] of processors ending in a selector is itself a `Sampler`. Stateful parts
//! learn the tokens kept through `accept` and forget them on `reset`. Randomness comes from
//! `rand_core` generators; the seeded selectors use [`Mt19937`], llama.cpp's generator, so the
//! same seed picks the same tokens as llama.cpp.
//!
//! Each sampler llama.cpp has means here exactly what it means there (llama.cpp's
//! `llama-sampler.cpp` is the reference; the golden tests compare the candidates left and
//! their probabilities step by step). [`SamplingConfig`] builds llama.cpp's default chain,
//! in its order, from the same parameters, and offers presets.
//!
//! | processor | paper | llama.cpp name |
//! |---|---|---|
//! | [`Temperature`], [`DynamicTemperature`] | Ackley et al. 1985; Zhu et al. 2024 | temp, temp-ext |
//! | [`TopK`] | Fan et al. 2018 | top-k |
//! | [`TopP`] | Holtzman et al. 2020 | top-p |
//! | [`MinP`] | Nguyen et al. 2024 | min-p |
//! | [`Typical`] | Meister et al. 2023 | typical |
//! | [`TopNSigma`] | Tang et al. 2024 | top-n-sigma |
//! | [`Xtc`] | Weidmann 2024 | xtc |
//! | [`Penalties`] | Keskar et al. 2019 (repetition) | penalties |
//! | [`Dry`] | p-e-w 2024 | dry |
//! | [`LogitBias`] | | logit-bias |
//! | [`TailFree`] | Phibbs 2019 | (removed from llama.cpp) |
//! | [`Epsilon`], [`Eta`] | Hewitt et al. 2022 | |
//! | [`NoRepeatNgram`] | Paulus et al. 2018 | |
//!
//! Selectors: [`Greedy`], [`Dist`], [`Mirostat`] and [`MirostatV2`] (Basu et al. 2021).
//!
//! ```
//! use ziglama_infer::sampling::{Sampler, SamplingConfig};
//! let mut sampler = SamplingConfig::default().with_seed(42).build(4)?;
//! let logits = [1.0, 4.0, 3.0, -1.0];
//! let token = sampler.sample(&logits)?;
//! sampler.accept(token);
//! assert!(token == 1 || token == 2);
//! # Ok::<(), ziglama_infer::sampling::SamplingError>(())
//! ```

mod candidates;
mod chain;
mod config;
mod error;
mod logprobs;
mod processors;
pub mod rng;
mod selectors;
mod traits;

/// A token id: an index into the vocabulary.
pub type TokenId = u32;

pub use candidates::{Candidate, Candidates};
pub use chain::SamplerChain;
pub use config::{MirostatMode, Preset, SamplerKind, SamplingConfig};
pub use error::SamplingError;
pub use logprobs::{top_logprobs, StepLogprobs, TokenLogprob};
pub use processors::{
    Dry, DynamicTemperature, Epsilon, Eta, LogitBias, MinP, NoRepeatNgram, Penalties, TailFree,
    Temperature, TopK, TopNSigma, TopP, Typical, Xtc,
};
pub use rng::Mt19937;
pub use selectors::{Dist, Greedy, Mirostat, MirostatV2};
pub use traits::{LogitProcessor, Sampler};
