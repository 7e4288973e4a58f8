//! Q8_K: super-blocks of 256 signed bytes with an f32 scale and per-16 sums; the activation format of the k-quants and IQ4_XS.

use super::{Block, Kernels, Quantize, VecDot, QK_K};
use crate::GgmlType;

/// ggml's `block_q8_k`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_K {
    /// Scale (f32, unlike the other formats).
    pub d: f32,
    /// Quants.
    pub qs: [i8; 256],
    /// Sums of each group of 16 quants.
    pub bsums: [i16; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ8_K>() == 292);

impl Block for BlockQ8_K {
    const TYPE: GgmlType = GgmlType::Q8_K;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        let _ = (blocks, out);
        unimplemented!("Q8_K dequantize")
    }
}

impl Quantize for BlockQ8_K {
    /// ggml's `quantize_row_q8_k_ref`.
    fn quantize(x: &[f32], out: &mut [Self]) {
        let _ = (x, out);
        unimplemented!("Q8_K quantize")
    }
}

impl VecDot for BlockQ8_K {
    type Activation = BlockQ8_K;
    fn vec_dot(w: &[Self], a: &[BlockQ8_K]) -> f32 {
        let _ = (w, a);
        unimplemented!("Q8_K vec_dot")
    }
    const KERNELS: Kernels<Self> = Kernels::NONE;
}
