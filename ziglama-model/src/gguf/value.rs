//! GGUF metadata values: the thirteen value types of the specification, strings as raw
//! bytes, and typed arrays.

use std::fmt;

use crate::error::{ModelError, Result};

/// A GGUF metadata value type (`gguf_metadata_value_type` in the specification), with the
/// numeric id files store.
///
/// ```
/// use ziglama_model::gguf::ValueType;
/// assert_eq!(ValueType::from_id(8), Some(ValueType::String));
/// assert_eq!(ValueType::Uint64.id(), 10);
/// assert_eq!(ValueType::Float32.name(), "float32");
/// assert_eq!(ValueType::from_id(13), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// 8-bit unsigned integer.
    Uint8 = 0,
    /// 8-bit signed integer.
    Int8 = 1,
    /// 16-bit unsigned integer.
    Uint16 = 2,
    /// 16-bit signed integer.
    Int16 = 3,
    /// 32-bit unsigned integer.
    Uint32 = 4,
    /// 32-bit signed integer.
    Int32 = 5,
    /// 32-bit IEEE float.
    Float32 = 6,
    /// Boolean, one byte that is 0 or 1.
    Bool = 7,
    /// A UTF-8 string (in practice: bytes) prefixed by its u64 length.
    String = 8,
    /// An array: element type (u32), count (u64), then the elements.
    Array = 9,
    /// 64-bit unsigned integer.
    Uint64 = 10,
    /// 64-bit signed integer.
    Int64 = 11,
    /// 64-bit IEEE float.
    Float64 = 12,
}

impl ValueType {
    /// Every value type, in id order.
    pub const ALL: [ValueType; 13] = [
        ValueType::Uint8,
        ValueType::Int8,
        ValueType::Uint16,
        ValueType::Int16,
        ValueType::Uint32,
        ValueType::Int32,
        ValueType::Float32,
        ValueType::Bool,
        ValueType::String,
        ValueType::Array,
        ValueType::Uint64,
        ValueType::Int64,
        ValueType::Float64,
    ];

    /// The type with id `id`, if the specification defines one.
    pub fn from_id(id: u32) -> Option<ValueType> {
        Self::ALL.get(usize::try_from(id).ok()?).copied()
    }

