//! The selectors: each chooses one token from a candidate set.

mod dist;
mod greedy;
mod mirostat;

pub use dist::Dist;
pub use greedy::Greedy;
pub use mirostat::{Mirostat, MirostatV2};
