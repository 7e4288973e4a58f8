//! SmolLM2-135M-Instruct requantized to Q4_0 against llama.cpp on the same weights: the
//! last-position logits of the 15 committed prompts bit for bit, and the greedy continuations
//! (128 tokens, or up to llama.cpp's end of generation) token for token.
//!
//! The model is `common::smollm2_q4_0()`: the Q4_1 file requantized in memory, which equals
//! llama-quantize's Q4_0 file in every tensor (`requantize_smollm2.rs`), so CI needs no
//! llama.cpp. The golden data in `tests/data/llama-q4_0/` is llama.cpp's answers on
//! llama-quantize's file (its README says how it was made).
//!
//! What this checks beyond the Q4_1 tests: on x86 with AVX2, llama.cpp repacks Q4_0 tensors
//! whose row count is a multiple of 8 and sums their products in its repacked kernels' order
//! (`ziglama_tensor::formats::q4_0::X86Order::Repacked`), for prompts (matrix-matrix) and
//! decoding (matrix-vector) alike; with ggml's `vec_dot` order instead, the logits differ
//! from llama.cpp's in every position (cosine down to 0.994 on `chat_simple`, a different
//! top-1 on `german`). **Machine requirement** as in `llama_smollm2.rs`: ziglama-tensor's
//! x86-64 AVX2 or AVX-512 kernels (the default on such a CPU; `ZIGLAMA_KERNELS=avx2` passes
//! too); the tests fail with a message under any other kernel set.

mod common;

use std::path::PathBuf;

use common::{check_greedy, check_logits_bit_equal, require_x86_simd_kernels, smollm2_q4_0};

fn data_dir() -> PathBuf {
    common::data_dir("llama-q4_0")
}

#[test]
fn last_position_logits_equal_llama_cpp_bit_for_bit() {
    require_x86_simd_kernels();
    check_logits_bit_equal(smollm2_q4_0(), &data_dir());
}

/// No divergence at all: the near-tie bound is 0.
#[test]
fn greedy_continuations_equal_llama_cpp() {
    require_x86_simd_kernels();
    check_greedy(smollm2_q4_0(), &data_dir(), 0.0);
}
