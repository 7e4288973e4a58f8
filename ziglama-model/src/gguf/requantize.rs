//! Requantizing a GGUF file to other tensor types, as `llama-quantize` does without an
//! importance matrix.
//!
//! A [`RequantizePlan`] says which type each tensor of a file becomes: a default type for
//! every matrix, 1-D tensors (norms, biases) kept as they are unless the plan says otherwise,
//! and per-name overrides. [`RequantizePlan::plan`] shows the caller what will happen to each
//! tensor, checked (every named tensor exists, every target type has a quantizer, every row
//! is a whole number of the target's blocks) before any work is done, and
//! [`RequantizePlan::apply`] does it: each tensor whose type changes is dequantized to f32
//! with ggml's dequantizer and quantized with ggml's reference quantizer of the target type
//! ([`ziglama_tensor::formats::quantize_row`], byte-identical to ggml's `quantize_row_*_ref`,
//! which is what `ggml_quantize_chunk` runs when no importance matrix is given); a tensor
//! whose type does not change is copied byte for byte, as llama-quantize copies it. Metadata
//! is copied, with `general.file_type` set (in place) to the plan's file type if the file has
//! that key.
//!
//! With the same target types, the result equals llama-quantize's output tensor for tensor:
//! `tests/requantize_smollm2.rs` checks this for SmolLM2 Q4_1 requantized to Q4_0
//! (`llama-quantize --allow-requantize IN OUT Q4_0`, which keeps the Q8_0 token embeddings
//! that serve as the tied output matrix).
//!
//! What it does **not** do:
//!
//! - No importance matrix, so none of the quantizers that need one (IQ2/IQ3/IQ1) and none
//!   of the imatrix-weighted variants of the others.
//! - None of llama-quantize's mixture rules: a `Q4_K_M` file, say, is a mixture of Q4_K,
//!   Q6_K and others chosen per tensor by name and layer; here every matrix gets the default
//!   type unless the caller names it. Nor its name rules: llama-quantize leaves, for
//!   example, tensors whose name does not end in `weight`, positional embeddings and MoE
//!   router matrices unquantized; the caller keeps them with [`RequantizePlan::keep`].
//! - Only the types ziglama-tensor can quantize ([`ziglama_tensor::formats::can_quantize`]):
//!   F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K. Q8_1 and Q8_K are
//!   activation formats, never model weights, and are refused as targets.
//! - No check of the quantized data for NaN or infinite scales (llama-quantize's
//!   `ggml_validate_row_data`); tensors keep the input's order (llama-quantize writes them in
//!   its loader's order), and `general.quantization_version` is left as the input has it.
//!
//! ```
//! use std::sync::Arc;
//! use ziglama_model::gguf::requantize::RequantizePlan;
//! use ziglama_model::gguf::{keys, GgufFile, GgufWriter};
//! use ziglama_model::tensor::{GgmlType, Tensor};
//!
//! // A tiny model: a norm, two matrices, and a file type (LLAMA_FTYPE_MOSTLY_Q4_1 = 3).
//! let values: Vec<f32> = (0..64 * 4).map(|i| (i as f32 * 0.37).sin()).collect();
//! let mut w = GgufWriter::new();
//! w.metadata_mut().insert(keys::GENERAL_FILE_TYPE, 3u32)?;
//! w.add_tensor("output_norm.weight", Tensor::from_f32(&[64], &values[..64])?)?;
//! w.add_tensor("token_embd.weight", Tensor::quantize(GgmlType::Q8_0, &[64, 4], &values)?)?;
//! w.add_tensor("blk.0.ffn_up.weight", Tensor::quantize(GgmlType::Q4_1, &[64, 4], &values)?)?;
//! let file = GgufFile::from_bytes(Arc::new(w.to_bytes()?))?;
//!
//! // Everything to Q4_0, but keep the embeddings Q8_0 (norms are kept by default).
//! let plan = RequantizePlan::new(GgmlType::Q4_0).with_type("token_embd.weight", GgmlType::Q8_0);
//! let steps = plan.plan(&file)?;
//! let types: Vec<_> = steps.iter().map(|s| (s.name.as_str(), s.from, s.to)).collect();
//! assert_eq!(types, [
//!     ("output_norm.weight", GgmlType::F32, GgmlType::F32),
//!     ("token_embd.weight", GgmlType::Q8_0, GgmlType::Q8_0),
//!     ("blk.0.ffn_up.weight", GgmlType::Q4_1, GgmlType::Q4_0),
//! ]);
//! assert_eq!(steps.iter().filter(|s| s.is_copy()).count(), 2);
//!
//! let out = GgufFile::from_bytes(Arc::new(plan.apply(&file)?.to_bytes()?))?;
//! assert_eq!(out.metadata().get_u32(keys::GENERAL_FILE_TYPE)?, 2); // LLAMA_FTYPE_MOSTLY_Q4_0
//! let up = out.tensor("blk.0.ffn_up.weight")?;
//! assert_eq!((up.dtype(), up.shape()), (GgmlType::Q4_0, &[64, 4][..]));
//! // Requantizing is dequantizing, then quantizing with the reference quantizer.
//! let direct = Tensor::quantize(GgmlType::Q4_0, &[64, 4],
//!     &file.tensor("blk.0.ffn_up.weight")?.to_f32()?)?;
//! assert_eq!(up.bytes(), direct.bytes());
//! // Unchanged types are copied byte for byte.
//! assert_eq!(out.tensor_data("token_embd.weight")?, file.tensor_data("token_embd.weight")?);
//!
//! // Mistakes are errors, found before any work is done.
//! let err = RequantizePlan::new(GgmlType::Q4_K).plan(&file).unwrap_err();
//! assert_eq!(err.to_string(), "tensor `token_embd.weight`: requantize: \
//!     64 elements is not a multiple of the Q4_K block size 256");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use ziglama_tensor::{formats, GgmlType, Tensor, TensorError};

