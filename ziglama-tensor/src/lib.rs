//! # ziglama-tensor
//!
//! Layers 1 and 2 of ziglama: the GGML element types and block formats that GGUF files store,
//! tensors over owned or memory-mapped bytes, and the quantized kernels (dequantize, quantize,
//! dot products, matrix-vector and matrix-matrix products) that every model runs on.
//!
//! Kernels come in a portable scalar reference, always compiled, and SIMD versions (AVX2,
//! AVX-512 with VNNI, NEON) chosen once at run time; `ZIGLAMA_KERNELS=scalar` forces the
//! reference. Numerics follow ggml: activations are quantized to the format ggml pairs with
//! each weight format (Q8_0, Q8_1, Q8_K) before integer dot products.
//!
//! ```
//! use ziglama_tensor::{matmul, GgmlType, Tensor, ThreadPool};
//! // A 2x64 Q8_0 weight matrix (rows of 64), times one activation vector.
//! let w: Vec<f32> = (0..128).map(|i| ((i % 7) as f32 - 3.0) / 4.0).collect();
//! let wq = Tensor::quantize(GgmlType::Q8_0, &[64, 2], &w).unwrap();
//! let x = vec![1.0f32; 64];
//! let mut y = vec![0f32; 2];
//! let pool = ThreadPool::new(2);
//! matmul(&wq, &x, &mut y, &pool).unwrap();
//! let exact: f32 = w[..64].iter().sum();
//! assert!((y[0] - exact).abs() < 0.1);
//! ```
//!
//! ## Dependencies and why
//!
//! - `bytemuck`: safe casts between byte buffers and `#[repr(C)]` block structs.
//! - `half`: the f16 and bf16 types, with hardware conversion where the CPU has it.
//! - `memmap2`: the portable memory map that lets weights stay zero-copy on disk.
//! - `thiserror`: the structured error type.

#![cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    forbid(unsafe_code)
)]

pub mod dtype;
pub mod error;
pub mod formats;
pub mod isa;
pub mod matmul;
pub mod matvec;
pub mod mmap;
pub mod pool;
pub mod rotate;
pub mod simd;
pub mod tensor;
pub mod vector;

pub use dtype::GgmlType;
pub use error::{Result, TensorError};
pub use isa::Isa;
pub use matmul::matmul;
pub use mmap::MappedFile;
pub use pool::ThreadPool;
pub use tensor::Tensor;
