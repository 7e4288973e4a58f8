//! Parsing of the GGUF header (everything before the tensor data) from untrusted bytes.
//!
//! Every read is bounds-checked against the bytes that remain, every count is checked
//! against the bytes its items need before anything is allocated, arithmetic is checked, and
//! nesting is capped: a malformed file gives an error naming the field, its byte offset and
//! what was expected, never a panic or an unbounded allocation.

use std::collections::HashMap;

use ziglama_tensor::GgmlType;

use super::metadata::Metadata;
use super::value::{GgufString, MetadataArray, MetadataValue, StringArray, ValueType};
use super::{TensorInfo, DEFAULT_ALIGNMENT, KEY_ALIGNMENT, MAGIC, MAX_ARRAY_DEPTH, MAX_DIMS};
use crate::error::{ModelError, Result};

/// A bounds-checked little-endian cursor. Field names are built only when an error occurs.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, field: &dyn Fn() -> String) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(ModelError::Truncated {
                field: field(),
                offset: self.pos as u64,
                needed: n as u64,
                available: self.remaining() as u64,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, field: &dyn Fn() -> String) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    fn u32(&mut self, field: &dyn Fn() -> String) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &dyn Fn() -> String) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    /// Reads a u64 count of items that take at least `item_size` bytes each, and checks
    /// that they fit in what remains, so the count is safe to allocate for.
    fn count(&mut self, item_size: usize, field: &dyn Fn() -> String) -> Result<usize> {
        let offset = self.pos as u64;
        let n = self.u64(field)?;
        let fits = n
            .checked_mul(item_size as u64)
            .is_some_and(|b| b <= self.remaining() as u64);
        if !fits {
            return Err(ModelError::CountTooLarge {
                field: field(),
                offset,
                count: n,
                item_size: item_size as u64,
                available: self.remaining() as u64,
            });
        }
        // Fits in the remaining bytes, so fits in usize.
        Ok(n as usize)
    }

    /// A GGUF string: u64 length, then that many bytes.
    /// A string too long for the bytes left is reported as the whole field (length and
    /// bytes) being truncated.
    fn string(&mut self, field: &dyn Fn() -> String) -> Result<&'a [u8]> {
        let offset = self.pos;
        let n = self.u64(field)?;
        if n > self.remaining() as u64 {
            return Err(ModelError::Truncated {
                field: field(),
                offset: offset as u64,
                needed: n.saturating_add(8),
                available: (self.buf.len() - offset) as u64,
            });
        }
        self.take(n as usize, field)
    }
}

/// What [`parse_header`] finds.
pub(crate) struct Header {
    pub(crate) version: u32,
    pub(crate) alignment: usize,
    pub(crate) data_offset: usize,
    pub(crate) metadata: Metadata,
    pub(crate) tensor_infos: Vec<TensorInfo>,
    /// Byte offset of each tensor info's data-offset field, for error messages.
    pub(crate) info_offsets: Vec<usize>,
}

