//! Sampling parameters as one value: llama.cpp's defaults and order, presets, and building the
//! chain they describe.

use super::{
    Dist, Dry, DynamicTemperature, Epsilon, Eta, Greedy, LogitBias, LogitProcessor, MinP, Mirostat,
    MirostatV2, NoRepeatNgram, Penalties, SamplerChain, SamplingError, TailFree, Temperature,
    TokenId, TopK, TopNSigma, TopP, Typical, Xtc,
};

/// A processor kind, for ordering a chain built from a [`SamplingConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SamplerKind {
    /// [`Penalties`] (repeat, frequency, presence).
    Penalties,
    /// [`Dry`].
    Dry,
    /// [`TopNSigma`].
    TopNSigma,
    /// [`TopK`].
    TopK,
    /// [`Typical`].
    Typical,
    /// [`TopP`].
    TopP,
    /// [`MinP`].
    MinP,
    /// [`Xtc`].
    Xtc,
    /// [`DynamicTemperature`] (plain temperature when the range is 0).
    Temperature,
    /// [`TailFree`].
    TailFree,
    /// [`Epsilon`].
    Epsilon,
    /// [`Eta`].
    Eta,
    /// [`NoRepeatNgram`].
    NoRepeatNgram,
}

impl SamplerKind {
    /// llama.cpp's default order: penalties, DRY, top-n-σ, top-k, typical, top-p, min-p, XTC,
    /// temperature (then dist).
    pub const LLAMA_CPP_ORDER: [SamplerKind; 9] = [
        SamplerKind::Penalties,
        SamplerKind::Dry,
        SamplerKind::TopNSigma,
        SamplerKind::TopK,
        SamplerKind::Typical,
        SamplerKind::TopP,
        SamplerKind::MinP,
        SamplerKind::Xtc,
        SamplerKind::Temperature,
    ];
}

/// Which Mirostat, if any, replaces the processor chain (as in llama.cpp: temperature, then
/// Mirostat).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MirostatMode {
    /// No Mirostat: the processor chain, then dist.
    #[default]
    Off,
    /// Mirostat 1 (m = 100).
    V1,
    /// Mirostat 2.
    V2,
}

/// Named parameter sets for common needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Varied text: temperature 1.0, no top-k or top-p, min-p 0.02, XTC (0.5, 0.1), DRY 0.8.
    Creative,
    /// llama.cpp's defaults: top-k 40, top-p 0.95, min-p 0.05, temperature 0.8.
    Balanced,
    /// Close to the most likely text: temperature 0.3, top-k 20, top-p 0.8, min-p 0.1,
    /// repetition penalty 1.05.
    Focused,
    /// Greedy: the most probable token every time (temperature 0).
    Deterministic,
}

