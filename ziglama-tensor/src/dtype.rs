//! GGML element types: the ids GGUF files store and the facts every layer asks of them.

use std::fmt;

use crate::error::{Result, TensorError};
use crate::formats::{self, TypeTraits};

/// An element type of a GGML tensor, with the numeric id GGUF stores for it.
///
/// Quantized types store values in blocks of [`block_size`](GgmlType::block_size) elements that
/// occupy [`type_size`](GgmlType::type_size) bytes. Every variant here can be dequantized and has
/// a dot-product kernel; see [`crate::formats`] for the block layouts.
///
/// ```
/// use ziglama_tensor::GgmlType;
/// let t = GgmlType::from_id(12).unwrap();
/// assert_eq!(t, GgmlType::Q4_K);
/// assert_eq!((t.block_size(), t.type_size()), (256, 144));
/// assert_eq!(t.row_size(4096).unwrap(), 16 * 144);
/// assert!(GgmlType::from_id(16).is_err()); // IQ2_XXS is known but not supported
/// ```
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum GgmlType {
    /// 32-bit IEEE float.
    F32 = 0,
    /// 16-bit IEEE float.
    F16 = 1,
    /// 4-bit, blocks of 32 with an f16 scale.
    Q4_0 = 2,
    /// 4-bit, blocks of 32 with an f16 scale and minimum.
    Q4_1 = 3,
    /// 5-bit, blocks of 32 with an f16 scale.
    Q5_0 = 6,
    /// 5-bit, blocks of 32 with an f16 scale and minimum.
    Q5_1 = 7,
    /// 8-bit, blocks of 32 with an f16 scale.
    Q8_0 = 8,
    /// 8-bit, blocks of 32 with an f16 scale and the scaled sum (activation format).
    Q8_1 = 9,
    /// 2-bit k-quant, super-blocks of 256.
    Q2_K = 10,
    /// 3-bit k-quant, super-blocks of 256.
    Q3_K = 11,
    /// 4-bit k-quant, super-blocks of 256.
    Q4_K = 12,
    /// 5-bit k-quant, super-blocks of 256.
    Q5_K = 13,
    /// 6-bit k-quant, super-blocks of 256.
    Q6_K = 14,
    /// 8-bit k-quant with block sums, super-blocks of 256 (activation format).
    Q8_K = 15,
    /// 4-bit non-linear, blocks of 32.
    IQ4_NL = 20,
    /// 4-bit non-linear with 6-bit sub-block scales, super-blocks of 256.
    IQ4_XS = 23,
    /// bfloat16.
    BF16 = 30,
}

/// ggml's names for type ids ziglama recognises but does not implement, for error messages.
const KNOWN_UNSUPPORTED: &[(u32, &str)] = &[
    (4, "Q4_2 (removed)"),
    (5, "Q4_3 (removed)"),
    (16, "IQ2_XXS"),
    (17, "IQ2_XS"),
    (18, "IQ3_XXS"),
    (19, "IQ1_S"),
    (21, "IQ3_S"),
    (22, "IQ2_S"),
    (24, "I8"),
    (25, "I16"),
    (26, "I32"),
    (27, "I64"),
    (28, "F64"),
    (29, "IQ1_M"),
    (31, "Q4_0_4_4 (removed)"),
    (32, "Q4_0_4_8 (removed)"),
    (33, "Q4_0_8_8 (removed)"),
    (34, "TQ1_0"),
    (35, "TQ2_0"),
    (36, "IQ4_NL_4_4 (removed)"),
    (37, "IQ4_NL_4_8 (removed)"),
    (38, "IQ4_NL_8_8 (removed)"),
    (39, "MXFP4"),
];

impl GgmlType {
    /// Every supported type, in id order.
    pub const ALL: [GgmlType; 17] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::Q8_K,
        GgmlType::IQ4_NL,
        GgmlType::IQ4_XS,
        GgmlType::BF16,
    ];

    /// The type with GGUF id `id`, or an error naming the id (and ggml's name for it, if known).
    pub fn from_id(id: u32) -> Result<GgmlType> {
        if let Some(t) = Self::ALL.iter().copied().find(|t| t.id() == id) {
            return Ok(t);
        }
        let name = KNOWN_UNSUPPORTED
            .iter()
            .find(|(i, _)| *i == id)
            .map_or("unknown", |(_, n)| n);
        Err(TensorError::UnsupportedType { id, name })
    }

    /// The numeric id GGUF stores for this type.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// The name used by GGUF tools (`Q4_K`, `F32`, `IQ4_NL`, ...).
    pub fn name(self) -> &'static str {
        self.traits().name
    }

    /// The facts and functions of this type from the format registry.
    pub fn traits(self) -> &'static TypeTraits {
        formats::traits(self)
    }

    /// Elements per block (1 for the float types).
    pub fn block_size(self) -> usize {
        self.traits().block_size
    }

    /// Bytes per block.
    pub fn type_size(self) -> usize {
        self.traits().type_size
    }

    /// Whether values are stored in quantized blocks.
    pub fn is_quantized(self) -> bool {
        self.traits().block_size > 1
    }

    /// The activation type this type's dot product pairs with (as ggml's `vec_dot_type`).
    pub fn vec_dot_type(self) -> GgmlType {
        self.traits().vec_dot_type
    }

    /// Bytes taken by `n` elements, or an error if `n` is not a whole number of blocks or the
    /// size overflows.
    pub fn row_size(self, n: usize) -> Result<usize> {
        let bs = self.block_size();
        if !n.is_multiple_of(bs) {
            return Err(TensorError::NotBlockMultiple {
                op: "row size",
                ty: self,
                n,
                block_size: bs,
            });
        }
        (n / bs)
            .checked_mul(self.type_size())
            .ok_or(TensorError::InvalidShape {
                shape: vec![n],
                reason: "byte size overflows usize",
            })
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