use super::file::GgufFile;
use super::keys::GENERAL_FILE_TYPE;
use super::writer::GgufWriter;
use super::TensorInfo;
use crate::error::{ModelError, Result};

/// What becomes of the tensors of a GGUF file: a default type, a rule for 1-D tensors, and
/// per-name overrides. Build it, look at [`RequantizePlan::plan`], then
/// [`RequantizePlan::apply`] it. See the [module documentation](self) for an example and for
/// what it does not do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequantizePlan {
    default_type: GgmlType,
    vectors: Option<GgmlType>,
    overrides: Vec<(String, Option<GgmlType>)>,
    file_type: Option<u32>,
}

/// What a plan does with one tensor of a file.
///
/// ```
/// use ziglama_model::gguf::requantize::PlannedTensor;
/// use ziglama_model::tensor::GgmlType;
/// let p = PlannedTensor {
///     name: "blk.0.attn_q.weight".into(),
///     shape: vec![576, 576],
///     from: GgmlType::Q4_1,
///     to: GgmlType::Q4_0,
/// };
/// assert!(!p.is_copy());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedTensor {
    /// The tensor's name.
    pub name: String,
    /// Its dimensions, innermost first (unchanged by requantizing).
    pub shape: Vec<usize>,
    /// Its type in the input file.
    pub from: GgmlType,
    /// Its type in the output.
    pub to: GgmlType,
}

impl PlannedTensor {
    /// Whether the tensor is copied byte for byte (its type does not change).
    pub fn is_copy(&self) -> bool {
        self.from == self.to
    }
}

/// llama.cpp's `llama_ftype` number for a file whose matrices are mostly of type `ty`, as
/// llama.cpp's model loader guesses it from the most common type (a K-quant maps to its
/// `_M` mixture, the name llama.cpp gives such files); `None` for Q8_1 and Q8_K, which no
/// model file is made of.
///
/// ```
/// use ziglama_model::gguf::requantize::llama_file_type;
/// use ziglama_model::tensor::GgmlType;
/// assert_eq!(llama_file_type(GgmlType::Q4_0), Some(2)); // LLAMA_FTYPE_MOSTLY_Q4_0
/// assert_eq!(llama_file_type(GgmlType::Q8_0), Some(7)); // LLAMA_FTYPE_MOSTLY_Q8_0
/// assert_eq!(llama_file_type(GgmlType::Q4_K), Some(15)); // LLAMA_FTYPE_MOSTLY_Q4_K_M
/// assert_eq!(llama_file_type(GgmlType::Q8_K), None);
/// ```
pub fn llama_file_type(ty: GgmlType) -> Option<u32> {
    Some(match ty {
        GgmlType::F32 => 0,
        GgmlType::F16 => 1,
        GgmlType::Q4_0 => 2,
        GgmlType::Q4_1 => 3,
        GgmlType::Q8_0 => 7,
        GgmlType::Q5_0 => 8,
        GgmlType::Q5_1 => 9,
        GgmlType::Q2_K => 10,
        GgmlType::Q3_K => 12,
        GgmlType::Q4_K => 15,
        GgmlType::Q5_K => 17,
        GgmlType::Q6_K => 18,
        GgmlType::IQ4_NL => 25,
        GgmlType::IQ4_XS => 30,
        GgmlType::BF16 => 32,
        _ => return None,
    })
}

