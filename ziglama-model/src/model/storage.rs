//! How a KV cache stores its rows: the storage format ([`KvType`]) and a buffer of rows in
//! that format, encoded and decoded with ziglama-tensor's ggml kernels.

use std::fmt;
use std::ops::Range;

use ziglama_nn::half::f16;
use ziglama_nn::half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use ziglama_nn::NnError;
use ziglama_tensor::formats::{dequantize_row, quantize_row, traits};
use ziglama_tensor::GgmlType;

/// The storage format of a KV cache's rows (llama.cpp's `--cache-type-k/-v`).
///
/// `F16` is llama.cpp's default and what the model's numerics are checked against; `F32`
/// keeps the values unrounded; `Q8_0` and `Q4_0` quantize each row by blocks of 32 values
/// (rows and heads must be whole blocks) with ggml's reference quantizers.
///
/// ```
/// use ziglama_model::model::KvType;
/// assert_eq!(KvType::F16.row_bytes(64).unwrap(), 128);
/// assert_eq!(KvType::Q8_0.row_bytes(64).unwrap(), 68);
/// assert_eq!(KvType::Q4_0.row_bytes(64).unwrap(), 36);
/// assert!(KvType::Q4_0.row_bytes(48).is_err()); // not whole blocks of 32
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KvType {
    /// 32-bit floats: 4 bytes a value.
    F32,
    /// Half-precision floats: 2 bytes a value (llama.cpp's default).
    #[default]
    F16,
    /// Blocks of 32 values, an `f16` scale and 32 signed bytes: 8.5 bits a value.
    Q8_0,
    /// Blocks of 32 values, an `f16` scale and 32 4-bit values: 4.5 bits a value.
    Q4_0,
}

impl KvType {
    /// Every format.
    pub const ALL: [KvType; 4] = [KvType::F32, KvType::F16, KvType::Q8_0, KvType::Q4_0];

    /// The GGML type the rows are encoded as.
    pub fn ggml(self) -> GgmlType {
        match self {
            KvType::F32 => GgmlType::F32,
            KvType::F16 => GgmlType::F16,
            KvType::Q8_0 => GgmlType::Q8_0,
            KvType::Q4_0 => GgmlType::Q4_0,
        }
    }

    /// Values per block (1 for the float formats).
    pub fn block_size(self) -> usize {
        traits(self.ggml()).block_size
    }

    /// Bytes of one row of `row_len` values.
    ///
    /// # Errors
    ///
    /// [`NnError::Storage`] when `row_len` is not a whole number of blocks.
    pub fn row_bytes(self, row_len: usize) -> Result<usize, NnError> {
        let t = traits(self.ggml());
        if !row_len.is_multiple_of(t.block_size) {
            return Err(self.error(format!(
                "rows of {row_len} values are not whole blocks of {}",
                t.block_size
            )));
        }
        Ok(row_len / t.block_size * t.type_size)
    }

    fn error(self, reason: String) -> NnError {
        NnError::Storage {
            format: self.to_string(),
            reason,
        }
    }
}

impl fmt::Display for KvType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KvType::F32 => "f32",
            KvType::F16 => "f16",
            KvType::Q8_0 => "q8_0",
            KvType::Q4_0 => "q4_0",
        })
    }
}

/// Alignment of a row buffer's start, enough for every block struct.
const ALIGN: usize = 64;

/// `n_rows` rows of `row_len` values in format `ty`, in one allocation aligned for the
/// format's blocks (zeroed lazily by the OS). `f16` rows live in a `u16` buffer and are
/// read as `&[f16]` slices converted in one call (F16C where the CPU has it), the path
/// attention took before the cache had other formats; the other formats go through
/// ziglama-tensor's `quantize_row` / `dequantize_row`.
pub(crate) struct Rows {
    ty: KvType,
    row_len: usize,
    row_bytes: usize,
    n_rows: usize,
    /// The rows of an `f16` buffer (empty otherwise).
    half: Vec<u16>,
    /// The rows of any other format, from `start` (empty for `f16`).
    buf: Vec<u8>,
    start: usize,
}

impl Rows {
    /// A buffer of `n_rows` rows.
    ///
    /// # Errors
    ///
    /// `row_len` not whole blocks of `ty`.
    pub(crate) fn new(ty: KvType, row_len: usize, n_rows: usize) -> Result<Rows, NnError> {
        let row_bytes = ty.row_bytes(row_len)?;
        let (half, buf) = if ty == KvType::F16 {
            (vec![0u16; n_rows * row_len], Vec::new())
        } else {
            (Vec::new(), vec![0u8; n_rows * row_bytes + ALIGN])
        };
        let start = (ALIGN - buf.as_ptr() as usize % ALIGN) % ALIGN;
        Ok(Rows {
            ty,
            row_len,
            row_bytes,
            n_rows,
            half,
            buf,
            start,
        })
    }

    /// Bytes of storage (the rows, without the alignment padding).
    pub(crate) fn bytes(&self) -> usize {
        self.n_rows * self.row_bytes
    }

    /// The encoded bytes of `row` (not `f16`).
    fn raw(&self, row: usize) -> &[u8] {
        &self.buf[self.start + row * self.row_bytes..][..self.row_bytes]
    }

    fn raw_mut(&mut self, row: usize) -> &mut [u8] {
        &mut self.buf[self.start + row * self.row_bytes..][..self.row_bytes]
    }

