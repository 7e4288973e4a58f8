//! AVX2 kernels for the float formats.