/// Whether a tensor of this shape is a vector in ggml's sense (`ggml_n_dims < 2`): every
/// dimension after the first is 1.
fn is_vector(shape: &[usize]) -> bool {
    shape.iter().skip(1).all(|&d| d == 1)
}

/// Whether `ty` can be the type of a requantized tensor: it has a reference quantizer and
/// is a format model files store (not the activation formats Q8_1 and Q8_K).
fn check_target(name: &str, ty: GgmlType) -> Result<()> {
    let op = if matches!(ty, GgmlType::Q8_1 | GgmlType::Q8_K) {
        "requantize (an activation format, never stored in model files)"
    } else if !formats::can_quantize(ty) {
        "requantize (ziglama-tensor has no reference quantizer for this type)"
    } else {
        return Ok(());
    };
    Err(ModelError::Tensor {
        tensor: name.to_string(),
        source: TensorError::NotAvailable { op, ty },
    })
}

impl RequantizePlan {
    /// Every tensor with at least two dimensions becomes `default_type`, 1-D tensors are kept
    /// as they are, and the file type becomes [`llama_file_type`]`(default_type)`.
    pub fn new(default_type: GgmlType) -> RequantizePlan {
        RequantizePlan {
            default_type,
            vectors: None,
            overrides: Vec::new(),
            file_type: None,
        }
    }

    /// Tensor `name` becomes `ty` (replacing an earlier override of the same name).
    pub fn with_type(mut self, name: impl Into<String>, ty: GgmlType) -> RequantizePlan {
        self.set_override(name.into(), Some(ty));
        self
    }

    /// Tensor `name` is copied as it is (replacing an earlier override of the same name).
    pub fn keep(mut self, name: impl Into<String>) -> RequantizePlan {
        self.set_override(name.into(), None);
        self
    }

    /// 1-D tensors become `ty` (say F32) instead of being kept as they are. Per-name
    /// overrides still win.
    pub fn vectors_to(mut self, ty: GgmlType) -> RequantizePlan {
        self.vectors = Some(ty);
        self
    }

    /// The value `general.file_type` is set to (if the file has that key) instead of
    /// [`llama_file_type`] of the default type.
    pub fn file_type(mut self, ftype: u32) -> RequantizePlan {
        self.file_type = Some(ftype);
        self
    }

    fn set_override(&mut self, name: String, ty: Option<GgmlType>) {
        match self.overrides.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = ty,
            None => self.overrides.push((name, ty)),
        }
    }

    /// The default type of matrices.
    pub fn default_type(&self) -> GgmlType {
        self.default_type
    }

    /// The per-name overrides in the order given: `Some(type)`, or `None` for "keep".
    pub fn overrides(&self) -> impl ExactSizeIterator<Item = (&str, Option<GgmlType>)> + '_ {
        self.overrides.iter().map(|(n, t)| (n.as_str(), *t))
    }

    /// The type the plan gives a tensor (not checked: see [`RequantizePlan::plan`]).
    pub fn target_type(&self, info: &TensorInfo) -> GgmlType {
        if let Some((_, ty)) = self.overrides.iter().find(|(n, _)| *n == info.name) {
            return ty.unwrap_or(info.dtype);
        }
        if is_vector(&info.shape) {
            return self.vectors.unwrap_or(info.dtype);
        }
        self.default_type
    }

    /// The `general.file_type` the output gets if the input has that key, or `None` if the
    /// plan sets none and the default type has no `llama_ftype`.
    pub fn output_file_type(&self) -> Option<u32> {
        self.file_type
            .or_else(|| llama_file_type(self.default_type))
    }

    /// What the plan does with each tensor of `file`, in file order, checked: an error if
    /// an override names a tensor the file does not have, if a tensor whose type changes
    /// gets a type without a reference quantizer (or Q8_1, Q8_K), or if its rows are not a
    /// whole number of the target type's blocks.
    pub fn plan(&self, file: &GgufFile) -> Result<Vec<PlannedTensor>> {
        if let Some((name, _)) = self
            .overrides
            .iter()
            .find(|(n, _)| file.tensor_info(n).is_none())
        {
            return Err(ModelError::TensorNotFound { name: name.clone() });
        }
        file.tensor_infos()
            .iter()
            .map(|info| {
                let to = self.target_type(info);
                if to != info.dtype {
                    check_target(&info.name, to)?;
                    let n = info.shape[0];
                    if !n.is_multiple_of(to.block_size()) {
                        return Err(ModelError::Tensor {
                            tensor: info.name.clone(),
                            source: TensorError::NotBlockMultiple {
                                op: "requantize",
                                ty: to,
                                n,
                                block_size: to.block_size(),
                            },
                        });
                    }
                }
                Ok(PlannedTensor {
                    name: info.name.clone(),
                    shape: info.shape.clone(),
                    from: info.dtype,
                    to,
                })
            })
            .collect()
    }

    /// Requantizes `file` by the plan: a writer holding its version, its metadata (with
    /// `general.file_type` set in place to [`RequantizePlan::output_file_type`] if the file
    /// has that key and the plan has a file type) and every tensor in file order, requantized
    /// or copied. Copied tensors stay borrowed from `file`; requantized ones are held in
    /// memory. Write it with [`GgufWriter::write_file`] or [`GgufWriter::to_bytes`].
    pub fn apply(&self, file: &GgufFile) -> Result<GgufWriter> {
        let steps = self.plan(file)?;
        let mut w = GgufWriter::new();
        w.set_version(file.version())?;
        *w.metadata_mut() = file.metadata().clone();
        if w.metadata().contains_key(GENERAL_FILE_TYPE) {
            if let Some(ftype) = self.output_file_type() {
                w.metadata_mut().set(GENERAL_FILE_TYPE, ftype);
            }
        }
        for step in &steps {
            let src = file.tensor(&step.name)?;
            let t = if step.is_copy() {
                src
            } else {
                requantize_tensor(&src, step.to).map_err(|source| ModelError::Tensor {
                    tensor: step.name.clone(),
                    source,
                })?
            };
            w.add_tensor(&step.name, t)?;
        }
        Ok(w)
    }
}

