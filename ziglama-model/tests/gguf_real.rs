//! The reader and writer on the real models (fetched by the catalog on first use): facts
//! about their headers, zero-copy tensors, byte-identical rewrites, and a re-laid-out copy.
//!
//! llama.cpp agrees that what we write is a valid model: on 2026-11-27, `peer.py logits
//! --text Hello` (llama-cpp-python 0.3.36) gave the same top-10 logits, to every printed
//! digit, for the original SmolLM2 and Gemma 3 files and for the copies written by
//! `relaid_copy` below (alignment 64, an added key, tensors in reverse order; SmolLM2 also
//! as GGUF version 2). SmolLM2's top-10 for "Hello": ids 29, 28, 198, 79, 506, 284, 314, 260,
//! 288, 30 (logit of 29: 27.879089); Gemma 3's: 236764, 4677, 236888, 532, 993, 236761, 4690,
//! 784, 108, 1392 (logit of 236764: 18.582670).

use std::io::{self, Write};
use std::sync::Arc;

use ziglama_model::catalog::KnownModel;
use ziglama_model::gguf::keys::{arch, arch_key};
use ziglama_model::gguf::{GgufFile, GgufWriter, MetadataValue, ValueType};
use ziglama_model::tensor::GgmlType;

fn open(model: KnownModel) -> GgufFile {
    let path = model.ensure().expect("the model must be fetchable");
    GgufFile::open(path).expect("the model parses")
}

fn smollm2() -> GgufFile {
    open(KnownModel::SmolLM2)
}

/// A sink that compares what is written with `expected`, without holding a copy.
struct Compare<'a> {
    expected: &'a [u8],
    pos: usize,
    first_diff: Option<usize>,
}

impl Write for Compare<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let end = self.pos + buf.len();
        let want = self
            .expected
            .get(self.pos..end.min(self.expected.len()))
            .unwrap_or(&[]);
        if self.first_diff.is_none() && want != buf {
            let i = want
                .iter()
                .zip(buf)
                .position(|(a, b)| a != b)
                .unwrap_or(want.len());
            self.first_diff = Some(self.pos + i);
        }
        self.pos = end;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes `file` back with all its metadata and tensors in its order, comparing on the fly.
fn assert_rewrite_identical(file: &GgufFile) {
    let mut sink = Compare {
        expected: file.bytes(),
        pos: 0,
        first_diff: None,
    };
    let n = GgufWriter::from_file(file)
        .unwrap()
        .write_to(&mut sink)
        .unwrap();
    assert_eq!(sink.first_diff, None, "first differing byte");
    assert_eq!(n, file.bytes().len() as u64);
}

/// A copy with another layout: alignment 64, one more key, tensors in reverse order.
fn relaid_copy(file: &GgufFile) -> GgufFile {
    let mut w = GgufWriter::new();
    for (k, v) in file.metadata().iter() {
        w.metadata_mut().insert(k, v.clone()).unwrap();
    }
    w.metadata_mut().set("general.alignment", 64u32);
    w.metadata_mut()
        .insert("ziglama.note", "rewritten by ziglama")
        .unwrap();
    for info in file.tensor_infos().iter().rev() {
        w.add_tensor(&info.name, file.tensor(&info.name).unwrap())
            .unwrap();
    }
    GgufFile::from_bytes(Arc::new(w.to_bytes().unwrap())).unwrap()
}

fn assert_same_content(a: &GgufFile, b: &GgufFile) {
    for (k, v) in a.metadata().iter() {
        assert_eq!(b.metadata().get(k), Some(v), "{k}");
    }
    assert_eq!(a.tensor_infos().len(), b.tensor_infos().len());
    for info in a.tensor_infos() {
        let other = b.tensor_info(&info.name).unwrap();
        assert_eq!((other.dtype, &other.shape), (info.dtype, &info.shape));
        assert_eq!(
            a.tensor_data(&info.name).unwrap(),
            b.tensor_data(&info.name).unwrap(),
            "{}",
            info.name
        );
    }
}