    /// The id stored in files.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// The lowercase name (`uint8`, ..., `string`, `array`), as GGUF tools print it.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Uint8 => "uint8",
            ValueType::Int8 => "int8",
            ValueType::Uint16 => "uint16",
            ValueType::Int16 => "int16",
            ValueType::Uint32 => "uint32",
            ValueType::Int32 => "int32",
            ValueType::Float32 => "float32",
            ValueType::Bool => "bool",
            ValueType::String => "string",
            ValueType::Array => "array",
            ValueType::Uint64 => "uint64",
            ValueType::Int64 => "int64",
            ValueType::Float64 => "float64",
        }
    }

    /// The encoded size of one value, for the fixed-size types.
    pub fn fixed_size(self) -> Option<usize> {
        match self {
            ValueType::Uint8 | ValueType::Int8 | ValueType::Bool => Some(1),
            ValueType::Uint16 | ValueType::Int16 => Some(2),
            ValueType::Uint32 | ValueType::Int32 | ValueType::Float32 => Some(4),
            ValueType::Uint64 | ValueType::Int64 | ValueType::Float64 => Some(8),
            ValueType::String | ValueType::Array => None,
        }
    }

    /// The fewest bytes one value of this type takes in a file: its fixed size, 8 for a
    /// string (the length), 12 for an array (element type and count). Readers use it to
    /// bound counts by the bytes that remain before allocating.
    pub fn min_encoded_size(self) -> usize {
        match self {
            ValueType::String => 8,
            ValueType::Array => 12,
            t => t.fixed_size().unwrap_or(1),
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A GGUF string: bytes, usually but not necessarily UTF-8 (byte-level token texts need
/// not be), stored as found.
///
/// ```
/// use ziglama_model::gguf::GgufString;
/// let s = GgufString::from("llama");
/// assert_eq!(s.as_str().unwrap(), "llama");
/// let raw = GgufString::from(vec![0x66, 0xff]);
/// assert!(raw.as_str().is_err());
/// assert_eq!(raw.to_string(), "f\u{fffd}");
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GgufString(Vec<u8>);

impl GgufString {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The string as UTF-8, or an error if it is not valid UTF-8.
    pub fn as_str(&self) -> Result<&str> {
        utf8(&self.0, || "string".to_string())
    }

    /// The bytes, consuming the string.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

pub(crate) fn utf8(bytes: &[u8], field: impl FnOnce() -> String) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|e| ModelError::NotUtf8 {
        field: field(),
        valid_up_to: e.valid_up_to(),
    })
}

impl From<&str> for GgufString {
    fn from(s: &str) -> Self {
        GgufString(s.as_bytes().to_vec())
    }
}

impl From<String> for GgufString {
    fn from(s: String) -> Self {
        GgufString(s.into_bytes())
    }
}

impl From<Vec<u8>> for GgufString {
    fn from(b: Vec<u8>) -> Self {
        GgufString(b)
    }
}

impl From<&[u8]> for GgufString {
    fn from(b: &[u8]) -> Self {
        GgufString(b.to_vec())
    }
}

impl fmt::Display for GgufString {
    /// Lossy: invalid UTF-8 sequences show as U+FFFD.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for GgufString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

/// An array of GGUF strings kept in one buffer (a 262k-token vocabulary is two allocations,
/// not 262k).
///
/// ```
/// use ziglama_model::gguf::StringArray;
/// let a: StringArray = ["<s>", "hello", ""].into_iter().collect();
/// assert_eq!(a.len(), 3);
/// assert_eq!(a.get(1), Some(&b"hello"[..]));
/// assert_eq!(a.get_str(2).unwrap(), "");
/// assert_eq!(a.iter().map(|s| s.len()).sum::<usize>(), 8);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct StringArray {
    bytes: Vec<u8>,
    /// `ends[i]` is one past the last byte of string `i` in `bytes`.
    ends: Vec<usize>,
}

impl StringArray {
    /// An empty array.
    pub fn new() -> StringArray {
        StringArray::default()
    }

    /// An empty array with room for `n` strings of `bytes` bytes in total.
    pub fn with_capacity(n: usize, bytes: usize) -> StringArray {
        StringArray {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(n),
        }
    }

    /// Appends a string.
    pub fn push(&mut self, s: impl AsRef<[u8]>) {
        self.bytes.extend_from_slice(s.as_ref());
        self.ends.push(self.bytes.len());
    }

    /// Number of strings.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no strings.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of string `i`.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.bytes[start..end])
    }

    /// String `i` as UTF-8; an error if `i` is out of range or the string is not UTF-8.
    pub fn get_str(&self, i: usize) -> Result<&str> {
        let b = self.get(i).ok_or_else(|| ModelError::IndexOutOfRange {
            what: "string array".to_string(),
            index: i,
            len: self.len(),
        })?;
        utf8(b, || format!("string {i} of the array"))
    }

    /// The strings, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        (0..self.len()).map(move |i| self.get(i).unwrap_or_default())
    }

    /// Total bytes of all strings.
    pub fn total_bytes(&self) -> usize {
        self.bytes.len()
    }
}

impl<S: AsRef<[u8]>> FromIterator<S> for StringArray {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut a = StringArray::new();
        for s in iter {
            a.push(s);
        }
        a
    }
}

impl fmt::Debug for StringArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

/// A typed GGUF array. Every element has the same type; arrays of arrays are allowed by the
/// specification (llama.cpp itself rejects them, so do not write them for llama.cpp).
///
/// ```
/// use ziglama_model::gguf::{MetadataArray, ValueType};
/// let a = MetadataArray::Int32(vec![1, 2, 3]);
/// assert_eq!((a.element_type(), a.len()), (ValueType::Int32, 3));
/// let nested = MetadataArray::Array(vec![a.clone(), MetadataArray::Float32(vec![])]);
/// assert_eq!(nested.element_type(), ValueType::Array);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)] // one variant per element type, named as `ValueType`
pub enum MetadataArray {
    Uint8(Vec<u8>),
    Int8(Vec<i8>),
    Uint16(Vec<u16>),
    Int16(Vec<i16>),
    Uint32(Vec<u32>),
    Int32(Vec<i32>),
    Float32(Vec<f32>),
    Bool(Vec<bool>),
    String(StringArray),
    Array(Vec<MetadataArray>),
    Uint64(Vec<u64>),
    Int64(Vec<i64>),
    Float64(Vec<f64>),
}

