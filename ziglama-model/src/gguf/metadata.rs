//! The metadata of a GGUF file: key-value pairs in file order, with typed accessors.

use std::collections::HashMap;

use super::value::{utf8, GgufString, MetadataArray, MetadataValue, StringArray};
use crate::error::{ModelError, Result};

/// The key-value metadata of a GGUF file, in file order, looked up by key in O(1).
///
/// Typed accessors say which key and which types when they fail. Integer accessors accept a
/// value of any integer type that fits the requested one (files disagree on whether, say,
/// `llama.context_length` is `uint32` or `int32`; llama.cpp's loaders accept both).
///
/// ```
/// use ziglama_model::gguf::{Metadata, MetadataValue};
/// let mut m = Metadata::new();
/// m.insert("llama.block_count", 30u32)?;
/// m.insert("llama.rope.freq_base", 10000.0f32)?;
/// m.insert("general.architecture", "llama")?;
/// m.insert("llama.vocab_size", -1i32)?;
/// assert_eq!(m.get_u32("llama.block_count")?, 30);
/// assert_eq!(m.get_u64("llama.block_count")?, 30);
/// assert_eq!(m.get_f32("llama.rope.freq_base")?, 10000.0);
/// assert_eq!(m.get_str("general.architecture")?, "llama");
/// assert_eq!(m.get_opt::<u32>("llama.expert_count")?, None);
/// let err = m.get_u32("llama.vocab_size").unwrap_err();
/// assert_eq!(err.to_string(), "metadata key `llama.vocab_size`: value -1 does not fit in uint32");
/// let err = m.get_str("llama.block_count").unwrap_err();
/// assert_eq!(err.to_string(), "metadata key `llama.block_count`: expected string, found uint32");
/// assert_eq!(m.keys().collect::<Vec<_>>()[2], "general.architecture");
/// # Ok::<(), ziglama_model::ModelError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    entries: Vec<(String, MetadataValue)>,
    index: HashMap<String, usize>,
}

