//! The GGUF format, case by case, on files built byte by byte from the specification (not
//! with our writer, so reader and writer cannot share a misreading): every value type,
//! nested arrays, versions 2 and 3, alignment, every error; then the writer against the same
//! bytes, and a property test of write-then-read.

use std::sync::Arc;

use proptest::prelude::*;
use ziglama_model::gguf::{
    GgufFile, GgufString, GgufWriter, Metadata, MetadataArray, MetadataValue, StringArray,
    ValueType,
};
use ziglama_model::tensor::{GgmlType, TensorError};
use ziglama_model::ModelError;

/// A GGUF file under construction, field by field.
#[derive(Clone, Default)]
struct Bytes(Vec<u8>);

impl Bytes {
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> Bytes {
        let mut b = Bytes(b"GGUF".to_vec());
        b.u32(version).u64(n_tensors).u64(n_kv);
        b
    }
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }
    fn str(&mut self, s: impl AsRef<[u8]>) -> &mut Self {
        let s = s.as_ref();
        self.u64(s.len() as u64).raw(s)
    }
    /// A key and its type id.
    fn key(&mut self, k: &str, ty: u32) -> &mut Self {
        self.str(k).u32(ty)
    }
    fn tensor_info(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.str(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(ty).u64(offset)
    }
    fn pad(&mut self, alignment: usize) -> &mut Self {
        let n = self.0.len().next_multiple_of(alignment);
        self.0.resize(n, 0);
        self
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn parse(&self) -> Result<GgufFile, ModelError> {
        GgufFile::from_bytes(Arc::new(self.0.clone()))
    }
}

fn one_kv(ty: u32, value: &[u8]) -> Bytes {
    let mut b = Bytes::header(3, 0, 1);
    b.key("k", ty).raw(value);
    b
}

#[test]
fn every_scalar_value_type() {
    let cases: Vec<(u32, Vec<u8>, MetadataValue)> = vec![
        (0, vec![0xfe], MetadataValue::Uint8(254)),
        (1, vec![0xfe], MetadataValue::Int8(-2)),
        (
            2,
            0xbeefu16.to_le_bytes().to_vec(),
            MetadataValue::Uint16(0xbeef),
        ),
        (
            3,
            (-300i16).to_le_bytes().to_vec(),
            MetadataValue::Int16(-300),
        ),
        (
            4,
            0xdead_beefu32.to_le_bytes().to_vec(),
            MetadataValue::Uint32(0xdead_beef),
        ),
        (
            5,
            (-70000i32).to_le_bytes().to_vec(),
            MetadataValue::Int32(-70000),
        ),
        (
            6,
            1e-5f32.to_le_bytes().to_vec(),
            MetadataValue::Float32(1e-5),
        ),
        (7, vec![1], MetadataValue::Bool(true)),
        (7, vec![0], MetadataValue::Bool(false)),
        (
            8,
            [&3u64.to_le_bytes()[..], b"abc"].concat(),
            MetadataValue::from("abc"),
        ),
        (
            10,
            u64::MAX.to_le_bytes().to_vec(),
            MetadataValue::Uint64(u64::MAX),
        ),
        (
            11,
            i64::MIN.to_le_bytes().to_vec(),
            MetadataValue::Int64(i64::MIN),
        ),
        (
            12,
            0.1f64.to_le_bytes().to_vec(),
            MetadataValue::Float64(0.1),
        ),
    ];
    for (ty, bytes, expected) in cases {
        let f = one_kv(ty, &bytes).parse().unwrap();
        let v = f.metadata().get("k").unwrap();
        assert_eq!(v, &expected, "type {ty}");
        assert_eq!(v.value_type().id(), ty);
        // The writer encodes it to exactly the same bytes.
        let mut w = GgufWriter::new();
        w.metadata_mut().insert("k", expected.clone()).unwrap();
        assert_eq!(w.to_bytes().unwrap(), one_kv(ty, &bytes).0, "type {ty}");
    }
}

#[test]
fn arrays_of_every_type_including_strings_and_empty() {
    let mut b = Bytes::header(3, 0, 6);
    b.key("u8s", 9).u32(0).u64(3).raw(&[1, 2, 255]);
    b.key("f32s", 9)
        .u32(6)
        .u64(2)
        .raw(&1.5f32.to_le_bytes())
        .raw(&(-2f32).to_le_bytes());
    b.key("bools", 9).u32(7).u64(3).raw(&[1, 0, 1]);
    b.key("strs", 9)
        .u32(8)
        .u64(3)
        .str("<s>")
        .str("")
        .str([0xe2, 0x96]); // not UTF-8
    b.key("empty_i64", 9).u32(11).u64(0);
    b.key("u64s", 9).u32(10).u64(1).u64(7);
    let f = b.parse().unwrap();
    let m = f.metadata();
    assert_eq!(
        m.get_array("u8s").unwrap(),
        &MetadataArray::Uint8(vec![1, 2, 255])
    );
    assert_eq!(m.get_f32_array("f32s").unwrap(), &[1.5, -2.0]);
    assert_eq!(
        m.get_array("bools").unwrap(),
        &MetadataArray::Bool(vec![true, false, true])
    );
    let strs = m.get_str_array("strs").unwrap();
    assert_eq!(strs.len(), 3);
    assert_eq!(strs.get(0), Some(&b"<s>"[..]));
    assert_eq!(strs.get(1), Some(&b""[..]));
    assert_eq!(strs.get(2), Some(&[0xe2, 0x96][..]));
    assert!(matches!(
        strs.get_str(2),
        Err(ModelError::NotUtf8 { valid_up_to: 0, .. })
    ));
    let empty = m.get_array("empty_i64").unwrap();
    assert_eq!((empty.element_type(), empty.len()), (ValueType::Int64, 0));
    assert_eq!(m.get_int_array("u64s").unwrap(), vec![7]);
    // Keys keep file order.
    let keys: Vec<_> = m.keys().collect();
    assert_eq!(keys, ["u8s", "f32s", "bools", "strs", "empty_i64", "u64s"]);
    // The writer reproduces the bytes, the empty array's element type included.
    let mut w = GgufWriter::new();
    for (k, v) in m.iter() {
        w.metadata_mut().insert(k, v.clone()).unwrap();
    }
    assert_eq!(w.to_bytes().unwrap(), b.0);
}

#[test]
fn nested_arrays() {
    let mut b = Bytes::header(3, 0, 2);
    // [[1, 2], [], [3]] of int32
    b.key("nested", 9).u32(9).u64(3);
    b.u32(5).u64(2).u32(1).u32(2);
    b.u32(5).u64(0);
    b.u32(5).u64(1).u32(3);
    // [[["a"]]] : array of array of string
    b.key("deep", 9)
        .u32(9)
        .u64(1)
        .u32(9)
        .u64(1)
        .u32(8)
        .u64(1)
        .str("a");
    let f = b.parse().unwrap();
    let expected = MetadataArray::Array(vec![
        MetadataArray::Int32(vec![1, 2]),
        MetadataArray::Int32(vec![]),
        MetadataArray::Int32(vec![3]),
    ]);
    assert_eq!(f.metadata().get_array("nested").unwrap(), &expected);
    assert_eq!(expected.type_description(), "array[array[int32; 2]; 3]");
    let deep = f.metadata().get_array("deep").unwrap();
    let MetadataArray::Array(level1) = deep else {
        panic!("{deep:?}")
    };
    let MetadataArray::Array(level2) = &level1[0] else {
        panic!("{level1:?}")
    };
    assert_eq!(
        level2[0],
        MetadataArray::String(["a"].into_iter().collect())
    );
    let mut w = GgufWriter::new();
    w.metadata_mut().insert("nested", expected).unwrap();
    w.metadata_mut().insert("deep", deep.clone()).unwrap();
    assert_eq!(w.to_bytes().unwrap(), b.0);
}

#[test]
fn nesting_deeper_than_the_cap_is_an_error() {
    let depth = ziglama_model::gguf::MAX_ARRAY_DEPTH;
    let mut b = Bytes::header(3, 0, 1);
    b.key("k", 9);
    for _ in 0..depth {
        b.u32(9).u64(1);
    }
    b.u32(0).u64(0);
    let e = b.parse().unwrap_err();
    assert!(
        matches!(e, ModelError::NestingTooDeep { max, .. } if max == depth),
        "{e}"
    );
    assert!(e.to_string().contains("`k`"), "{e}");
    // One level less is fine.
    let mut b = Bytes::header(3, 0, 1);
    b.key("k", 9);
    for _ in 0..depth - 1 {
        b.u32(9).u64(1);
    }
    b.u32(0).u64(0);
    b.parse().unwrap();
}

/// A file with metadata `general.alignment` (if given) and two F32 tensors.
fn two_tensors(version: u32, alignment: Option<u32>) -> Bytes {
    // An invalid alignment (0, not a power of two) still lays the file out as if it were 32.
    let a = match alignment {
        Some(al) if al.is_power_of_two() => al as usize,
        _ => 32,
    };
    let mut b = Bytes::header(version, 2, alignment.is_some() as u64 + 1);
    b.key("general.architecture", 8).str("llama");
    if let Some(al) = alignment {
        b.key("general.alignment", 4).u32(al);
    }
    b.tensor_info("a", &[3], 0, 0);
    b.tensor_info("b", &[2, 2], 0, 12u64.next_multiple_of(a as u64));
    b.pad(a);
    for x in [1f32, 2.0, 3.0] {
        b.raw(&x.to_le_bytes());
    }
    b.pad(a);
    for x in [4f32, 5.0, 6.0, 7.0] {
        b.raw(&x.to_le_bytes());
    }
    b.pad(a);
    b
}

#[test]
fn versions_2_and_3_read_the_same() {
    let v2 = two_tensors(2, None).parse().unwrap();
    let v3 = two_tensors(3, None).parse().unwrap();
    assert_eq!((v2.version(), v3.version()), (2, 3));
    assert_eq!(v2.metadata(), v3.metadata());
    assert_eq!(v2.tensor_infos(), v3.tensor_infos());
    assert_eq!(v2.data_offset(), v3.data_offset());
    // A rewrite keeps the version; set_version changes only the version field.
    let mut w = GgufWriter::from_file(&v2).unwrap();
    assert_eq!(w.to_bytes().unwrap(), two_tensors(2, None).0);
    w.set_version(3).unwrap();
    assert_eq!(w.to_bytes().unwrap(), two_tensors(3, None).0);
    assert!(w.set_version(1).is_err());
}

#[test]
fn unsupported_versions_are_errors_naming_the_version() {
    for (version, hint) in [(1, "v1"), (0, ""), (4, ""), (0x0300_0000, "byte-swapped")] {
        let e = Bytes::header(version, 0, 0).parse().unwrap_err();
        assert!(matches!(e, ModelError::UnsupportedVersion { version: v } if v == version));
        let msg = e.to_string();
        assert!(msg.contains(&format!("version {version} ")), "{msg}");
        assert!(msg.contains(hint), "{msg}");
    }
}

#[test]
fn a_file_without_tensors_is_not_padded() {
    // As gguf-py writes vocabulary-only files; the data section is empty and starts right
    // after the metadata.
    let b = one_kv(0, &[7]);
    let f = b.parse().unwrap();
    assert_eq!(f.data_offset(), b.len());
    assert_eq!(GgufWriter::from_file(&f).unwrap().to_bytes().unwrap(), b.0);
    // Padded (as llama.cpp's writer does) reads the same.
    let padded = b.clone().pad(32).parse().unwrap();
    assert_eq!(padded.metadata(), f.metadata());
}

#[test]
fn tensors_and_default_alignment() {
    let f = two_tensors(3, None).parse().unwrap();
    assert_eq!(f.alignment(), 32);
    assert_eq!(f.data_offset() % 32, 0);
    let a = f.tensor_info("a").unwrap();
    assert_eq!(
        (a.dtype, a.shape.as_slice(), a.offset, a.n_bytes),
        (GgmlType::F32, &[3][..], 0, 12)
    );
    let b = f.tensor("b").unwrap();
    assert_eq!(b.shape(), &[2, 2]);
    assert!(b.is_borrowed());
    assert_eq!(b.to_f32().unwrap(), vec![4.0, 5.0, 6.0, 7.0]);
    assert_eq!(
        f.tensor_data("a").unwrap(),
        two_tensors(3, None).0[f.data_offset()..][..12].to_vec()
    );
    assert!(matches!(
        f.tensor("c"),
        Err(ModelError::TensorNotFound { .. })
    ));
    // Our writer lays the same tensors out identically.
    assert_eq!(
        GgufWriter::from_file(&f).unwrap().to_bytes().unwrap(),
        two_tensors(3, None).0
    );
}

#[test]
fn general_alignment_is_honoured() {
    for al in [1u32, 8, 64, 4096] {
        let bytes = two_tensors(3, Some(al));
        let f = bytes.parse().unwrap();
        assert_eq!(f.alignment(), al as usize);
        assert_eq!(f.data_offset() % al as usize, 0);
        assert_eq!(
            f.tensor_info("b").unwrap().offset,
            12u64.next_multiple_of(al as u64)
        );
        assert_eq!(
            f.tensor("b").unwrap().to_f32().unwrap(),
            vec![4.0, 5.0, 6.0, 7.0]
        );
        let out = GgufWriter::from_file(&f).unwrap().to_bytes().unwrap();
        assert_eq!(out, bytes.0, "alignment {al}");
    }
}

#[test]
fn bad_alignment_is_an_error() {
    for al in [0u32, 48, 3] {
        let e = two_tensors(3, Some(al)).parse().unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("general.alignment") && msg.contains("power of two"),
            "{msg}"
        );
        assert!(msg.contains("byte offset 69"), "{msg}"); // where the key starts
    }
    let mut b = Bytes::header(3, 0, 1);
    b.key("general.alignment", 5).u32(32);
    let msg = b.parse().unwrap_err().to_string();
    assert!(msg.contains("uint32") && msg.contains("int32"), "{msg}");
    // The writer refuses too.
    let mut w = GgufWriter::new();
    w.metadata_mut().insert("general.alignment", 48u32).unwrap();
    assert!(matches!(w.to_bytes(), Err(ModelError::InvalidWrite { .. })));
}

