//! A parsed GGUF file whose tensors borrow their bytes from the file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use ziglama_tensor::tensor::SharedBytes;
use ziglama_tensor::{MappedFile, Tensor};

use super::metadata::Metadata;
use super::reader::parse_header;
use super::TensorInfo;
use crate::error::{ModelError, Result};

/// A GGUF file: its metadata, its tensor infos, and its bytes, from which tensors are
/// borrowed without copying.
///
/// Opening checks the whole header and that every tensor's data lies inside the file at an
/// aligned offset; after that, [`GgufFile::tensor`] cannot fail for a listed tensor.
///
/// ```no_run
/// use ziglama_model::gguf::GgufFile;
/// let file = GgufFile::open("SmolLM2-135M-Instruct.Q4_1.gguf")?;
/// println!("{} tensors, {}", file.tensor_infos().len(),
///     file.metadata().get_str("general.architecture")?);
/// let emb = file.tensor("token_embd.weight")?;
/// assert_eq!(emb.shape(), &[576, 49152]);
/// # Ok::<(), ziglama_model::ModelError>(())
/// ```
#[derive(Clone)]
pub struct GgufFile {
    bytes: SharedBytes,
    version: u32,
    alignment: usize,
    data_offset: usize,
    metadata: Metadata,
    tensor_infos: Vec<TensorInfo>,
    index: HashMap<String, usize>,
}

impl GgufFile {
    /// Memory-maps `path` and parses it.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let map = MappedFile::open(path).map_err(|source| ModelError::Io {
            op: "map",
            path: path.to_path_buf(),
            source,
        })?;
        GgufFile::from_bytes(Arc::new(map))
    }

    /// Parses a GGUF file held in `bytes` (a [`MappedFile`], a `Vec<u8>`, ...).
    pub fn from_bytes(bytes: SharedBytes) -> Result<GgufFile> {
        let buf = (*bytes).as_ref();
        let h = parse_header(buf)?;
        let file_len = buf.len() as u64;
        if h.data_offset > buf.len() && !h.tensor_infos.is_empty() {
            return Err(ModelError::Truncated {
                field: "padding before the tensor data".to_string(),
                offset: file_len,
                needed: (h.data_offset - buf.len()) as u64,
                available: 0,
            });
        }
        for (info, &field_offset) in h.tensor_infos.iter().zip(&h.info_offsets) {
            let start = (h.data_offset as u64).checked_add(info.offset);
            let end = start.and_then(|s| s.checked_add(info.n_bytes as u64));
            match end {
                Some(end) if end <= file_len => {}
                _ => {
                    return Err(ModelError::TensorDataOutOfBounds {
                        tensor: info.name.clone(),
                        offset: field_offset as u64,
                        start: start.unwrap_or(u64::MAX),
                        end: end.unwrap_or(u64::MAX),
                        file_len,
                    })
                }
            }
        }
        let index = h
            .tensor_infos
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(GgufFile {
            bytes,
            version: h.version,
            alignment: h.alignment,
            data_offset: h.data_offset,
            metadata: h.metadata,
            tensor_infos: h.tensor_infos,
            index,
        })
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The alignment of tensor data (`general.alignment`, default 32).
    pub fn alignment(&self) -> usize {
        self.alignment
    }

    /// Where the data section starts in the file.
    pub fn data_offset(&self) -> usize {
        self.data_offset
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        (*self.bytes).as_ref()
    }

    /// The key-value metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The architecture the file declares (`general.architecture`: `llama`, `gemma3`, ...),
    /// the prefix of its hyperparameter keys.
    pub fn architecture(&self) -> Result<&str> {
        self.metadata.get_str(super::keys::GENERAL_ARCHITECTURE)
    }

    /// The tensor infos, in file order.
    pub fn tensor_infos(&self) -> &[TensorInfo] {
        &self.tensor_infos
    }

    /// The info of the tensor called `name`.
    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.index.get(name).map(|&i| &self.tensor_infos[i])
    }

    /// The data bytes of the tensor called `name`.
    pub fn tensor_data(&self, name: &str) -> Result<&[u8]> {
        let info = self.find(name)?;
        let start = self.data_offset + info.offset as usize;
        // Checked against the file length when the file was opened.
        Ok(&self.bytes()[start..start + info.n_bytes])
    }

    /// The tensor called `name`, borrowing its bytes from the file (copied only if the data
    /// is not aligned in memory for its block type, which an aligned file in a memory map
    /// never is).
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        let info = self.find(name)?;
        Tensor::from_shared(
            info.dtype,
            &info.shape,
            self.bytes.clone(),
            self.data_offset + info.offset as usize,
        )
        .map_err(|source| ModelError::Tensor {
            tensor: name.to_string(),
            source,
        })
    }

    fn find(&self, name: &str) -> Result<&TensorInfo> {
        self.tensor_info(name)
            .ok_or_else(|| ModelError::TensorNotFound {
                name: name.to_string(),
            })
    }
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .field("n_bytes", &self.bytes().len())
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensor_infos.len())
            .finish()
    }
}
