//! Q5_0: blocks of 32 5-bit values with one f16 scale; value = d * (q - 16). Pairs with Q8_0.

use half::f16;

use super::{Block, BlockQ8_0, Kernels, Quantize, VecDot};
use crate::GgmlType;

/// Elements per Q5_0 block.
pub const QK5_0: usize = 32;

/// ggml's `block_q5_0`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: f16,
    /// Fifth bits, one per element (little-endian u32).
    pub qh: [u8; 4],
    /// Low nibbles, laid out as in Q4_0.
    pub qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ5_0>() == 22);

impl Block for BlockQ5_0 {
    const TYPE: GgmlType = GgmlType::Q5_0;
    const BLOCK_SIZE: usize = QK5_0;
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        let _ = (blocks, out);
        unimplemented!("Q5_0 dequantize")
    }
}

impl Quantize for BlockQ5_0 {
    /// ggml's `quantize_row_q5_0_ref`.
    fn quantize(x: &[f32], out: &mut [Self]) {
        let _ = (x, out);
        unimplemented!("Q5_0 quantize")
    }
}

impl VecDot for BlockQ5_0 {
    type Activation = BlockQ8_0;
    fn vec_dot(w: &[Self], a: &[BlockQ8_0]) -> f32 {
        let _ = (w, a);
        unimplemented!("Q5_0 vec_dot")
    }
    const KERNELS: Kernels<Self> = Kernels::NONE;
}
