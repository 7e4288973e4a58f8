//! Q4_K: super-blocks of 256 4-bit values in 8 blocks of 32 with 6-bit scales and mins. Pairs with Q8_K.

use half::f16;

use super::{q8_k::BlockQ8_K, Block, Kernels, Quantize, VecDot, QK_K};
use crate::GgmlType;

/// ggml's `block_q4_k`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_K {
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the mins.
    pub dmin: f16,
    /// Eight 6-bit scales and eight 6-bit mins, packed.
    pub scales: [u8; 12],
    /// 4-bit quants.
    pub qs: [u8; 128],
}
const _: () = assert!(std::mem::size_of::<BlockQ4_K>() == 144);

impl Block for BlockQ4_K {
    const TYPE: GgmlType = GgmlType::Q4_K;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        let _ = (blocks, out);
        unimplemented!("Q4_K dequantize")
    }
}

impl Quantize for BlockQ4_K {
    /// ggml's `quantize_row_q4_k_ref`.
    fn quantize(x: &[f32], out: &mut [Self]) {
        let _ = (x, out);
        unimplemented!("Q4_K quantize")
    }
}

impl VecDot for BlockQ4_K {
    type Activation = BlockQ8_K;
    fn vec_dot(w: &[Self], a: &[BlockQ8_K]) -> f32 {
        let _ = (w, a);
        unimplemented!("Q4_K vec_dot")
    }
    const KERNELS: Kernels<Self> = Kernels::NONE;
}