/// Parses magic, version, counts, metadata and tensor infos, and checks everything that
/// can be checked without the tensor data: that data must still be checked to lie inside
/// the file.
pub(crate) fn parse_header(buf: &[u8]) -> Result<Header> {
    let mut c = Cursor { buf, pos: 0 };
    let magic: [u8; 4] = c.array(&|| "GGUF magic".to_string())?;
    if magic != MAGIC {
        return Err(ModelError::BadMagic { found: magic });
    }
    let version = c.u32(&|| "GGUF version".to_string())?;
    if version != 2 && version != 3 {
        return Err(ModelError::UnsupportedVersion { version });
    }
    // A tensor info takes at least 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset).
    let n_tensors = c.count(24, &|| "header field tensor_count".to_string())?;
    // A key-value pair takes at least 8 (key length) + 4 (type) + 1 (smallest value).
    let n_kv = c.count(13, &|| "header field metadata_kv_count".to_string())?;

    let mut metadata = Metadata::new();
    let mut key_offsets: HashMap<&[u8], usize> = HashMap::with_capacity(n_kv);
    for i in 0..n_kv {
        let key_offset = c.pos;
        let key = c.string(&|| format!("metadata key #{i}"))?;
        if key.is_empty() {
            return Err(invalid(
                format!("metadata key #{i}"),
                key_offset,
                "a non-empty key",
                "an empty string",
            ));
        }
        let key_str = std::str::from_utf8(key).map_err(|e| {
            invalid(
                format!("metadata key #{i}"),
                key_offset,
                "a UTF-8 key",
                format!(
                    "invalid UTF-8 after {:?}",
                    String::from_utf8_lossy(&key[..e.valid_up_to()])
                ),
            )
        })?;
        if let Some(&first) = key_offsets.get(key) {
            return Err(ModelError::DuplicateKey {
                key: key_str.to_string(),
                offset: key_offset as u64,
                first_offset: first as u64,
            });
        }
        key_offsets.insert(key, key_offset);
        let value = read_typed_value(&mut c, key_str)?;
        metadata.set(key_str, value);
    }

    let alignment = match metadata.get(KEY_ALIGNMENT) {
        None => DEFAULT_ALIGNMENT,
        Some(v) => {
            let offset = key_offsets
                .get(KEY_ALIGNMENT.as_bytes())
                .copied()
                .unwrap_or(0);
            match v {
                MetadataValue::Uint32(a) if a.is_power_of_two() => *a as usize,
                MetadataValue::Uint32(a) => {
                    return Err(invalid(
                        format!("metadata key `{KEY_ALIGNMENT}`"),
                        offset,
                        "a non-zero power of two",
                        a.to_string(),
                    ))
                }
                v => {
                    return Err(invalid(
                        format!("metadata key `{KEY_ALIGNMENT}`"),
                        offset,
                        "a value of type uint32",
                        v.type_description(),
                    ))
                }
            }
        }
    };

    let mut tensor_infos = Vec::with_capacity(n_tensors);
    let mut info_offsets = Vec::with_capacity(n_tensors);
    let mut names: HashMap<&[u8], usize> = HashMap::with_capacity(n_tensors);
    for i in 0..n_tensors {
        let info_offset = c.pos;
        let name = c.string(&|| format!("tensor #{i} name"))?;
        let name_str = std::str::from_utf8(name).map_err(|e| {
            invalid(
                format!("tensor #{i} name"),
                info_offset,
                "a UTF-8 name",
                format!(
                    "invalid UTF-8 after {:?}",
                    String::from_utf8_lossy(&name[..e.valid_up_to()])
                ),
            )
        })?;
        if name.len() > super::MAX_NAME_LEN {
            return Err(invalid(
                format!("tensor `{name_str}` name"),
                info_offset,
                format!("at most {} bytes", super::MAX_NAME_LEN),
                format!("{} bytes", name.len()),
            ));
        }
        if let Some(&first) = names.get(name) {
            return Err(ModelError::DuplicateTensor {
                name: name_str.to_string(),
                offset: info_offset as u64,
                first_offset: first as u64,
            });
        }
        names.insert(name, info_offset);
        let info = read_tensor_info(&mut c, name_str, alignment)?;
        info_offsets.push(c.pos - 8);
        tensor_infos.push(info);
    }

    // The data section starts at the next multiple of the alignment (llama.cpp does not pad
    // a file without tensors).
    let data_offset = if n_tensors > 0 {
        c.pos
            .checked_next_multiple_of(alignment)
            .ok_or_else(|| invalid("data section", c.pos, "an aligned offset", "overflow"))?
    } else {
        c.pos
    };
    Ok(Header {
        version,
        alignment,
        data_offset,
        metadata,
        tensor_infos,
        info_offsets,
    })
}

fn invalid(
    field: impl Into<String>,
    offset: usize,
    expected: impl Into<String>,
    found: impl Into<String>,
) -> ModelError {
    ModelError::InvalidValue {
        field: field.into(),
        offset: offset as u64,
        expected: expected.into(),
        found: found.into(),
    }
}

fn read_value_type(c: &mut Cursor<'_>, field: &dyn Fn() -> String) -> Result<ValueType> {
    let offset = c.pos as u64;
    let id = c.u32(field)?;
    ValueType::from_id(id).ok_or_else(|| ModelError::UnknownValueType {
        field: field(),
        offset,
        id,
    })
}