#[test]
fn header_facts() {
    let f = smollm2();
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 32);
    assert_eq!(f.tensor_infos().len(), 272);
    assert_eq!(f.metadata().len(), 33);
    assert_eq!(f.data_offset() % 32, 0);
    let m = f.metadata();
    assert_eq!(f.architecture().unwrap(), "llama");
    assert_eq!(
        m.get_u32(&arch_key("llama", arch::HEAD_COUNT_KV)).unwrap(),
        3
    );
    assert_eq!(
        m.get_f32(&arch_key("llama", arch::ROPE_FREQ_BASE)).unwrap(),
        100000.0
    );
    assert_eq!(m.get_u32("llama.block_count").unwrap(), 30);
    assert_eq!(m.get_u32("llama.embedding_length").unwrap(), 576);
    assert_eq!(m.get_u32("llama.attention.head_count").unwrap(), 9);
    assert_eq!(m.get_u32("llama.attention.head_count_kv").unwrap(), 3);
    assert_eq!(m.get_str("tokenizer.ggml.model").unwrap(), "gpt2");
    assert_eq!(m.get_str("tokenizer.ggml.pre").unwrap(), "smollm");
    let tokens = m.get_str_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 49152);
    assert_eq!(tokens.get_str(0).unwrap(), "<|endoftext|>");
    let emb = f.tensor_info("token_embd.weight").unwrap();
    assert_eq!(
        (emb.dtype, emb.shape.as_slice()),
        (GgmlType::Q8_0, &[576, 49152][..])
    );
    assert_eq!(emb.n_bytes, 576 / 32 * 34 * 49152);
    for (k, v) in m.iter() {
        println!("{k}: {}", v.type_description());
    }
    // Every tensor's data ends before the next begins, and the last one ends at the file's end
    // once padded.
    let last = f.tensor_infos().last().unwrap();
    let end = f.data_offset() as u64 + last.offset + last.n_bytes as u64;
    assert_eq!(end.next_multiple_of(32), f.bytes().len() as u64);
    assert_eq!(
        m.get("general.architecture").unwrap().value_type(),
        ValueType::String
    );
    assert!(matches!(
        m.get("llama.block_count"),
        Some(MetadataValue::Uint32(30))
    ));
}

#[test]
fn tensors_are_borrowed_from_the_map() {
    let f = smollm2();
    for info in f.tensor_infos() {
        let t = f.tensor(&info.name).unwrap();
        assert!(t.is_borrowed(), "{}", info.name);
        assert_eq!(t.shape(), info.shape.as_slice());
        assert_eq!(t.n_bytes(), info.n_bytes);
        let start = f.data_offset() + info.offset as usize;
        assert_eq!(t.bytes().as_ptr(), f.bytes()[start..].as_ptr());
    }
}

#[test]
fn smollm2_rewrite_is_byte_identical() {
    let f = smollm2();
    assert_rewrite_identical(&f);
    // And what we write parses to the same metadata and infos.
    let g = GgufFile::from_bytes(Arc::new(
        GgufWriter::from_file(&f).unwrap().to_bytes().unwrap(),
    ))
    .unwrap();
    assert_eq!(g.metadata(), f.metadata());
    assert_eq!(g.tensor_infos(), f.tensor_infos());
}

#[test]
fn gemma3_header_facts_and_byte_identical_rewrite() {
    let f = open(KnownModel::Gemma3);
    assert_eq!((f.version(), f.alignment()), (3, 32));
    let m = f.metadata();
    assert_eq!(m.get_str("general.architecture").unwrap(), "gemma3");
    assert_eq!(m.get_str("tokenizer.ggml.model").unwrap(), "llama");
    assert_eq!(
        m.get_str_array("tokenizer.ggml.tokens").unwrap().len(),
        262144
    );
    assert_eq!(
        m.get_f32_array("tokenizer.ggml.scores").unwrap().len(),
        262144
    );
    assert_eq!(m.get_u32("gemma3.attention.sliding_window").unwrap(), 512);
    let types: std::collections::BTreeSet<_> = f.tensor_infos().iter().map(|t| t.dtype).collect();
    for t in [
        GgmlType::Q4_K,
        GgmlType::Q5_0,
        GgmlType::Q6_K,
        GgmlType::Q8_0,
    ] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    assert_rewrite_identical(&f);
}

#[test]
fn relaid_copies_hold_the_same_content() {
    for model in [KnownModel::SmolLM2, KnownModel::Gemma3] {
        let f = open(model);
        let g = relaid_copy(&f);
        assert_eq!(g.alignment(), 64);
        assert_eq!(
            g.metadata().get_str("ziglama.note").unwrap(),
            "rewritten by ziglama"
        );
        assert_eq!(
            g.tensor_infos()[0].name,
            f.tensor_infos().last().unwrap().name
        );
        assert!(g.tensor_infos().iter().all(|t| t.offset % 64 == 0));
        assert_same_content(&f, &g);
    }
}
