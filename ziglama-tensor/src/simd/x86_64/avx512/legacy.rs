//! AVX512 kernels for the legacy formats.
