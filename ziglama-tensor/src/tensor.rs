//! Tensors: a GGML type, a shape, and bytes that are owned or borrowed from a memory map.

use std::fmt;
use std::sync::Arc;

use crate::error::{Result, TensorError};
use crate::formats::{self, Block};
use crate::GgmlType;

/// Shared read-only bytes a tensor can borrow from (a [`MappedFile`](crate::MappedFile), a
/// `Vec<u8>`, ...).
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// 64-byte aligned storage unit, so owned tensors suit every block type and SIMD loads.
#[repr(C, align(64))]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Line([u8; 64]);

#[derive(Clone)]
enum Storage {
    Owned {
        lines: Vec<Line>,
        len: usize,
    },
    Shared {
        bytes: SharedBytes,
        offset: usize,
        len: usize,
    },
}

/// A contiguous n-dimensional array of GGML type `dtype`.
///
/// Dimensions are in GGUF/ggml order: `shape()[0]` is the innermost, contiguous dimension (the
/// length of a row), as GGUF tensor infos and ggml's `ne` store them. A weight matrix with
/// `shape() == [n_embd, n_vocab]` has `n_vocab` rows of `n_embd` values.
///
/// ```
/// use ziglama_tensor::{GgmlType, Tensor};
/// let t = Tensor::from_f32(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
/// assert_eq!((t.row_len(), t.n_rows()), (3, 2));
/// assert_eq!(t.strides(), vec![4, 12]);
/// let q = Tensor::quantize(GgmlType::Q8_0, &[32, 1], &[0.5; 32]).unwrap();
/// assert_eq!(q.n_bytes(), 34);
/// // Q8_0 stores 0.5 as 127 * d with d = 0.5 / 127 rounded to f16.
/// assert!(q.to_f32().unwrap().iter().all(|v| (v - 0.5).abs() < 1e-4));
/// ```
#[derive(Clone)]
pub struct Tensor {
    dtype: GgmlType,
    shape: Vec<usize>,
    storage: Storage,
}

fn byte_size(dtype: GgmlType, shape: &[usize]) -> Result<usize> {
    let invalid = |reason| TensorError::InvalidShape {
        shape: shape.to_vec(),
        reason,
    };
    let row_len = *shape.first().ok_or_else(|| invalid("no dimensions"))?;
    let rows = shape[1..]
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| invalid("element count overflows usize"))?;
    dtype
        .row_size(row_len)?
        .checked_mul(rows)
        .ok_or_else(|| invalid("byte size overflows usize"))
}

impl Tensor {
    /// A tensor of zero bytes (zero values for every type).
    pub fn zeros(dtype: GgmlType, shape: &[usize]) -> Result<Tensor> {
        let len = byte_size(dtype, shape)?;
        Ok(Tensor {
            dtype,
            shape: shape.to_vec(),
            storage: Storage::Owned {
                lines: vec![Line([0; 64]); len.div_ceil(64)],
                len,
            },
        })
    }

    /// A tensor holding a copy of `bytes`, which must be exactly its size.
    pub fn from_bytes(dtype: GgmlType, shape: &[usize], bytes: &[u8]) -> Result<Tensor> {
        let mut t = Tensor::zeros(dtype, shape)?;
        let dst = t.bytes_mut();
        if dst.len() != bytes.len() {
            return Err(TensorError::LengthMismatch {
                op: "tensor from bytes",
                expected: dst.len(),
                actual: bytes.len(),
                unit: "bytes",
            });
        }
        dst.copy_from_slice(bytes);
        Ok(t)
    }

    /// An F32 tensor holding a copy of `data`.
    pub fn from_f32(shape: &[usize], data: &[f32]) -> Result<Tensor> {
        Tensor::from_bytes(GgmlType::F32, shape, bytemuck::cast_slice(data))
    }

    /// `data` quantized to `dtype` with ggml's reference quantizer.
    pub fn quantize(dtype: GgmlType, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        let mut t = Tensor::zeros(dtype, shape)?;
        if t.n_elements() != data.len() {
            return Err(TensorError::LengthMismatch {
                op: "quantize tensor",
                expected: t.n_elements(),
                actual: data.len(),
                unit: "elements",
            });
        }
        let row_len = t.row_len();
        let row_bytes = t.row_bytes_len();
        for (src, dst) in data
            .chunks_exact(row_len.max(1))
            .zip(t.bytes_mut().chunks_exact_mut(row_bytes.max(1)))
        {
            formats::quantize_row(dtype, src, dst)?;
        }
        Ok(t)
    }