#[test]
fn misaligned_tensor_offset_is_an_error() {
    let mut b = Bytes::header(3, 1, 0);
    b.tensor_info("t", &[4], 0, 16).pad(32).raw(&[0; 64]);
    let e = b.parse().unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("tensor `t` data offset") && msg.contains("multiple of the alignment 32"),
        "{msg}"
    );
}

#[test]
fn tensor_data_outside_the_file_is_an_error() {
    for (offset, n_bytes_present) in [(0u64, 15usize), (32, 40), (u64::MAX - 31, 64)] {
        let mut b = Bytes::header(3, 1, 0);
        b.tensor_info("t", &[4], 0, offset)
            .pad(32)
            .raw(&vec![0; n_bytes_present]);
        let e = b.parse().unwrap_err();
        assert!(
            matches!(e, ModelError::TensorDataOutOfBounds { ref tensor, .. } if tensor == "t"),
            "{e}"
        );
    }
    // Exactly enough is fine, with or without trailing padding.
    let mut b = Bytes::header(3, 1, 0);
    b.tensor_info("t", &[4], 0, 0).pad(32).raw(&[0; 16]);
    b.parse().unwrap();
}

#[test]
fn bad_magic() {
    let e = Bytes(b"GGML\x03\0\0\0".to_vec()).parse().unwrap_err();
    assert!(matches!(e, ModelError::BadMagic { found } if &found == b"GGML"));
    assert!(e.to_string().contains("byte offset 0"));
}

