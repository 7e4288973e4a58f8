//! AVX2 kernels for the kquant formats.
