//! The reader and writer on the real SmolLM2-135M-Instruct file (fetched by the catalog on
//! first use): facts about its header, zero-copy tensors, and a byte-identical rewrite.

use std::sync::Arc;

use ziglama_model::catalog::KnownModel;
use ziglama_model::gguf::{GgufFile, GgufWriter, MetadataValue, ValueType};
use ziglama_model::tensor::GgmlType;

fn smollm2() -> GgufFile {
    let path = KnownModel::SmolLM2
        .ensure()
        .expect("SmolLM2 must be fetchable");
    GgufFile::open(path).expect("SmolLM2 parses")
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
    assert_eq!(m.get_str("general.architecture").unwrap(), "llama");
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
fn rewrite_is_byte_identical() {
    let f = smollm2();
    let out = GgufWriter::from_file(&f).unwrap().to_bytes().unwrap();
    assert_eq!(out.len(), f.bytes().len());
    let first_diff = out.iter().zip(f.bytes()).position(|(a, b)| a != b);
    assert_eq!(first_diff, None, "first differing byte");
    // And what we wrote parses to the same metadata and infos.
    let g = GgufFile::from_bytes(Arc::new(out)).unwrap();
    assert_eq!(g.metadata(), f.metadata());
    assert_eq!(g.tensor_infos(), f.tensor_infos());
}
