//! Writing GGUF version 3 files the way llama.cpp writes them.

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::Path;

use ziglama_tensor::{GgmlType, Tensor};

use super::file::GgufFile;
use super::metadata::Metadata;
use super::value::{MetadataArray, MetadataValue};
use super::{DEFAULT_ALIGNMENT, KEY_ALIGNMENT, MAGIC, MAX_DIMS, MAX_NAME_LEN, VERSION};
use crate::error::{ModelError, Result};

/// Builds a GGUF file: metadata in insertion order, then tensors in insertion order.
///
/// The layout is the one llama.cpp's `gguf_write_to_file` produces: header, key-value pairs,
/// tensor infos (each tensor's data offset is the previous one's plus its size rounded up to
/// the alignment), zero padding to the alignment, then each tensor's data followed by zero
/// padding to the alignment. The alignment is `general.alignment` if the metadata sets it (a
/// `uint32` power of two), else 32. A file without tensors ends after its metadata, unpadded,
/// as gguf-py writes it. Tensors added from a [`GgufFile`] stay borrowed from it,
/// so copying a file does not copy its weights in memory.
///
/// ```
/// use std::sync::Arc;
/// use ziglama_model::gguf::{GgufFile, GgufWriter, MetadataArray};
/// use ziglama_model::tensor::GgmlType;
///
/// let mut w = GgufWriter::new();
/// w.metadata_mut().insert("general.alignment", 64u32)?;
/// w.metadata_mut().insert("tokenizer.ggml.tokens",
///     MetadataArray::String(["a", "b"].into_iter().collect()))?;
/// w.add_tensor_bytes("t", GgmlType::F32, &[3], &[0u8; 12])?;
/// w.add_tensor_bytes("u", GgmlType::F32, &[1], &[1u8; 4])?;
/// let bytes = w.to_bytes()?;
/// assert_eq!(bytes.len() % 64, 0);
/// let f = GgufFile::from_bytes(Arc::new(bytes))?;
/// assert_eq!(f.alignment(), 64);
/// assert_eq!(f.tensor_info("u").unwrap().offset, 64);
/// # Ok::<(), ziglama_model::ModelError>(())
/// ```
#[derive(Clone, Debug)]
pub struct GgufWriter {
    version: u32,
    metadata: Metadata,
    tensors: Vec<(String, Tensor)>,
    names: HashSet<String>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        GgufWriter::new()
    }
}

impl GgufWriter {
    /// An empty version-3 file.
    pub fn new() -> GgufWriter {
        GgufWriter {
            version: VERSION,
            metadata: Metadata::new(),
            tensors: Vec::new(),
            names: HashSet::new(),
        }
    }

    /// A writer holding the version, all metadata and all tensors of `file`, in its order
    /// (tensors borrowed, not copied). Writing it reproduces the file if the file was laid
    /// out as llama.cpp and gguf-py lay files out.
    pub fn from_file(file: &GgufFile) -> Result<GgufWriter> {
        let mut w = GgufWriter::new();
        w.version = file.version();
        w.metadata = file.metadata().clone();
        for info in file.tensor_infos() {
            w.add_tensor(&info.name, file.tensor(&info.name)?)?;
        }
        Ok(w)
    }

    /// Sets the version written: 3 (the default) or 2, which has the same layout.
    pub fn set_version(&mut self, version: u32) -> Result<()> {
        if version != 2 && version != 3 {
            return Err(ModelError::InvalidWrite {
                field: "GGUF version".to_string(),
                expected: "2 or 3".to_string(),
                found: version.to_string(),
            });
        }
        self.version = version;
        Ok(())
    }

    /// The metadata to write.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The metadata to write, to add or change keys.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// Adds a tensor, keeping its shape as given (dimensions innermost first).
    pub fn add_tensor(&mut self, name: &str, tensor: Tensor) -> Result<()> {
        let field = || format!("tensor `{name}`");
        if name.len() >= MAX_NAME_LEN {
            return Err(ModelError::InvalidWrite {
                field: field(),
                expected: format!("a name of at most {} bytes", MAX_NAME_LEN - 1),
                found: format!("{} bytes", name.len()),
            });
        }
        if tensor.shape().is_empty() || tensor.shape().len() > MAX_DIMS {
            return Err(ModelError::InvalidWrite {
                field: field(),
                expected: format!("1..={MAX_DIMS} dimensions"),
                found: format!("{:?}", tensor.shape()),
            });
        }
        if !self.names.insert(name.to_string()) {
            return Err(ModelError::InvalidWrite {
                field: field(),
                expected: "a name not yet used".to_string(),
                found: "a duplicate name".to_string(),
            });
        }
        self.tensors.push((name.to_string(), tensor));
        Ok(())
    }

    /// Adds a tensor from raw bytes in the block layout of `dtype` (copied).
    pub fn add_tensor_bytes(
        &mut self,
        name: &str,
        dtype: GgmlType,
        shape: &[usize],
        bytes: &[u8],
    ) -> Result<()> {
        let t = Tensor::from_bytes(dtype, shape, bytes).map_err(|source| ModelError::Tensor {
            tensor: name.to_string(),
            source,
        })?;
        self.add_tensor(name, t)
    }

