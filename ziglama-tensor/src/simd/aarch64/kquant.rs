//! NEON kernels for the k-quants against Q8_K: Q4_K and Q6_K.