impl Metadata {
    /// No metadata.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// The position of `key` in file order.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// Key-value pairs in file order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &MetadataValue)> + '_ {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Keys in file order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// Adds `key` at the end; an error if it is already present.
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        value: impl Into<MetadataValue>,
    ) -> Result<()> {
        let key = key.into();
        if self.index.contains_key(&key) {
            return Err(ModelError::InvalidWrite {
                field: format!("metadata key `{key}`"),
                expected: "a key not yet present".to_string(),
                found: "a duplicate key".to_string(),
            });
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push((key, value.into()));
        Ok(())
    }

    /// Sets `key`, replacing its value in place if present (keeping its position) or adding
    /// it at the end; returns the old value.
    pub fn set(
        &mut self,
        key: impl Into<String>,
        value: impl Into<MetadataValue>,
    ) -> Option<MetadataValue> {
        let key = key.into();
        let value = value.into();
        match self.index.get(&key) {
            Some(&i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Removes `key`, returning its value; later keys move up one position.
    pub fn remove(&mut self, key: &str) -> Option<MetadataValue> {
        let i = self.index.remove(key)?;
        let (_, v) = self.entries.remove(i);
        for (k, _) in &self.entries[i..] {
            if let Some(p) = self.index.get_mut(k) {
                *p -= 1;
            }
        }
        Some(v)
    }

    /// The value of `key` converted to `T`; an error naming the key if it is missing or of
    /// another type.
    pub fn get_as<'a, T: FromMetadataValue<'a>>(&'a self, key: &str) -> Result<T> {
        let v = self.get(key).ok_or_else(|| ModelError::MissingKey {
            key: key.to_string(),
        })?;
        T::from_metadata_value(key, v)
    }

    /// Like [`Metadata::get_as`], but `Ok(None)` if the key is missing (still an error if
    /// present with another type).
    pub fn get_opt<'a, T: FromMetadataValue<'a>>(&'a self, key: &str) -> Result<Option<T>> {
        self.get(key)
            .map(|v| T::from_metadata_value(key, v))
            .transpose()
    }

    /// `key` as `u8` (any integer type that fits).
    pub fn get_u8(&self, key: &str) -> Result<u8> {
        self.get_as(key)
    }
    /// `key` as `i8` (any integer type that fits).
    pub fn get_i8(&self, key: &str) -> Result<i8> {
        self.get_as(key)
    }
    /// `key` as `u16` (any integer type that fits).
    pub fn get_u16(&self, key: &str) -> Result<u16> {
        self.get_as(key)
    }
    /// `key` as `i16` (any integer type that fits).
    pub fn get_i16(&self, key: &str) -> Result<i16> {
        self.get_as(key)
    }
    /// `key` as `u32` (any integer type that fits).
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        self.get_as(key)
    }
    /// `key` as `i32` (any integer type that fits).
    pub fn get_i32(&self, key: &str) -> Result<i32> {
        self.get_as(key)
    }
    /// `key` as `u64` (any integer type that fits).
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.get_as(key)
    }
    /// `key` as `i64` (any integer type that fits).
    pub fn get_i64(&self, key: &str) -> Result<i64> {
        self.get_as(key)
    }
    /// `key` as `usize` (any integer type that fits).
    pub fn get_usize(&self, key: &str) -> Result<usize> {
        self.get_as(key)
    }
    /// `key` as `f32` (a `float32` value only).
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        self.get_as(key)
    }
    /// `key` as `f64` (a `float64` or, exactly widened, a `float32` value).
    pub fn get_f64(&self, key: &str) -> Result<f64> {
        self.get_as(key)
    }
    /// `key` as `bool`.
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        self.get_as(key)
    }
    /// `key` as a UTF-8 string; an error if it is not a string or not UTF-8.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        self.get_as(key)
    }
    /// `key` as a string of raw bytes.
    pub fn get_string(&self, key: &str) -> Result<&GgufString> {
        self.get_as(key)
    }
    /// `key` as an array of any element type.
    pub fn get_array(&self, key: &str) -> Result<&MetadataArray> {
        self.get_as(key)
    }
    /// `key` as an array of strings.
    pub fn get_str_array(&self, key: &str) -> Result<&StringArray> {
        self.get_as(key)
    }
    /// `key` as an array of `float32`.
    pub fn get_f32_array(&self, key: &str) -> Result<&[f32]> {
        self.get_as(key)
    }
    /// `key` as an array of `int32`.
    pub fn get_i32_array(&self, key: &str) -> Result<&[i32]> {
        self.get_as(key)
    }
    /// `key` as an array of `uint32`.
    pub fn get_u32_array(&self, key: &str) -> Result<&[u32]> {
        self.get_as(key)
    }
    /// `key` as an array of any integer type, each element converted to `i64`.
    ///
    /// ```
    /// use ziglama_model::gguf::{Metadata, MetadataArray};
    /// let mut m = Metadata::new();
    /// m.insert("tokenizer.ggml.token_type", MetadataArray::Uint8(vec![1, 3]))?;
    /// assert_eq!(m.get_int_array("tokenizer.ggml.token_type")?, vec![1, 3]);
    /// # Ok::<(), ziglama_model::ModelError>(())
    /// ```
    pub fn get_int_array(&self, key: &str) -> Result<Vec<i64>> {
        let a = self.get_array(key)?;
        let out_of_range = |v: u64| ModelError::OutOfRange {
            key: key.to_string(),
            value: v.into(),
            target: "int64",
        };
        Ok(match a {
            MetadataArray::Uint8(v) => v.iter().map(|&x| x.into()).collect(),
            MetadataArray::Int8(v) => v.iter().map(|&x| x.into()).collect(),
            MetadataArray::Uint16(v) => v.iter().map(|&x| x.into()).collect(),
            MetadataArray::Int16(v) => v.iter().map(|&x| x.into()).collect(),
            MetadataArray::Uint32(v) => v.iter().map(|&x| x.into()).collect(),
            MetadataArray::Int32(v) => v.iter().map(|&x| x.into()).collect(),
            MetadataArray::Int64(v) => v.clone(),
            MetadataArray::Uint64(v) => v
                .iter()
                .map(|&x| i64::try_from(x).map_err(|_| out_of_range(x)))
                .collect::<Result<_>>()?,
            other => {
                return Err(ModelError::WrongType {
                    key: key.to_string(),
                    expected: "array of integers",
                    found: other.type_description(),
                })
            }
        })
    }
}