    /// The tensors to write, in order.
    pub fn tensors(&self) -> impl ExactSizeIterator<Item = (&str, &Tensor)> + '_ {
        self.tensors.iter().map(|(n, t)| (n.as_str(), t))
    }

    fn alignment(&self) -> Result<usize> {
        match self.metadata.get(KEY_ALIGNMENT) {
            None => Ok(DEFAULT_ALIGNMENT),
            Some(MetadataValue::Uint32(a)) if a.is_power_of_two() => Ok(*a as usize),
            Some(v) => Err(ModelError::InvalidWrite {
                field: format!("metadata key `{KEY_ALIGNMENT}`"),
                expected: "a uint32 power of two".to_string(),
                found: format!("{} {v}", v.type_description()),
            }),
        }
    }

    /// Everything before the tensor data, padding included.
    fn header(&self, alignment: usize) -> Result<Vec<u8>> {
        let mut h = Vec::new();
        h.extend_from_slice(&MAGIC);
        h.extend_from_slice(&self.version.to_le_bytes());
        h.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        h.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in self.metadata.iter() {
            if key.is_empty() {
                return Err(ModelError::InvalidWrite {
                    field: "metadata key".to_string(),
                    expected: "a non-empty key".to_string(),
                    found: "an empty key".to_string(),
                });
            }
            put_string(&mut h, key.as_bytes());
            h.extend_from_slice(&value.value_type().id().to_le_bytes());
            put_value(&mut h, value);
        }
        let mut offset = 0u64;
        for (name, t) in &self.tensors {
            put_string(&mut h, name.as_bytes());
            h.extend_from_slice(&(t.shape().len() as u32).to_le_bytes());
            for &d in t.shape() {
                h.extend_from_slice(&(d as u64).to_le_bytes());
            }
            h.extend_from_slice(&t.dtype().id().to_le_bytes());
            h.extend_from_slice(&offset.to_le_bytes());
            offset += (t.n_bytes() as u64).next_multiple_of(alignment as u64);
        }
        // gguf-py does not pad a file without tensors (llama.cpp's writer does; both readers
        // accept either): follow gguf-py, which wrote most files in the wild.
        if !self.tensors.is_empty() {
            h.resize(h.len().next_multiple_of(alignment), 0);
        }
        Ok(h)
    }

    /// Writes the file to `out`; returns the number of bytes written.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<u64> {
        let alignment = self.alignment().map_err(io::Error::other)?;
        let header = self.header(alignment).map_err(io::Error::other)?;
        out.write_all(&header)?;
        let mut n = header.len() as u64;
        let zeros = vec![0u8; alignment];
        for (_, t) in &self.tensors {
            out.write_all(t.bytes())?;
            let pad = t.n_bytes().next_multiple_of(alignment) - t.n_bytes();
            out.write_all(&zeros[..pad])?;
            n += (t.n_bytes() + pad) as u64;
        }
        Ok(n)
    }

    /// The whole file in memory.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let alignment = self.alignment()?;
        let header = self.header(alignment)?;
        let data: usize = self
            .tensors
            .iter()
            .map(|(_, t)| t.n_bytes().next_multiple_of(alignment))
            .sum();
        let mut out = Vec::with_capacity(header.len() + data);
        out.extend_from_slice(&header);
        for (_, t) in &self.tensors {
            out.extend_from_slice(t.bytes());
            out.resize(out.len().next_multiple_of(alignment), 0);
        }
        Ok(out)
    }

    /// Writes the file to `path` (created or truncated).
    pub fn write_file(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        // Refuse bad metadata before touching the file system.
        self.alignment()?;
        let io_err = |op| {
            move |source| ModelError::Io {
                op,
                path: path.to_path_buf(),
                source,
            }
        };
        let f = std::fs::File::create(path).map_err(io_err("create"))?;
        let mut w = io::BufWriter::with_capacity(1 << 20, f);
        self.write_to(&mut w).map_err(io_err("write"))?;
        w.flush().map_err(io_err("write"))?;
        Ok(())
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
}

fn put_value(out: &mut Vec<u8>, v: &MetadataValue) {
    match v {
        MetadataValue::Uint8(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetadataValue::Int8(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetadataValue::Uint16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetadataValue::Int16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetadataValue::Uint32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetadataValue::Int32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetadataValue::Float32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetadataValue::Bool(x) => out.push(u8::from(*x)),
        MetadataValue::String(s) => put_string(out, s.as_bytes()),
        MetadataValue::Uint64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetadataValue::Int64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetadataValue::Float64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetadataValue::Array(a) => put_array(out, a),
    }
}

fn put_array(out: &mut Vec<u8>, a: &MetadataArray) {
    out.extend_from_slice(&a.element_type().id().to_le_bytes());
    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! each {
        ($v:expr) => {
            for x in $v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        MetadataArray::Uint8(v) => out.extend_from_slice(v),
        MetadataArray::Int8(v) => each!(v),
        MetadataArray::Uint16(v) => each!(v),
        MetadataArray::Int16(v) => each!(v),
        MetadataArray::Uint32(v) => each!(v),
        MetadataArray::Int32(v) => each!(v),
        MetadataArray::Float32(v) => each!(v),
        MetadataArray::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
        MetadataArray::String(v) => {
            for s in v.iter() {
                put_string(out, s);
            }
        }
        MetadataArray::Array(v) => {
            for inner in v {
                put_array(out, inner);
            }
        }
        MetadataArray::Uint64(v) => each!(v),
        MetadataArray::Int64(v) => each!(v),
        MetadataArray::Float64(v) => each!(v),
    }
}
