//! AVX512 dot-product kernels, by format family.

pub mod float;
pub mod gemm;
pub mod kquant;
pub mod legacy;
pub mod matvec;
pub mod panel;
pub mod q4_0_repacked;
pub mod q4_0_repacked_bw;
pub mod vector;