fn read_typed_value(c: &mut Cursor<'_>, key: &str) -> Result<MetadataValue> {
    let ty = read_value_type(c, &|| format!("type of metadata key `{key}`"))?;
    let field = || format!("value of metadata key `{key}`");
    Ok(match ty {
        ValueType::Array => MetadataValue::Array(read_array(c, key, 1)?),
        ty => read_scalar(c, ty, &field)?,
    })
}

/// One value of a fixed-size numeric type.
fn read_scalar(
    c: &mut Cursor<'_>,
    ty: ValueType,
    field: &dyn Fn() -> String,
) -> Result<MetadataValue> {
    Ok(match ty {
        ValueType::Uint8 => MetadataValue::Uint8(u8::from_le_bytes(c.array(field)?)),
        ValueType::Int8 => MetadataValue::Int8(i8::from_le_bytes(c.array(field)?)),
        ValueType::Uint16 => MetadataValue::Uint16(u16::from_le_bytes(c.array(field)?)),
        ValueType::Int16 => MetadataValue::Int16(i16::from_le_bytes(c.array(field)?)),
        ValueType::Uint32 => MetadataValue::Uint32(u32::from_le_bytes(c.array(field)?)),
        ValueType::Int32 => MetadataValue::Int32(i32::from_le_bytes(c.array(field)?)),
        ValueType::Float32 => MetadataValue::Float32(f32::from_le_bytes(c.array(field)?)),
        ValueType::Uint64 => MetadataValue::Uint64(u64::from_le_bytes(c.array(field)?)),
        ValueType::Int64 => MetadataValue::Int64(i64::from_le_bytes(c.array(field)?)),
        ValueType::Float64 => MetadataValue::Float64(f64::from_le_bytes(c.array(field)?)),
        ValueType::Bool => MetadataValue::Bool(read_bool(c, field)?),
        ValueType::String => MetadataValue::String(GgufString::from(c.string(field)?)),
        ValueType::Array => {
            return Err(invalid(field(), c.pos, "a scalar value", "an array"));
        }
    })
}

fn read_bool(c: &mut Cursor<'_>, field: &dyn Fn() -> String) -> Result<bool> {
    let offset = c.pos;
    match c.take(1, field)?[0] {
        0 => Ok(false),
        1 => Ok(true),
        b => Err(invalid(field(), offset, "a bool (0 or 1)", b.to_string())),
    }
}

/// `n` values of a fixed-size type (not bool), which are known to fit in what remains.
fn read_fixed_array(
    c: &mut Cursor<'_>,
    ty: ValueType,
    n: usize,
    field: &dyn Fn() -> String,
) -> Result<MetadataArray> {
    macro_rules! le {
        ($t:ty, $v:ident) => {{
            const N: usize = std::mem::size_of::<$t>();
            let bytes = c.take(n * N, field)?;
            MetadataArray::$v(
                bytes
                    .chunks_exact(N)
                    .map(|b| <$t>::from_le_bytes(b.try_into().unwrap_or([0; N])))
                    .collect(),
            )
        }};
    }
    Ok(match ty {
        ValueType::Uint8 => MetadataArray::Uint8(c.take(n, field)?.to_vec()),
        ValueType::Int8 => le!(i8, Int8),
        ValueType::Uint16 => le!(u16, Uint16),
        ValueType::Int16 => le!(i16, Int16),
        ValueType::Uint32 => le!(u32, Uint32),
        ValueType::Int32 => le!(i32, Int32),
        ValueType::Float32 => le!(f32, Float32),
        ValueType::Uint64 => le!(u64, Uint64),
        ValueType::Int64 => le!(i64, Int64),
        ValueType::Float64 => le!(f64, Float64),
        ValueType::Bool | ValueType::String | ValueType::Array => {
            return Err(invalid(field(), c.pos, "fixed-size numbers", ty.name()));
        }
    })
}