/// Every parameter of a sampling chain, with llama.cpp's names and defaults
/// (`common_params_sampling`), plus the samplers beyond llama.cpp (disabled by default).
///
/// [`SamplingConfig::build`] makes the chain: logit biases first, then the processors in
/// [`SamplingConfig::samplers`] order, then dist; with Mirostat, temperature then Mirostat.
/// A temperature `<= 0` ends the chain in [`Greedy`] instead of dist (the same token
/// llama.cpp's masked dist picks).
///
/// ```
/// use ziglama_infer::sampling::{Preset, Sampler, SamplingConfig};
/// let greedy = SamplingConfig::preset(Preset::Deterministic).build(3)?;
/// assert_eq!(greedy.selector().name(), "greedy");
/// let chain = SamplingConfig { top_k: 10, ..SamplingConfig::default() }.build(32_000)?;
/// assert_eq!(format!("{chain:?}").contains("top-k"), true);
/// # Ok::<(), ziglama_infer::sampling::SamplingError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingConfig {
    /// Seed of dist, XTC and Mirostat (llama.cpp's default draws a random one; ours is 0).
    pub seed: u32,
    /// Minimum candidates top-p, min-p, typical and XTC keep (0).
    pub min_keep: usize,
    /// Top-k (40; 0 = disabled).
    pub top_k: usize,
    /// Top-p (0.95; 1 = disabled).
    pub top_p: f32,
    /// Min-p (0.05; 0 = disabled).
    pub min_p: f32,
    /// XTC probability (0 = disabled).
    pub xtc_probability: f32,
    /// XTC threshold (0.1; > 0.5 disables).
    pub xtc_threshold: f32,
    /// Typical-p (1 = disabled).
    pub typical_p: f32,
    /// Temperature (0.8; <= 0 = greedy).
    pub temperature: f32,
    /// Dynamic temperature range (0 = fixed temperature).
    pub dynatemp_range: f32,
    /// Dynamic temperature exponent (1).
    pub dynatemp_exponent: f32,
    /// Tokens the penalties look back over (64; 0 = disabled).
    pub penalty_last_n: usize,
    /// Repetition penalty (1 = disabled).
    pub penalty_repeat: f32,
    /// Frequency penalty (0 = disabled).
    pub penalty_freq: f32,
    /// Presence penalty (0 = disabled).
    pub penalty_present: f32,
    /// DRY multiplier (0 = disabled).
    pub dry_multiplier: f32,
    /// DRY base (1.75).
    pub dry_base: f32,
    /// DRY allowed length (2).
    pub dry_allowed_length: usize,
    /// Tokens DRY looks back over (64).
    pub dry_penalty_last_n: usize,
    /// DRY sequence breakers, as token sequences (llama.cpp's defaults are the strings
    /// "\n", ":", "\"", "*", which need the vocabulary to become token sequences).
    pub dry_sequence_breakers: Vec<Vec<TokenId>>,
    /// Top-n-σ (-1 = disabled).
    pub top_n_sigma: f32,
    /// Mirostat mode (off).
    pub mirostat: MirostatMode,
    /// Mirostat target surprise tau (5).
    pub mirostat_tau: f32,
    /// Mirostat learning rate eta (0.1).
    pub mirostat_eta: f32,
    /// Tail-free z (1 = disabled).
    pub tail_free_z: f32,
    /// Epsilon-sampling floor (0 = disabled).
    pub epsilon: f32,
    /// Eta-sampling epsilon (0 = disabled).
    pub eta: f32,
    /// No-repeat n-gram size (0 = disabled).
    pub no_repeat_ngram: usize,
    /// Logit biases, applied first.
    pub logit_bias: Vec<(TokenId, f32)>,
    /// The processor order ([`SamplerKind::LLAMA_CPP_ORDER`]); a kind left out is not applied.
    pub samplers: Vec<SamplerKind>,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            min_keep: 0,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            xtc_probability: 0.0,
            xtc_threshold: 0.1,
            typical_p: 1.0,
            temperature: 0.8,
            dynatemp_range: 0.0,
            dynatemp_exponent: 1.0,
            penalty_last_n: 64,
            penalty_repeat: 1.0,
            penalty_freq: 0.0,
            penalty_present: 0.0,
            dry_multiplier: 0.0,
            dry_base: 1.75,
            dry_allowed_length: 2,
            dry_penalty_last_n: 64,
            dry_sequence_breakers: Vec::new(),
            top_n_sigma: -1.0,
            mirostat: MirostatMode::Off,
            mirostat_tau: 5.0,
            mirostat_eta: 0.1,
            tail_free_z: 1.0,
            epsilon: 0.0,
            eta: 0.0,
            no_repeat_ngram: 0,
            logit_bias: Vec::new(),
            samplers: SamplerKind::LLAMA_CPP_ORDER.to_vec(),
        }
    }
}

impl SamplingConfig {
    /// The parameters of a preset.
    pub fn preset(preset: Preset) -> Self {
        let d = Self::default();
        match preset {
            Preset::Balanced => d,
            Preset::Creative => Self {
                temperature: 1.0,
                top_k: 0,
                top_p: 1.0,
                min_p: 0.02,
                xtc_probability: 0.5,
                xtc_threshold: 0.1,
                dry_multiplier: 0.8,
                ..d
            },
            Preset::Focused => Self {
                temperature: 0.3,
                top_k: 20,
                top_p: 0.8,
                min_p: 0.1,
                penalty_repeat: 1.05,
                ..d
            },
            Preset::Deterministic => Self {
                temperature: 0.0,
                ..d
            },
        }
    }

