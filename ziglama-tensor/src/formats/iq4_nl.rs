//! IQ4_NL: blocks of 32 4-bit indices into a fixed non-linear table, with one f16 scale; value = d * KVALUES_IQ4NL[q]. Pairs with Q8_0.

use half::f16;

use super::{Block, BlockQ8_0, Kernels, VecDot};
use crate::GgmlType;

/// Elements per IQ4_NL block.
pub const QK4_NL: usize = 32;

/// The sixteen non-linear levels IQ4_NL and IQ4_XS indices select (ggml's `kvalues_iq4nl`).
pub const KVALUES_IQ4NL: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// ggml's `block_iq4_nl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ4_NL {
    /// Scale.
    pub d: f16,
    /// Indices into the non-linear table, laid out as in Q4_0.
    pub qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockIQ4_NL>() == 18);

impl Block for BlockIQ4_NL {
    const TYPE: GgmlType = GgmlType::IQ4_NL;
    const BLOCK_SIZE: usize = QK4_NL;
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        let _ = (blocks, out);
        unimplemented!("IQ4_NL dequantize")
    }
}

impl VecDot for BlockIQ4_NL {
    type Activation = BlockQ8_0;
    fn vec_dot(w: &[Self], a: &[BlockQ8_0]) -> f32 {
        let _ = (w, a);
        unimplemented!("IQ4_NL vec_dot")
    }
    const KERNELS: Kernels<Self> = Kernels::NONE;
}
