//! Q4_0: blocks of 32 4-bit values with one f16 scale; value = d * (q - 8). Pairs with Q8_0.

use half::f16;

use super::{Block, BlockQ8_0, Kernels, Quantize, VecDot};
use crate::GgmlType;

/// Elements per Q4_0 block.
pub const QK4_0: usize = 32;

/// ggml's `block_q4_0`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_0 {
    /// Scale.
    pub d: f16,
    /// Nibbles: element j in the low half of byte j, element j+16 in the high half.
    pub qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ4_0>() == 18);

impl Block for BlockQ4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;
    const BLOCK_SIZE: usize = QK4_0;
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        let _ = (blocks, out);
        unimplemented!("Q4_0 dequantize")
    }
}

impl Quantize for BlockQ4_0 {
    /// ggml's `quantize_row_q4_0_ref`.
    fn quantize(x: &[f32], out: &mut [Self]) {
        let _ = (x, out);
        unimplemented!("Q4_0 quantize")
    }
}

impl VecDot for BlockQ4_0 {
    type Activation = BlockQ8_0;
    fn vec_dot(w: &[Self], a: &[BlockQ8_0]) -> f32 {
        let _ = (w, a);
        unimplemented!("Q4_0 vec_dot")
    }
    const KERNELS: Kernels<Self> = Kernels::NONE;
}