#[test]
fn duplicate_keys_and_tensor_names_are_errors() {
    let mut b = Bytes::header(3, 0, 2);
    b.key("a.b", 0).u8(1);
    b.key("a.b", 0).u8(2);
    let e = b.parse().unwrap_err();
    assert!(
        matches!(e, ModelError::DuplicateKey { ref key, offset: 40, first_offset: 24 } if key == "a.b"),
        "{e:?}"
    );
    let mut b = Bytes::header(3, 2, 0);
    b.tensor_info("w", &[1], 0, 0)
        .tensor_info("w", &[1], 0, 32)
        .pad(32)
        .raw(&[0; 64]);
    let e = b.parse().unwrap_err();
    assert!(
        matches!(e, ModelError::DuplicateTensor { ref name, offset: 57, first_offset: 24 } if name == "w"),
        "{e:?}"
    );
}

#[test]
fn unknown_value_types_are_errors_naming_the_key() {
    let e = one_kv(13, &[0; 8]).parse().unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::UnknownValueType {
                id: 13,
                offset: 33,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("type of metadata key `k`"), "{e}");
    let mut b = Bytes::header(3, 0, 1);
    b.key("arr", 9).u32(0xffff_ffff).u64(0);
    let e = b.parse().unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::UnknownValueType {
                id: 0xffff_ffff,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("array element type of metadata key `arr`"),
        "{e}"
    );
}

