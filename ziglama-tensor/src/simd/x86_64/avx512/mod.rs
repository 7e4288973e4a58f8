//! AVX512 dot-product kernels, by format family.

pub mod float;
pub mod kquant;
pub mod legacy;