    /// Encodes `x` (`row_len` values) into `row`.
    pub(crate) fn write(&mut self, row: usize, x: &[f32], what: &str) -> Result<(), NnError> {
        if x.len() != self.row_len {
            return Err(NnError::Shape {
                what: format!("KV cache {what} row"),
                expected: self.row_len.to_string(),
                found: x.len().to_string(),
            });
        }
        if self.ty == KvType::F16 {
            let n = self.row_len;
            for (d, s) in self.half[row * n..][..n].iter_mut().zip(x) {
                *d = f16::from_f32(*s).to_bits();
            }
            return Ok(());
        }
        let ty = self.ty.ggml();
        quantize_row(ty, x, self.raw_mut(row)).map_err(|source| NnError::Tensor {
            what: format!("KV cache: encoding a {what} row"),
            source,
        })
    }

    /// Decodes columns `cols` of `row` into `out` (`cols.len()` values).
    pub(crate) fn read(
        &self,
        row: usize,
        cols: Range<usize>,
        out: &mut [f32],
    ) -> Result<(), NnError> {
        if self.ty == KvType::F16
            && cols.start <= cols.end
            && cols.end <= self.row_len
            && out.len() == cols.len()
        {
            let at = row * self.row_len + cols.start;
            self.half[at..at + out.len()]
                .reinterpret_cast::<f16>()
                .convert_to_f32_slice(out);
            return Ok(());
        }
        let t = traits(self.ty.ggml());
        let bs = t.block_size;
        if cols.end > self.row_len
            || cols.start > cols.end
            || !cols.start.is_multiple_of(bs)
            || !cols.end.is_multiple_of(bs)
        {
            return Err(self.ty.error(format!(
                "columns {cols:?} are not whole blocks of {bs} within rows of {}",
                self.row_len
            )));
        }
        if out.len() != cols.len() {
            return Err(NnError::Shape {
                what: "KV cache read buffer".into(),
                expected: cols.len().to_string(),
                found: out.len().to_string(),
            });
        }
        let bytes = &self.raw(row)[cols.start / bs * t.type_size..cols.end / bs * t.type_size];
        dequantize_row(self.ty.ggml(), bytes, out).map_err(|source| NnError::Tensor {
            what: "KV cache: decoding a row".into(),
            source,
        })
    }

    /// Copies row `from` over row `to`.
    pub(crate) fn copy_row(&mut self, from: usize, to: usize) {
        if self.ty == KvType::F16 {
            let n = self.row_len;
            self.half.copy_within(from * n..(from + 1) * n, to * n);
            return;
        }
        let (a, n) = (self.start + from * self.row_bytes, self.row_bytes);
        self.buf
            .copy_within(a..a + n, self.start + to * self.row_bytes);
    }
}

impl Clone for Rows {
    /// A copy in a new allocation, aligned afresh.
    fn clone(&self) -> Rows {
        let mut copy = Rows {
            ty: self.ty,
            row_len: self.row_len,
            row_bytes: self.row_bytes,
            n_rows: self.n_rows,
            half: self.half.clone(),
            buf: vec![0u8; self.buf.len()],
            start: 0,
        };
        if self.buf.is_empty() {
            return copy;
        }
        copy.start = (ALIGN - copy.buf.as_ptr() as usize % ALIGN) % ALIGN;
        let n = self.bytes();
        copy.buf[copy.start..copy.start + n].copy_from_slice(&self.buf[self.start..self.start + n]);
        copy
    }
}

impl fmt::Debug for Rows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rows")
            .field("ty", &self.ty)
            .field("row_len", &self.row_len)
            .field("n_rows", &self.n_rows)
            .finish()
    }
}

/// The check every cache's `read` makes first: both output buffers hold `len` values.
pub(crate) fn check_read_buffers(len: usize, keys: &[f32], values: &[f32]) -> Result<(), NnError> {
    if keys.len() != len || values.len() != len {
        return Err(NnError::Shape {
            what: "KV cache read buffers".into(),
            expected: len.to_string(),
            found: format!("{} and {}", keys.len(), values.len()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_round_trips_within_its_precision() {
        let x: Vec<f32> = (0..64).map(|i| (i as f32 - 31.5) / 7.0).collect();
        for (ty, tol) in [
            (KvType::F32, 0.0),
            (KvType::F16, 2e-3),
            (KvType::Q8_0, 0.02),
            (KvType::Q4_0, 0.3),
        ] {
            let mut rows = Rows::new(ty, 64, 3).unwrap();
            rows.write(1, &x, "key").unwrap();
            let mut out = vec![0f32; 32];
            rows.read(1, 32..64, &mut out).unwrap();
            for (a, b) in out.iter().zip(&x[32..]) {
                assert!((a - b).abs() <= tol, "{ty}: {a} vs {b}");
            }
            let copy = rows.clone();
            let mut again = vec![0f32; 64];
            copy.read(1, 0..64, &mut again).unwrap();
            let mut first = vec![0f32; 64];
            rows.read(1, 0..64, &mut first).unwrap();
            assert_eq!(again, first);
            assert_eq!(rows.bytes(), 3 * ty.row_bytes(64).unwrap());
        }
        let rows = Rows::new(KvType::Q8_0, 64, 1).unwrap();
        assert!(rows.read(0, 8..40, &mut [0f32; 32]).is_err());
        assert!(Rows::new(KvType::Q4_0, 40, 1).is_err());
    }
}
