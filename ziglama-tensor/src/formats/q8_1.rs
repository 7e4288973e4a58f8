//! Q8_1: blocks of 32 signed bytes with an f16 scale and the scaled sum d * sum(q); the activation format of Q4_1 and Q5_1.

use half::f16;

use super::{Block, Kernels, Quantize, VecDot};
use crate::GgmlType;

/// Elements per Q8_1 block.
pub const QK8_1: usize = 32;

/// ggml's `block_q8_1`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_1 {
    /// Scale.
    pub d: f16,
    /// d times the sum of the quants.
    pub s: f16,
    /// Quants.
    pub qs: [i8; 32],
}
const _: () = assert!(std::mem::size_of::<BlockQ8_1>() == 36);

impl Block for BlockQ8_1 {
    const TYPE: GgmlType = GgmlType::Q8_1;
    const BLOCK_SIZE: usize = QK8_1;
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        let _ = (blocks, out);
        unimplemented!("Q8_1 dequantize")
    }
}

impl Quantize for BlockQ8_1 {
    /// ggml's `quantize_row_q8_1_ref`.
    fn quantize(x: &[f32], out: &mut [Self]) {
        let _ = (x, out);
        unimplemented!("Q8_1 quantize")
    }
}

impl VecDot for BlockQ8_1 {
    type Activation = BlockQ8_1;
    fn vec_dot(w: &[Self], a: &[BlockQ8_1]) -> f32 {
        let _ = (w, a);
        unimplemented!("Q8_1 vec_dot")
    }
    const KERNELS: Kernels<Self> = Kernels::NONE;
}
