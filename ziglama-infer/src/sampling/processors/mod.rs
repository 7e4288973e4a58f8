//! The logit processors: each transforms a candidate set, one file per technique.

mod dry;
mod epsilon;
mod logit_bias;
mod min_p;
mod no_repeat_ngram;
mod penalties;
mod tail_free;
pub(crate) mod temperature;
mod top_k;
mod top_n_sigma;
mod top_p;
mod typical;
mod xtc;

pub use dry::Dry;
pub use epsilon::{Epsilon, Eta};
pub use logit_bias::LogitBias;
pub use min_p::MinP;
pub use no_repeat_ngram::NoRepeatNgram;
pub use penalties::Penalties;
pub use tail_free::TailFree;
pub use temperature::{DynamicTemperature, Temperature};
pub use top_k::TopK;
pub use top_n_sigma::TopNSigma;
pub use top_p::TopP;
pub use typical::Typical;
pub use xtc::Xtc;