#[test]
fn unknown_and_unsupported_tensor_types_are_errors_naming_them() {
    for (id, name) in [(16u32, "IQ2_XXS"), (99, "unknown"), (28, "F64")] {
        let mut b = Bytes::header(3, 1, 0);
        b.tensor_info("blk.0.ffn_up.weight", &[256], id, 0)
            .pad(32)
            .raw(&[0; 1024]);
        let e = b.parse().unwrap_err();
        assert!(
            matches!(&e, ModelError::InvalidTensor { tensor, source: TensorError::UnsupportedType { id: i, .. }, .. }
                if tensor == "blk.0.ffn_up.weight" && *i == id),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(msg.contains(&id.to_string()) && msg.contains(name), "{msg}");
    }
}

#[test]
fn bad_shapes_are_errors() {
    // (dims, type, what the message must mention)
    // (dims, type, what the message must mention, byte offset of the field blamed): the
    // tensor info starts at 24, its n_dimensions at 33, its dimension 1 at 45.
    let cases: &[(&[u64], u32, &str, u64)] = &[
        (&[1, 1, 1, 1, 1], 0, "1..=4 dimensions", 33),
        (&[], 0, "1..=4 dimensions", 33),
        (&[31], 8, "block size 32", 33), // Q8_0 row of 31
        (&[1 << 32, 1 << 32], 0, "below 2^63", 45),
        (&[1 << 62, 4], 0, "below 2^63", 45),
        (&[1 << 62], 0, "overflows", 33), // 2^62 f32 = 2^64 bytes
    ];
    for (dims, ty, needle, offset) in cases {
        let mut b = Bytes::header(3, 1, 0);
        b.tensor_info("t", dims, *ty, 0).pad(32);
        let e = b.parse().unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("tensor `t`") && msg.contains(needle),
            "{dims:?}: {msg}"
        );
        assert!(
            msg.contains(&format!("byte offset {offset}:")),
            "{dims:?}: {msg}"
        );
    }
}