    /// The same parameters with another seed.
    pub fn with_seed(mut self, seed: u32) -> Self {
        self.seed = seed;
        self
    }

    fn processor(&self, kind: SamplerKind) -> Result<Box<dyn LogitProcessor>, SamplingError> {
        let k = self.min_keep;
        Ok(match kind {
            SamplerKind::Penalties => Box::new(Penalties::new(
                self.penalty_last_n,
                self.penalty_repeat,
                self.penalty_freq,
                self.penalty_present,
            )?),
            SamplerKind::Dry => Box::new(Dry::new(
                self.dry_multiplier,
                self.dry_base,
                self.dry_allowed_length,
                self.dry_penalty_last_n,
                self.dry_sequence_breakers.iter().cloned(),
            )?),
            SamplerKind::TopNSigma => Box::new(TopNSigma::new(self.top_n_sigma)?),
            SamplerKind::TopK => Box::new(TopK::new(self.top_k)),
            SamplerKind::Typical => Box::new(Typical::new(self.typical_p, k)?),
            SamplerKind::TopP => Box::new(TopP::new(self.top_p, k)?),
            SamplerKind::MinP => Box::new(MinP::new(self.min_p, k)?),
            SamplerKind::Xtc => Box::new(Xtc::new(
                self.xtc_probability,
                self.xtc_threshold,
                k,
                self.seed,
            )?),
            SamplerKind::Temperature => Box::new(DynamicTemperature::new(
                self.temperature,
                self.dynatemp_range,
                self.dynatemp_exponent,
            )?),
            SamplerKind::TailFree => Box::new(TailFree::new(self.tail_free_z, k)?),
            SamplerKind::Epsilon => Box::new(Epsilon::new(self.epsilon, k)?),
            SamplerKind::Eta => Box::new(Eta::new(self.eta, k)?),
            SamplerKind::NoRepeatNgram => Box::new(NoRepeatNgram::new(self.no_repeat_ngram)),
        })
    }

    /// Builds the chain for a vocabulary of `n_vocab` tokens.
    ///
    /// # Errors
    /// The first parameter out of its sampler's range.
    pub fn build(&self, n_vocab: usize) -> Result<SamplerChain, SamplingError> {
        let mut processors: Vec<Box<dyn LogitProcessor>> = Vec::new();
        if !self.logit_bias.is_empty() {
            if let Some(&(token, _)) = self.logit_bias.iter().find(|(t, _)| *t as usize >= n_vocab)
            {
                return Err(SamplingError::TokenOutOfRange {
                    sampler: "logit-bias",
                    token,
                    n_vocab,
                });
            }
            processors.push(Box::new(LogitBias::new(self.logit_bias.iter().copied())?));
        }
        let greedy = self.temperature <= 0.0 && self.dynatemp_range <= 0.0;
        match self.mirostat {
            MirostatMode::Off => {
                for &kind in &self.samplers {
                    if greedy && kind == SamplerKind::Temperature {
                        continue;
                    }
                    processors.push(self.processor(kind)?);
                }
                let selector: Box<dyn super::Sampler> = if greedy {
                    Box::new(Greedy::new())
                } else {
                    Box::new(Dist::new(self.seed))
                };
                Ok(SamplerChain::from_boxed(processors, selector))
            }
            MirostatMode::V1 => {
                processors.push(Box::new(Temperature::new(self.temperature)?));
                let m = Mirostat::new(
                    n_vocab,
                    self.seed,
                    self.mirostat_tau,
                    self.mirostat_eta,
                    100,
                )?;
                Ok(SamplerChain::from_boxed(processors, Box::new(m)))
            }
            MirostatMode::V2 => {
                processors.push(Box::new(Temperature::new(self.temperature)?));
                let m = MirostatV2::new(self.seed, self.mirostat_tau, self.mirostat_eta)?;
                Ok(SamplerChain::from_boxed(processors, Box::new(m)))
            }
        }
    }
}
