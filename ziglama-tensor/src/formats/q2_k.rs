//! Q2_K: super-blocks of 256 2-bit values in 16 blocks of 16, each with a 4-bit scale and min. Pairs with Q8_K.

use half::f16;

use super::{q8_k::BlockQ8_K, Block, Kernels, VecDot, QK_K};
use crate::GgmlType;

/// ggml's `block_q2_k`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ2_K {
    /// Per 16 elements: 4-bit scale (low nibble) and 4-bit min (high nibble).
    pub scales: [u8; 16],
    /// 2-bit quants.
    pub qs: [u8; 64],
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the mins.
    pub dmin: f16,
}
const _: () = assert!(std::mem::size_of::<BlockQ2_K>() == 84);

impl Block for BlockQ2_K {
    const TYPE: GgmlType = GgmlType::Q2_K;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        let _ = (blocks, out);
        unimplemented!("Q2_K dequantize")
    }
}

impl VecDot for BlockQ2_K {
    type Activation = BlockQ8_K;
    fn vec_dot(w: &[Self], a: &[BlockQ8_K]) -> f32 {
        let _ = (w, a);
        unimplemented!("Q2_K vec_dot")
    }
    const KERNELS: Kernels<Self> = Kernels::NONE;
}