#[test]
fn invalid_bool_empty_key_and_non_utf8_key_are_errors() {
    let e = one_kv(7, &[2]).parse().unwrap_err();
    assert!(
        e.to_string().contains("expected a bool (0 or 1), found 2"),
        "{e}"
    );
    let mut b = Bytes::header(3, 0, 1);
    b.key("", 0).u8(0);
    assert!(b.parse().unwrap_err().to_string().contains("non-empty key"));
    let mut b = Bytes::header(3, 0, 1);
    b.str([b'a', 0xff]).u32(0).u8(0);
    assert!(b.parse().unwrap_err().to_string().contains("UTF-8"));
}

#[test]
fn non_utf8_string_values_are_kept_as_bytes() {
    let f = one_kv(8, &[&2u64.to_le_bytes()[..], &[0xc3, 0x28]].concat())
        .parse()
        .unwrap();
    let s = f.metadata().get_string("k").unwrap();
    assert_eq!(s.as_bytes(), &[0xc3, 0x28]);
    let e = f.metadata().get_str("k").unwrap_err();
    assert!(
        matches!(e, ModelError::NotUtf8 { ref field, valid_up_to: 0 } if field.contains("`k`"))
    );
}

#[test]
fn huge_counts_and_lengths_are_errors_before_allocating() {
    // A string of 2^60 bytes, an array of 2^60 u64, 2^60 key-value pairs, 2^60 tensors.
    let e = one_kv(8, &(1u64 << 60).to_le_bytes()).parse().unwrap_err();
    assert!(
        matches!(e, ModelError::Truncated { needed, offset: 37, .. } if needed == (1 << 60) + 8),
        "{e:?}"
    );
    assert!(e.to_string().contains("value of metadata key `k`"), "{e}");
    let mut b = Bytes::header(3, 0, 1);
    b.key("k", 9).u32(10).u64(1 << 60);
    let e = b.parse().unwrap_err();
    assert!(
        matches!(e, ModelError::CountTooLarge { item_size: 8, .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("array length of metadata key `k`"),
        "{e}"
    );
    let e = Bytes::header(3, 0, 1 << 60).parse().unwrap_err();
    assert!(
        e.to_string()
            .contains("header field metadata_kv_count at byte offset 16"),
        "{e}"
    );
    let e = Bytes::header(3, 1 << 60, 0).parse().unwrap_err();
    assert!(
        e.to_string()
            .contains("header field tensor_count at byte offset 8"),
        "{e}"
    );
    // u64::MAX items of 8 bytes overflows the multiplication: still a clean error.
    let mut b = Bytes::header(3, 0, 1);
    b.key("k", 9).u32(10).u64(u64::MAX);
    assert!(matches!(b.parse(), Err(ModelError::CountTooLarge { .. })));
}

#[test]
fn truncation_names_the_field() {
    let mut full = Bytes::header(3, 0, 1);
    full.key("general.architecture", 4).u32(1);
    let e = Bytes(full.0[..37].to_vec()).parse().unwrap_err();
    assert_eq!(
        e.to_string(),
        "metadata key #0 at byte offset 24: needs 28 bytes but the file has only 13 left"
    );
    let e = Bytes(full.0[..full.len() - 1].to_vec())
        .parse()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "value of metadata key `general.architecture` at byte offset 56: needs 4 bytes but the file has only 3 left"
    );
    // Too few bytes for the tensors the header announces is caught at the count.
    let e = Bytes(two_tensors(3, None).0[..30].to_vec())
        .parse()
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("header field tensor_count at byte offset 8"),
        "{e}"
    );
    let e = Bytes(full.0[..2].to_vec()).parse().unwrap_err();
    assert!(
        e.to_string().starts_with("GGUF magic at byte offset 0"),
        "{e}"
    );
}

