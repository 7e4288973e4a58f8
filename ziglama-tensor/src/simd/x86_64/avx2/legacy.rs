//! AVX2 kernels for the legacy formats.