impl MetadataArray {
    /// The element type.
    pub fn element_type(&self) -> ValueType {
        match self {
            MetadataArray::Uint8(_) => ValueType::Uint8,
            MetadataArray::Int8(_) => ValueType::Int8,
            MetadataArray::Uint16(_) => ValueType::Uint16,
            MetadataArray::Int16(_) => ValueType::Int16,
            MetadataArray::Uint32(_) => ValueType::Uint32,
            MetadataArray::Int32(_) => ValueType::Int32,
            MetadataArray::Float32(_) => ValueType::Float32,
            MetadataArray::Bool(_) => ValueType::Bool,
            MetadataArray::String(_) => ValueType::String,
            MetadataArray::Array(_) => ValueType::Array,
            MetadataArray::Uint64(_) => ValueType::Uint64,
            MetadataArray::Int64(_) => ValueType::Int64,
            MetadataArray::Float64(_) => ValueType::Float64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            MetadataArray::Uint8(v) => v.len(),
            MetadataArray::Int8(v) => v.len(),
            MetadataArray::Uint16(v) => v.len(),
            MetadataArray::Int16(v) => v.len(),
            MetadataArray::Uint32(v) => v.len(),
            MetadataArray::Int32(v) => v.len(),
            MetadataArray::Float32(v) => v.len(),
            MetadataArray::Bool(v) => v.len(),
            MetadataArray::String(v) => v.len(),
            MetadataArray::Array(v) => v.len(),
            MetadataArray::Uint64(v) => v.len(),
            MetadataArray::Int64(v) => v.len(),
            MetadataArray::Float64(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as a standalone value (strings and nested arrays are cloned).
    ///
    /// ```
    /// use ziglama_model::gguf::{MetadataArray, MetadataValue};
    /// let a = MetadataArray::Uint16(vec![7, 9]);
    /// assert_eq!(a.get(1), Some(MetadataValue::Uint16(9)));
    /// assert_eq!(a.get(2), None);
    /// ```
    pub fn get(&self, i: usize) -> Option<MetadataValue> {
        Some(match self {
            MetadataArray::Uint8(v) => MetadataValue::Uint8(*v.get(i)?),
            MetadataArray::Int8(v) => MetadataValue::Int8(*v.get(i)?),
            MetadataArray::Uint16(v) => MetadataValue::Uint16(*v.get(i)?),
            MetadataArray::Int16(v) => MetadataValue::Int16(*v.get(i)?),
            MetadataArray::Uint32(v) => MetadataValue::Uint32(*v.get(i)?),
            MetadataArray::Int32(v) => MetadataValue::Int32(*v.get(i)?),
            MetadataArray::Float32(v) => MetadataValue::Float32(*v.get(i)?),
            MetadataArray::Bool(v) => MetadataValue::Bool(*v.get(i)?),
            MetadataArray::String(v) => MetadataValue::String(v.get(i)?.into()),
            MetadataArray::Array(v) => MetadataValue::Array(v.get(i)?.clone()),
            MetadataArray::Uint64(v) => MetadataValue::Uint64(*v.get(i)?),
            MetadataArray::Int64(v) => MetadataValue::Int64(*v.get(i)?),
            MetadataArray::Float64(v) => MetadataValue::Float64(*v.get(i)?),
        })
    }

    /// A description of the type such as `array[string; 49152]` or
    /// `array[array[int32; 2]; 3]` (nested arrays show their first element's type).
    pub fn type_description(&self) -> String {
        let inner = match self {
            MetadataArray::Array(v) => v
                .first()
                .map_or_else(|| "array".to_string(), |a| a.type_description()),
            a => a.element_type().name().to_string(),
        };
        format!("array[{inner}; {}]", self.len())
    }
}

/// One GGUF metadata value.
///
/// ```
/// use ziglama_model::gguf::{MetadataValue, ValueType};
/// let v = MetadataValue::from("llama");
/// assert_eq!(v.value_type(), ValueType::String);
/// assert_eq!(MetadataValue::Int16(-3).as_integer(), Some(-3));
/// assert_eq!(MetadataValue::Float32(1.5).to_string(), "1.5");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)] // one variant per type, named as `ValueType`
pub enum MetadataValue {
    Uint8(u8),
    Int8(i8),
    Uint16(u16),
    Int16(i16),
    Uint32(u32),
    Int32(i32),
    Float32(f32),
    Bool(bool),
    String(GgufString),
    Array(MetadataArray),
    Uint64(u64),
    Int64(i64),
    Float64(f64),
}

impl MetadataValue {
    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            MetadataValue::Uint8(_) => ValueType::Uint8,
            MetadataValue::Int8(_) => ValueType::Int8,
            MetadataValue::Uint16(_) => ValueType::Uint16,
            MetadataValue::Int16(_) => ValueType::Int16,
            MetadataValue::Uint32(_) => ValueType::Uint32,
            MetadataValue::Int32(_) => ValueType::Int32,
            MetadataValue::Float32(_) => ValueType::Float32,
            MetadataValue::Bool(_) => ValueType::Bool,
            MetadataValue::String(_) => ValueType::String,
            MetadataValue::Array(_) => ValueType::Array,
            MetadataValue::Uint64(_) => ValueType::Uint64,
            MetadataValue::Int64(_) => ValueType::Int64,
            MetadataValue::Float64(_) => ValueType::Float64,
        }
    }

    /// The value of any integer type, widened; `None` for other types.
    pub fn as_integer(&self) -> Option<i128> {
        Some(match *self {
            MetadataValue::Uint8(v) => v.into(),
            MetadataValue::Int8(v) => v.into(),
            MetadataValue::Uint16(v) => v.into(),
            MetadataValue::Int16(v) => v.into(),
            MetadataValue::Uint32(v) => v.into(),
            MetadataValue::Int32(v) => v.into(),
            MetadataValue::Uint64(v) => v.into(),
            MetadataValue::Int64(v) => v.into(),
            _ => return None,
        })
    }

    /// The type as GGUF tools print it: the type name, or for arrays
    /// `array[<element type>; <count>]`.
    pub fn type_description(&self) -> String {
        match self {
            MetadataValue::Array(a) => a.type_description(),
            v => v.value_type().name().to_string(),
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $v:ident),* $(,)?) => {$(
        impl From<$t> for MetadataValue {
            fn from(x: $t) -> Self {
                MetadataValue::$v(x.into())
            }
        }
    )*};
}

value_from!(
    u8 => Uint8, i8 => Int8, u16 => Uint16, i16 => Int16, u32 => Uint32, i32 => Int32,
    f32 => Float32, bool => Bool, u64 => Uint64, i64 => Int64, f64 => Float64,
    &str => String, String => String, GgufString => String, MetadataArray => Array,
);

impl fmt::Display for MetadataValue {
    /// Strings are printed as they are (lossily); arrays as `[a, b, ...]` in full.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataValue::Uint8(v) => write!(f, "{v}"),
            MetadataValue::Int8(v) => write!(f, "{v}"),
            MetadataValue::Uint16(v) => write!(f, "{v}"),
            MetadataValue::Int16(v) => write!(f, "{v}"),
            MetadataValue::Uint32(v) => write!(f, "{v}"),
            MetadataValue::Int32(v) => write!(f, "{v}"),
            MetadataValue::Float32(v) => write!(f, "{v}"),
            MetadataValue::Bool(v) => write!(f, "{v}"),
            MetadataValue::String(v) => write!(f, "{v}"),
            MetadataValue::Uint64(v) => write!(f, "{v}"),
            MetadataValue::Int64(v) => write!(f, "{v}"),
            MetadataValue::Float64(v) => write!(f, "{v}"),
            MetadataValue::Array(a) => {
                f.write_str("[")?;
                for i in 0..a.len() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match a.get(i) {
                        Some(MetadataValue::String(s)) => write!(f, "{s:?}")?,
                        Some(v) => write!(f, "{v}")?,
                        None => {}
                    }
                }
                f.write_str("]")
            }
        }
    }
}