#[test]
fn metadata_accessors() {
    let mut m = Metadata::new();
    m.insert("u8", 200u8).unwrap();
    m.insert("i64", -5i64).unwrap();
    m.insert("big", u64::MAX).unwrap();
    m.insert("f32", 0.5f32).unwrap();
    m.insert("b", true).unwrap();
    m.insert("s", "x").unwrap();
    assert_eq!(m.get_u32("u8").unwrap(), 200);
    assert_eq!(m.get_i16("u8").unwrap(), 200);
    assert!(matches!(
        m.get_i8("u8"),
        Err(ModelError::OutOfRange {
            value: 200,
            target: "int8",
            ..
        })
    ));
    assert_eq!(m.get_i32("i64").unwrap(), -5);
    assert!(m.get_u64("i64").is_err());
    assert_eq!(m.get_u64("big").unwrap(), u64::MAX);
    assert!(m.get_i64("big").is_err());
    assert_eq!(m.get_f64("f32").unwrap(), 0.5);
    assert!(matches!(
        m.get_f32("u8"),
        Err(ModelError::WrongType {
            expected: "float32",
            ..
        })
    ));
    assert!(m.get_bool("b").unwrap());
    assert!(matches!(
        m.get_u32("nope"),
        Err(ModelError::MissingKey { .. })
    ));
    assert_eq!(m.get_opt::<bool>("nope").unwrap(), None);
    assert!(m.get_opt::<bool>("s").is_err());
    let e = m.get_str_array("s").unwrap_err();
    assert_eq!(
        e.to_string(),
        "metadata key `s`: expected array of string, found string"
    );
    assert_eq!(m.set("s", "y"), Some(MetadataValue::from("x")));
    assert_eq!(m.position("s"), Some(5));
    assert_eq!(m.remove("i64"), Some(MetadataValue::Int64(-5)));
    assert_eq!(m.position("s"), Some(4));
    assert_eq!(m.get_str("s").unwrap(), "y");
    assert!(m.insert("s", 1u8).is_err());
}

#[test]
fn writer_rejects_what_llama_cpp_would() {
    let mut w = GgufWriter::new();
    let long = "x".repeat(64);
    assert!(w
        .add_tensor_bytes(&long, GgmlType::F32, &[1], &[0; 4])
        .is_err());
    w.add_tensor_bytes(&long[..63], GgmlType::F32, &[1], &[0; 4])
        .unwrap();
    assert!(w
        .add_tensor_bytes(&long[..63], GgmlType::F32, &[1], &[0; 4])
        .is_err());
    assert!(w
        .add_tensor_bytes("five", GgmlType::F32, &[1, 1, 1, 1, 1], &[0; 4])
        .is_err());
    assert!(w
        .add_tensor_bytes("short", GgmlType::F32, &[2], &[0; 4])
        .is_err());
    w.metadata_mut().insert("", 1u8).unwrap();
    assert!(w.to_bytes().is_err());
}