/// Conversion from a metadata value, used by [`Metadata::get_as`] and the typed accessors.
pub trait FromMetadataValue<'a>: Sized {
    /// `value` (the value of `key`) as `Self`, or an error naming `key`.
    fn from_metadata_value(key: &str, value: &'a MetadataValue) -> Result<Self>;
}

fn wrong_type(key: &str, expected: &'static str, found: &MetadataValue) -> ModelError {
    ModelError::WrongType {
        key: key.to_string(),
        expected,
        found: found.type_description(),
    }
}

macro_rules! from_integer {
    ($($t:ty => $name:literal),* $(,)?) => {$(
        impl FromMetadataValue<'_> for $t {
            fn from_metadata_value(key: &str, value: &MetadataValue) -> Result<Self> {
                let v = value
                    .as_integer()
                    .ok_or_else(|| wrong_type(key, "an integer", value))?;
                <$t>::try_from(v).map_err(|_| ModelError::OutOfRange {
                    key: key.to_string(),
                    value: v,
                    target: $name,
                })
            }
        }
    )*};
}

from_integer!(
    u8 => "uint8", i8 => "int8", u16 => "uint16", i16 => "int16", u32 => "uint32",
    i32 => "int32", u64 => "uint64", i64 => "int64", usize => "usize",
);

impl FromMetadataValue<'_> for f32 {
    fn from_metadata_value(key: &str, value: &MetadataValue) -> Result<Self> {
        match value {
            MetadataValue::Float32(v) => Ok(*v),
            v => Err(wrong_type(key, "float32", v)),
        }
    }
}

impl FromMetadataValue<'_> for f64 {
    fn from_metadata_value(key: &str, value: &MetadataValue) -> Result<Self> {
        match value {
            MetadataValue::Float64(v) => Ok(*v),
            MetadataValue::Float32(v) => Ok((*v).into()),
            v => Err(wrong_type(key, "float64 or float32", v)),
        }
    }
}

impl FromMetadataValue<'_> for bool {
    fn from_metadata_value(key: &str, value: &MetadataValue) -> Result<Self> {
        match value {
            MetadataValue::Bool(v) => Ok(*v),
            v => Err(wrong_type(key, "bool", v)),
        }
    }
}

impl<'a> FromMetadataValue<'a> for &'a GgufString {
    fn from_metadata_value(key: &str, value: &'a MetadataValue) -> Result<Self> {
        match value {
            MetadataValue::String(s) => Ok(s),
            v => Err(wrong_type(key, "string", v)),
        }
    }
}

impl<'a> FromMetadataValue<'a> for &'a str {
    fn from_metadata_value(key: &str, value: &'a MetadataValue) -> Result<Self> {
        let s = <&GgufString>::from_metadata_value(key, value)?;
        utf8(s.as_bytes(), || format!("metadata key `{key}`"))
    }
}

impl<'a> FromMetadataValue<'a> for &'a MetadataArray {
    fn from_metadata_value(key: &str, value: &'a MetadataValue) -> Result<Self> {
        match value {
            MetadataValue::Array(a) => Ok(a),
            v => Err(wrong_type(key, "array", v)),
        }
    }
}

macro_rules! from_array {
    ($($t:ty => $variant:ident, $name:literal);* $(;)?) => {$(
        impl<'a> FromMetadataValue<'a> for &'a $t {
            fn from_metadata_value(key: &str, value: &'a MetadataValue) -> Result<Self> {
                match value {
                    MetadataValue::Array(MetadataArray::$variant(a)) => Ok(a),
                    v => Err(wrong_type(key, $name, v)),
                }
            }
        }
    )*};
}

from_array!(
    StringArray => String, "array of string";
    [f32] => Float32, "array of float32";
    [i32] => Int32, "array of int32";
    [u32] => Uint32, "array of uint32";
    [u8] => Uint8, "array of uint8";
    [i64] => Int64, "array of int64";
    [u64] => Uint64, "array of uint64";
    [f64] => Float64, "array of float64";
    [bool] => Bool, "array of bool";
);