    /// A tensor borrowing `bytes[offset..]` without copying. If that data is not aligned for
    /// the block type it is copied into owned, aligned storage instead.
    pub fn from_shared(
        dtype: GgmlType,
        shape: &[usize],
        bytes: SharedBytes,
        offset: usize,
    ) -> Result<Tensor> {
        let len = byte_size(dtype, shape)?;
        let all = (*bytes).as_ref();
        let avail = all.len().saturating_sub(offset);
        if offset > all.len() || len > avail {
            return Err(TensorError::LengthMismatch {
                op: "tensor from shared bytes",
                expected: len,
                actual: avail,
                unit: "bytes",
            });
        }
        let data = &all[offset..offset + len];
        if !(data.as_ptr() as usize).is_multiple_of(dtype.traits().align) {
            return Tensor::from_bytes(dtype, shape, data);
        }
        Ok(Tensor {
            dtype,
            shape: shape.to_vec(),
            storage: Storage::Shared { bytes, offset, len },
        })
    }

    /// The element type.
    pub fn dtype(&self) -> GgmlType {
        self.dtype
    }

    /// The dimensions, innermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Byte strides per dimension (ggml's `nb`); `strides()[0]` is the size of one block.
    pub fn strides(&self) -> Vec<usize> {
        let mut nb = Vec::with_capacity(self.shape.len());
        nb.push(self.dtype.type_size());
        if self.shape.len() > 1 {
            nb.push(self.row_bytes_len());
        }
        for i in 2..self.shape.len() {
            nb.push(nb[i - 1] * self.shape[i - 1]);
        }
        nb
    }

    /// Total number of elements.
    pub fn n_elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Length of one row (the innermost dimension).
    pub fn row_len(&self) -> usize {
        self.shape[0]
    }

    /// Number of rows (the product of all outer dimensions).
    pub fn n_rows(&self) -> usize {
        self.shape[1..].iter().product()
    }

    /// Bytes of one row.
    pub fn row_bytes_len(&self) -> usize {
        self.n_bytes() / self.n_rows().max(1)
    }

    /// Total bytes.
    pub fn n_bytes(&self) -> usize {
        match &self.storage {
            Storage::Owned { len, .. } | Storage::Shared { len, .. } => *len,
        }
    }

    /// Whether the bytes are borrowed (for example from a memory map) rather than owned.
    pub fn is_borrowed(&self) -> bool {
        matches!(self.storage, Storage::Shared { .. })
    }

    /// The raw bytes, in the block layout of [`Tensor::dtype`].
    pub fn bytes(&self) -> &[u8] {
        match &self.storage {
            Storage::Owned { lines, len } => &bytemuck::cast_slice(lines)[..*len],
            Storage::Shared { bytes, offset, len } => &(**bytes).as_ref()[*offset..*offset + *len],
        }
    }

    /// Mutable raw bytes; a borrowed tensor is first copied into owned storage.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        if let Storage::Shared { .. } = self.storage {
            let owned = Tensor::from_bytes(self.dtype, &self.shape, self.bytes())
                .expect("a tensor's own size is valid");
            self.storage = owned.storage;
        }
        match &mut self.storage {
            Storage::Owned { lines, len } => &mut bytemuck::cast_slice_mut(lines)[..*len],
            Storage::Shared { .. } => unreachable!("converted to owned above"),
        }
    }

    /// The bytes of row `i`, or `None` past the last row.
    pub fn row_bytes(&self, i: usize) -> Option<&[u8]> {
        let n = self.row_bytes_len();
        self.bytes()
            .get(i.checked_mul(n)?..i.checked_mul(n)?.checked_add(n)?)
    }

    /// The data as blocks of `B`, which must be this tensor's type.
    pub fn blocks<B: Block>(&self) -> Result<&[B]> {
        if B::TYPE != self.dtype {
            return Err(TensorError::NotAvailable {
                op: "view as blocks of another type",
                ty: self.dtype,
            });
        }
        // Alignment is guaranteed by construction (owned lines are 64-byte aligned, shared
        // data is checked in `from_shared`) and the size is a whole number of blocks.
        bytemuck::try_cast_slice(self.bytes()).map_err(|_| TensorError::Misaligned {
            op: "view as blocks",
            ty: self.dtype,
            offset: self.bytes().as_ptr() as usize % self.dtype.traits().align,
            align: self.dtype.traits().align,
        })
    }

    /// All values, dequantized to f32.
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        let mut out = vec![0f32; self.n_elements()];
        let rb = self.row_bytes_len().max(1);
        let rl = self.row_len().max(1);
        for (src, dst) in self.bytes().chunks_exact(rb).zip(out.chunks_exact_mut(rl)) {
            formats::dequantize_row(self.dtype, src, dst)?;
        }
        Ok(out)
    }

    /// Row `i`, dequantized into `out` (which holds [`Tensor::row_len`] values).
    pub fn dequantize_row_into(&self, i: usize, out: &mut [f32]) -> Result<()> {
        let bytes = self.row_bytes(i).ok_or(TensorError::LengthMismatch {
            op: "dequantize row",
            expected: i + 1,
            actual: self.n_rows(),
            unit: "rows",
        })?;
        formats::dequantize_row(self.dtype, bytes, out)
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("bytes", &self.n_bytes())
            .field("borrowed", &self.is_borrowed())
            .finish()
    }
}
