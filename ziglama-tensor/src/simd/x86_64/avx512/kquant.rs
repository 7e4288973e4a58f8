//! AVX512 kernels for the kquant formats.
