//! Criterion benches of the dot-product and matrix-vector kernels, per format.

fn main() {}
