//! Q3_K: super-blocks of 256 3-bit values in 16 blocks of 16 with 6-bit scales. Pairs with Q8_K.

use half::f16;

use super::{q8_k::BlockQ8_K, Block, Kernels, VecDot, QK_K};
use crate::GgmlType;

/// ggml's `block_q3_k`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ3_K {
    /// High (third) bits.
    pub hmask: [u8; 32],
    /// Low 2 bits.
    pub qs: [u8; 64],
    /// Sixteen 6-bit scales, packed.
    pub scales: [u8; 12],
    /// Super-block scale.
    pub d: f16,
}
const _: () = assert!(std::mem::size_of::<BlockQ3_K>() == 110);

impl Block for BlockQ3_K {
    const TYPE: GgmlType = GgmlType::Q3_K;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        let _ = (blocks, out);
        unimplemented!("Q3_K dequantize")
    }
}

impl VecDot for BlockQ3_K {
    type Activation = BlockQ8_K;
    fn vec_dot(w: &[Self], a: &[BlockQ8_K]) -> f32 {
        let _ = (w, a);
        unimplemented!("Q3_K vec_dot")
    }
    const KERNELS: Kernels<Self> = Kernels::NONE;
}