#[test]
fn write_file_then_open() {
    let dir = std::env::temp_dir().join(format!("ziglama-gguf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.gguf");
    let bytes = two_tensors(3, Some(64));
    let f = bytes.parse().unwrap();
    GgufWriter::from_file(&f)
        .unwrap()
        .write_file(&path)
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes.0);
    let g = GgufFile::open(&path).unwrap();
    assert_eq!(
        g.tensor("a").unwrap().to_f32().unwrap(),
        vec![1.0, 2.0, 3.0]
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let e = GgufFile::open(dir.join("missing.gguf")).unwrap_err();
    assert!(matches!(e, ModelError::Io { op: "map", .. }), "{e:?}");
}

fn scalar() -> impl Strategy<Value = MetadataValue> {
    prop_oneof![
        any::<u8>().prop_map(MetadataValue::Uint8),
        any::<i8>().prop_map(MetadataValue::Int8),
        any::<u16>().prop_map(MetadataValue::Uint16),
        any::<i16>().prop_map(MetadataValue::Int16),
        any::<u32>().prop_map(MetadataValue::Uint32),
        any::<i32>().prop_map(MetadataValue::Int32),
        any::<f32>()
            .prop_filter("NaN != NaN", |x| !x.is_nan())
            .prop_map(MetadataValue::Float32),
        any::<bool>().prop_map(MetadataValue::Bool),
        proptest::collection::vec(any::<u8>(), 0..12)
            .prop_map(|b| MetadataValue::String(GgufString::from(b))),
        any::<u64>().prop_map(MetadataValue::Uint64),
        any::<i64>().prop_map(MetadataValue::Int64),
        any::<f64>()
            .prop_filter("NaN != NaN", |x| !x.is_nan())
            .prop_map(MetadataValue::Float64),
    ]
}

fn array() -> impl Strategy<Value = MetadataArray> {
    let leaf = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..5).prop_map(MetadataArray::Uint8),
        proptest::collection::vec(any::<i16>(), 0..5).prop_map(MetadataArray::Int16),
        proptest::collection::vec(any::<u32>(), 0..5).prop_map(MetadataArray::Uint32),
        proptest::collection::vec(any::<bool>(), 0..5).prop_map(MetadataArray::Bool),
        proptest::collection::vec(any::<i64>(), 0..5).prop_map(MetadataArray::Int64),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..6), 0..5)
            .prop_map(|v| MetadataArray::String(v.into_iter().collect::<StringArray>())),
    ];
    leaf.prop_recursive(3, 20, 4, |inner| {
        proptest::collection::vec(inner, 0..4).prop_map(MetadataArray::Array)
    })
}

proptest! {
    #[test]
    fn written_metadata_reads_back_identically(
        values in proptest::collection::vec(
            prop_oneof![scalar(), array().prop_map(MetadataValue::Array)], 0..12),
        alignment in prop_oneof![Just(None), (0u32..8).prop_map(|p| Some(1u32 << p))],
    ) {
        let mut w = GgufWriter::new();
        if let Some(a) = alignment {
            w.metadata_mut().insert("general.alignment", a).unwrap();
        }
        for (i, v) in values.iter().enumerate() {
            w.metadata_mut().insert(format!("key.{i}"), v.clone()).unwrap();
        }
        w.add_tensor_bytes("t", GgmlType::F32, &[3], &[7; 12]).unwrap();
        let bytes = w.to_bytes().unwrap();
        let f = GgufFile::from_bytes(Arc::new(bytes.clone())).unwrap();
        prop_assert_eq!(f.metadata(), w.metadata());
        prop_assert_eq!(f.alignment(), alignment.unwrap_or(32) as usize);
        prop_assert_eq!(f.tensor_data("t").unwrap(), &[7; 12][..]);
        // Writing what was read gives the same bytes.
        prop_assert_eq!(GgufWriter::from_file(&f).unwrap().to_bytes().unwrap(), bytes);
    }
}

#[test]
fn parsed_files_can_be_shared_between_threads() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<GgufFile>();
    send_sync::<Metadata>();
    send_sync::<GgufWriter>();
}

proptest! {
    /// Arbitrary bytes after a valid start (magic, version, small counts) never panic, and
    /// errors always carry a byte offset.
    #[test]
    fn arbitrary_bytes_after_a_valid_start_never_panic(
        n_tensors in 0u64..4,
        n_kv in 0u64..6,
        rest in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut b = Bytes::header(3, n_tensors, n_kv);
        b.raw(&rest);
        if let Err(e) = b.parse() {
            prop_assert!(e.to_string().contains("byte offset"), "{}", e);
        }
    }
}
