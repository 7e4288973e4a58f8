//! Q6_K: super-blocks of 256 6-bit values in 16 blocks of 16 with 8-bit scales. Pairs with Q8_K.

use half::f16;

use super::{q8_k::BlockQ8_K, Block, Kernels, Quantize, VecDot, QK_K};
use crate::GgmlType;

/// ggml's `block_q6_k`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ6_K {
    /// Low 4 bits.
    pub ql: [u8; 128],
    /// High 2 bits.
    pub qh: [u8; 64],
    /// 8-bit scales, one per 16 elements.
    pub scales: [i8; 16],
    /// Super-block scale.
    pub d: f16,
}
const _: () = assert!(std::mem::size_of::<BlockQ6_K>() == 210);

impl Block for BlockQ6_K {
    const TYPE: GgmlType = GgmlType::Q6_K;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        let _ = (blocks, out);
        unimplemented!("Q6_K dequantize")
    }
}

impl Quantize for BlockQ6_K {
    /// ggml's `quantize_row_q6_k_ref`.
    fn quantize(x: &[f32], out: &mut [Self]) {
        let _ = (x, out);
        unimplemented!("Q6_K quantize")
    }
}

impl VecDot for BlockQ6_K {
    type Activation = BlockQ8_K;
    fn vec_dot(w: &[Self], a: &[BlockQ8_K]) -> f32 {
        let _ = (w, a);
        unimplemented!("Q6_K vec_dot")
    }
    const KERNELS: Kernels<Self> = Kernels::NONE;
}
