//! Q4_1: blocks of 32 4-bit values with an f16 scale and minimum; value = d * q + m. Pairs with Q8_1.

use half::f16;

use super::{q8_1::BlockQ8_1, Block, Kernels, Quantize, VecDot};
use crate::GgmlType;

/// Elements per Q4_1 block.
pub const QK4_1: usize = 32;

/// ggml's `block_q4_1`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// Nibbles: element j in the low half of byte j, element j+16 in the high half.
    pub qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ4_1>() == 20);

impl Block for BlockQ4_1 {
    const TYPE: GgmlType = GgmlType::Q4_1;
    const BLOCK_SIZE: usize = QK4_1;
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        let _ = (blocks, out);
        unimplemented!("Q4_1 dequantize")
    }
}

impl Quantize for BlockQ4_1 {
    /// ggml's `quantize_row_q4_1_ref`.
    fn quantize(x: &[f32], out: &mut [Self]) {
        let _ = (x, out);
        unimplemented!("Q4_1 quantize")
    }
}

impl VecDot for BlockQ4_1 {
    type Activation = BlockQ8_1;
    fn vec_dot(w: &[Self], a: &[BlockQ8_1]) -> f32 {
        let _ = (w, a);
        unimplemented!("Q4_1 vec_dot")
    }
    const KERNELS: Kernels<Self> = Kernels::NONE;
}