fn read_array(c: &mut Cursor<'_>, key: &str, depth: usize) -> Result<MetadataArray> {
    let type_offset = c.pos;
    let ty = read_value_type(c, &|| format!("array element type of metadata key `{key}`"))?;
    if ty == ValueType::Array && depth >= MAX_ARRAY_DEPTH {
        return Err(ModelError::NestingTooDeep {
            field: format!("array of metadata key `{key}`"),
            offset: type_offset as u64,
            max: MAX_ARRAY_DEPTH,
        });
    }
    let n = c.count(ty.min_encoded_size(), &|| {
        format!("array length of metadata key `{key}`")
    })?;
    let elem = || format!("array elements of metadata key `{key}`");
    Ok(match ty {
        ValueType::Bool => {
            let start = c.pos;
            let bytes = c.take(n, &elem)?;
            if let Some(i) = bytes.iter().position(|&b| b > 1) {
                return Err(invalid(
                    format!("element {i} of metadata key `{key}`"),
                    start + i,
                    "a bool (0 or 1)",
                    bytes[i].to_string(),
                ));
            }
            MetadataArray::Bool(bytes.iter().map(|&b| b == 1).collect())
        }
        ValueType::String => {
            // Each string is at least its 8-byte length; the bytes that remain bound the rest.
            let bytes_hint = (c.remaining() - n * 8).min(n.saturating_mul(16));
            let mut a = StringArray::with_capacity(n, bytes_hint);
            for i in 0..n {
                a.push(c.string(&|| format!("element {i} of metadata key `{key}`"))?);
            }
            MetadataArray::String(a)
        }
        ValueType::Array => {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(read_array(c, key, depth + 1)?);
            }
            MetadataArray::Array(v)
        }
        ty => read_fixed_array(c, ty, n, &elem)?,
    })
}

fn read_tensor_info(c: &mut Cursor<'_>, name: &str, alignment: usize) -> Result<TensorInfo> {
    let dims_offset = c.pos;
    let n_dims = c.u32(&|| format!("tensor `{name}` n_dimensions"))?;
    if n_dims == 0 || n_dims as usize > MAX_DIMS {
        return Err(invalid(
            format!("tensor `{name}` n_dimensions"),
            dims_offset,
            format!("1..={MAX_DIMS} dimensions"),
            n_dims.to_string(),
        ));
    }
    let mut shape = Vec::with_capacity(n_dims as usize);
    let mut n_elements: u64 = 1;
    for d in 0..n_dims {
        let offset = c.pos;
        let dim = c.u64(&|| format!("tensor `{name}` dimension {d}"))?;
        n_elements = n_elements
            .checked_mul(dim)
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| {
                invalid(
                    format!("tensor `{name}` dimension {d}"),
                    offset,
                    "an element count below 2^63",
                    format!("dimensions {shape:?} then {dim}"),
                )
            })?;
        let dim = usize::try_from(dim).map_err(|_| {
            invalid(
                format!("tensor `{name}` dimension {d}"),
                offset,
                "a dimension that fits in usize",
                dim.to_string(),
            )
        })?;
        shape.push(dim);
    }
    let type_offset = c.pos;
    let type_id = c.u32(&|| format!("tensor `{name}` type"))?;
    let tensor_err = |offset: usize| {
        move |source| ModelError::InvalidTensor {
            tensor: name.to_string(),
            offset: offset as u64,
            source,
        }
    };
    let dtype = GgmlType::from_id(type_id).map_err(tensor_err(type_offset))?;
    let row = dtype.row_size(shape[0]).map_err(tensor_err(dims_offset))?;
    let n_bytes = shape[1..]
        .iter()
        .try_fold(row, |a, &d| a.checked_mul(d))
        .ok_or_else(|| {
            invalid(
                format!("tensor `{name}` dimensions"),
                dims_offset,
                "a byte size that fits in usize",
                format!("{shape:?} of {dtype}"),
            )
        })?;
    let offset_pos = c.pos;
    let offset = c.u64(&|| format!("tensor `{name}` data offset"))?;
    if offset % alignment as u64 != 0 {
        return Err(invalid(
            format!("tensor `{name}` data offset"),
            offset_pos,
            format!("a multiple of the alignment {alignment}"),
            offset.to_string(),
        ));
    }
    Ok(TensorInfo {
        name: name.to_string(),
        dtype,
        shape,
        offset,
        n_bytes,
    })
}
