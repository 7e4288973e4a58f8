//! SIMD kernels, one module per instruction set. Each kernel is an `unsafe fn` compiled with
//! `#[target_feature]` and is attached to its format through
//! [`VecDot::KERNELS`](crate::formats::VecDot::KERNELS); the safe
//! [`DotKernel`](crate::formats::DotKernel) hands it out only on a CPU that has the features.
//! Every kernel equals its format's scalar reference (integer paths exactly, float paths within
//! the bound its tests state).

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;
