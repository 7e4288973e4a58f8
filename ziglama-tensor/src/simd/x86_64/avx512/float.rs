//! AVX512 kernels for the float formats.
