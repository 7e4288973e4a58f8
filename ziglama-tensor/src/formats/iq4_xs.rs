//! IQ4_XS: super-blocks of 256 4-bit non-linear indices in 8 blocks of 32 with 6-bit scales. Pairs with Q8_K.

use half::f16;

use super::{q8_k::BlockQ8_K, Block, Kernels, VecDot, QK_K};
use crate::GgmlType;

/// ggml's `block_iq4_xs`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ4_XS {
    /// Super-block scale.
    pub d: f16,
    /// High 2 bits of the eight 6-bit block scales.
    pub scales_h: u16,
    /// Low 4 bits of the eight block scales.
    pub scales_l: [u8; 4],
    /// Indices into the IQ4_NL table.
    pub qs: [u8; 128],
}
const _: () = assert!(std::mem::size_of::<BlockIQ4_XS>() == 136);

impl Block for BlockIQ4_XS {
    const TYPE: GgmlType = GgmlType::IQ4_XS;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        let _ = (blocks, out);
        unimplemented!("IQ4_XS dequantize")
    }
}

impl VecDot for BlockIQ4_XS {
    type Activation = BlockQ8_K;
    fn vec_dot(w: &[Self], a: &[BlockQ8_K]) -> f32 {
        let _ = (w, a);
        unimplemented!("IQ4_XS vec_dot")
    }
    const KERNELS: Kernels<Self> = Kernels::NONE;
}