/// `src` dequantized row by row and quantized to `to` with the reference quantizer.
fn requantize_tensor(src: &Tensor, to: GgmlType) -> std::result::Result<Tensor, TensorError> {
    let mut out = Tensor::zeros(to, src.shape())?;
    let row_len = src.row_len();
    let out_row_bytes = to.row_size(row_len)?;
    let mut row = vec![0f32; row_len];
    if out_row_bytes == 0 {
        return Ok(out);
    }
    for (i, dst) in out.bytes_mut().chunks_exact_mut(out_row_bytes).enumerate() {
        src.dequantize_row_into(i, &mut row)?;
        formats::quantize_row(to, &row, dst)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn values(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// A file with a norm of 96 values, a Q4_1 matrix [96, 3] and an F16 matrix [64, 2].
    fn file() -> GgufFile {
        let mut w = GgufWriter::new();
        w.add_tensor("norm", Tensor::from_f32(&[96], &values(96)).unwrap())
            .unwrap();
        w.add_tensor(
            "a",
            Tensor::quantize(GgmlType::Q4_1, &[96, 3], &values(288)).unwrap(),
        )
        .unwrap();
        w.add_tensor(
            "b",
            Tensor::quantize(GgmlType::F16, &[64, 2], &values(128)).unwrap(),
        )
        .unwrap();
        GgufFile::from_bytes(Arc::new(w.to_bytes().unwrap())).unwrap()
    }

    fn types(steps: &[PlannedTensor]) -> Vec<(GgmlType, GgmlType)> {
        steps.iter().map(|s| (s.from, s.to)).collect()
    }

    #[test]
    fn default_overrides_and_vectors() {
        use GgmlType::*;
        let f = file();
        let p = RequantizePlan::new(Q8_0);
        assert_eq!(
            types(&p.plan(&f).unwrap()),
            [(F32, F32), (Q4_1, Q8_0), (F16, Q8_0)]
        );
        let p = p.keep("b").vectors_to(F16);
        assert_eq!(
            types(&p.plan(&f).unwrap()),
            [(F32, F16), (Q4_1, Q8_0), (F16, F16)]
        );
        // A later override of the same name replaces the earlier one.
        let p = p.with_type("b", Q4_0).with_type("norm", F32);
        assert_eq!(
            types(&p.plan(&f).unwrap()),
            [(F32, F32), (Q4_1, Q8_0), (F16, Q4_0)]
        );
        assert_eq!(p.overrides().len(), 2);
    }

    #[test]
    fn shape_with_trailing_ones_is_a_vector() {
        assert!(is_vector(&[96]));
        assert!(is_vector(&[96, 1, 1]));
        assert!(!is_vector(&[96, 2]));
        assert!(!is_vector(&[96, 1, 2]));
    }

    #[test]
    fn override_of_a_missing_tensor_is_an_error() {
        let err = RequantizePlan::new(GgmlType::Q4_0)
            .with_type("token_embd.weight", GgmlType::Q8_0)
            .plan(&file())
            .unwrap_err();
        assert!(
            matches!(&err, ModelError::TensorNotFound { name } if name == "token_embd.weight"),
            "{err}"
        );
    }

    #[test]
    fn row_not_a_whole_number_of_blocks_is_an_error() {
        // 96 is a multiple of 32, not of 256.
        let err = RequantizePlan::new(GgmlType::Q6_K)
            .plan(&file())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "tensor `a`: requantize: 96 elements is not a multiple of the Q6_K block size 256"
        );
        // Also when the tensor is a vector given a type explicitly.
        let err = RequantizePlan::new(GgmlType::Q8_0)
            .vectors_to(GgmlType::Q4_K)
            .keep("a")
            .keep("b")
            .apply(&file())
            .unwrap_err();
        assert!(
            matches!(&err, ModelError::Tensor { tensor, source: TensorError::NotBlockMultiple { n: 96, block_size: 256, .. } } if tensor == "norm"),
            "{err}"
        );
    }

    #[test]
    fn types_without_a_quantizer_are_errors() {
        for ty in [GgmlType::Q5_K, GgmlType::Q2_K, GgmlType::IQ4_NL] {
            let err = RequantizePlan::new(GgmlType::Q8_0)
                .with_type("b", ty)
                .plan(&file())
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "tensor `b`: requantize (ziglama-tensor has no reference quantizer for this \
                     type): not available for {ty}"
                )
            );
        }
        for ty in [GgmlType::Q8_1, GgmlType::Q8_K] {
            let err = RequantizePlan::new(ty).keep("a").plan(&file()).unwrap_err();
            assert!(
                matches!(&err, ModelError::Tensor { tensor, source: TensorError::NotAvailable { ty: t, .. } } if tensor == "b" && *t == ty),
                "{err}"
            );
        }
    }

    #[test]
    fn an_unchanged_type_needs_no_quantizer() {
        // Keeping (or "converting" to its own type) a type without a quantizer is a copy.
        let mut w = GgufWriter::new();
        w.add_tensor("q5k", Tensor::zeros(GgmlType::Q5_K, &[256, 2]).unwrap())
            .unwrap();
        let f = GgufFile::from_bytes(Arc::new(w.to_bytes().unwrap())).unwrap();
        let out = RequantizePlan::new(GgmlType::Q5_K).apply(&f).unwrap();
        let (_, t) = out.tensors().next().unwrap();
        assert!(t.is_borrowed());
        assert!(RequantizePlan::new(GgmlType::Q4_0)
            .keep("q5k")
            .plan(&f)
            .is_ok());
        assert!(RequantizePlan::new(GgmlType::Q4_0).plan(&f).is_ok());
        assert!(RequantizePlan::new(GgmlType::Q5_0).plan(&f).is_ok());
        assert!(RequantizePlan::new(GgmlType::Q2_K).plan(&f).is_err());
    }

    #[test]
    fn requantized_tensors_equal_quantizing_the_dequantized_values() {
        let f = file();
        let out = RequantizePlan::new(GgmlType::Q5_1)
            .vectors_to(GgmlType::F16)
            .apply(&f)
            .unwrap();
        for (name, t) in out.tensors() {
            let src = f.tensor(name).unwrap();
            let want = Tensor::quantize(t.dtype(), src.shape(), &src.to_f32().unwrap()).unwrap();
            assert_eq!(t.shape(), src.shape(), "{name}");
            assert_eq!(t.bytes(), want.bytes(), "{name}");
        }
    }

    #[test]
    fn file_type_is_updated_only_if_present() {
        let f = file();
        let out = RequantizePlan::new(GgmlType::Q8_0).apply(&f).unwrap();
        assert!(!out.metadata().contains_key(GENERAL_FILE_TYPE));

        let mut w = GgufWriter::from_file(&f).unwrap();
        w.metadata_mut().insert("general.name", "x").unwrap();
        w.metadata_mut().insert(GENERAL_FILE_TYPE, 3u32).unwrap();
        w.metadata_mut()
            .insert("general.quantization_version", 2u32)
            .unwrap();
        let f = GgufFile::from_bytes(Arc::new(w.to_bytes().unwrap())).unwrap();
        let out = RequantizePlan::new(GgmlType::Q8_0).apply(&f).unwrap();
        assert_eq!(out.metadata().get_u32(GENERAL_FILE_TYPE).unwrap(), 7);
        // In place: the key order is the input's.
        assert!(out.metadata().keys().eq(f.metadata().keys()));
        let out = RequantizePlan::new(GgmlType::Q8_0)
            .file_type(1024)
            .apply(&f)
            .unwrap();
        assert_eq!(out.metadata().get_u32(GENERAL_FILE_TYPE).unwrap(), 1024);
    }
}
