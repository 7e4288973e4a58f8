//! SmolLM2 Q4_1 requantized to Q4_0 in memory by `gguf::requantize` equals what
//! `llama-quantize --allow-requantize SmolLM2-135M-Instruct.Q4_1.gguf OUT Q4_0` makes, in
//! every tensor: same names, types and shapes, and the same values (the sha256 of each
//! tensor's dequantization to f32, as ggml dequantizes it).
//!
//! llama-quantize's answers are `tests/data/requantized/Q4_0.hashes.tsv` at the repository
//! root (made by `scripts/golden/requantized_rows.py` from llama-quantize's file). Equal
//! values in every tensor are what the logits depend on, so CI, which has no llama.cpp, can
//! use [`common::smollm2_q4_0`] in place of llama-quantize's file when comparing logits with
//! llama.cpp's answers on that file (`tests/data/llama-q4_0/`). (Equal values do not by
//! themselves prove equal bytes, a block of zeros can have any scale; but both sides run the
//! same reference quantizer, and on the machine that made the golden data the bytes of all
//! 272 tensors were also compared with llama-quantize's file, with gguf-py: identical.)

mod common;

use std::collections::HashMap;
use std::time::Instant;

use sha2::{Digest, Sha256};
use ziglama_model::catalog::KnownModel;
use ziglama_model::gguf::{keys, GgufFile};
use ziglama_model::tensor::GgmlType;

const HASHES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/data/requantized/Q4_0.hashes.tsv"
);

/// llama-quantize's tensor: type name, shape (`576,192`) and sha256 of its dequantization.
struct Golden {
    ty: String,
    shape: String,
    sha256: String,
}

fn golden() -> Vec<(String, Golden)> {
    let text = std::fs::read_to_string(HASHES).unwrap_or_else(|e| panic!("{HASHES}: {e}"));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 6, "{HASHES}: malformed line {line:?}");
            let g = Golden {
                ty: f[1].to_owned(),
                shape: f[2].to_owned(),
                sha256: f[3].to_owned(),
            };
            (f[0].to_owned(), g)
        })
        .collect()
}

/// The sha256 (hex) of the tensor's values dequantized to f32, little-endian.
fn sha256_of_values(file: &GgufFile, name: &str) -> String {
    let t = file.tensor(name).expect("tensor");
    let mut row = vec![0f32; t.row_len()];
    let mut h = Sha256::new();
    for i in 0..t.n_rows() {
        t.dequantize_row_into(i, &mut row).expect("dequantize");
        for v in &row {
            h.update(v.to_le_bytes());
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_tensor_equals_llama_quantize() {
    let start = Instant::now();
    let file = common::smollm2_q4_0_gguf();
    println!(
        "requantizing SmolLM2 to Q4_0 in memory took {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let golden = golden();
    assert_eq!(golden.len(), 272, "{HASHES}: tensor count");

    let ours: HashMap<&str, _> = file
        .tensor_infos()
        .iter()
        .map(|i| (i.name.as_str(), i))
        .collect();
    let mut failures = Vec::new();
    let mut by_type: HashMap<&str, usize> = HashMap::new();
    for (name, want) in &golden {
        let Some(info) = ours.get(name.as_str()) else {
            failures.push(format!("{name}: missing from our file"));
            continue;
        };
        let shape = info
            .shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",");
        if info.dtype.name() != want.ty || shape != want.shape {
            failures.push(format!(
                "{name}: ours {} [{shape}], llama-quantize {} [{}]",
                info.dtype, want.ty, want.shape
            ));
            continue;
        }
        let sha = sha256_of_values(file, name);
        if sha != want.sha256 {
            failures.push(format!(
                "{name} ({}): sha256 of values {sha}, llama-quantize {}",
                want.ty, want.sha256
            ));
            continue;
        }
        *by_type.entry(info.dtype.name()).or_default() += 1;
    }
    assert_eq!(file.tensor_infos().len(), golden.len(), "tensor count");
    assert!(
        failures.is_empty(),
        "{} of {} tensors differ from llama-quantize's:\n{}",
        failures.len(),
        golden.len(),
        failures.join("\n")
    );
    // What the file holds (also stated in the hashes file): norms F32, the token
    // embeddings (tied output) Q8_0, every other matrix Q4_0.
    let mut counts: Vec<_> = by_type.into_iter().collect();
    counts.sort();
    assert_eq!(counts, [("F32", 61), ("Q4_0", 210), ("Q8_0", 1)]);
}

#[test]
fn plan_and_metadata() {
    let q4_1 = GgufFile::open(KnownModel::SmolLM2.ensure().expect("SmolLM2")).expect("open");
    let steps = common::smollm2_q4_0_plan().plan(&q4_1).expect("plan");
    let mut kinds: HashMap<(GgmlType, GgmlType), usize> = HashMap::new();
    for s in &steps {
        *kinds.entry((s.from, s.to)).or_default() += 1;
    }
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ((GgmlType::F32, GgmlType::F32), 61),
            ((GgmlType::Q4_1, GgmlType::Q4_0), 210),
            ((GgmlType::Q8_0, GgmlType::Q8_0), 1),
        ]
    );

    // Metadata: the input's keys and values, in its order, but general.file_type
    // LLAMA_FTYPE_MOSTLY_Q4_0 (2), as llama-quantize writes it.
    let out = common::smollm2_q4_0_gguf();
    assert_eq!(q4_1.metadata().get_u32(keys::GENERAL_FILE_TYPE).unwrap(), 3);
    assert_eq!(out.metadata().get_u32(keys::GENERAL_FILE_TYPE).unwrap(), 2);
    assert!(out.metadata().keys().eq(q4_1.metadata().keys()));
    for (key, value) in q4_1.metadata().iter() {
        if key != keys::GENERAL_FILE_TYPE {
            assert_eq!(out.metadata().get(key), Some(value), "{key}");
        }
    }
    assert_eq!(out.version(), q4_1.version());
    // The copied token embeddings are the input's bytes.
    assert_eq!(
        out.tensor_data("token_embd.weight").unwrap(),
        q4_1.tensor_data("token_embd.weight").unwrap()
    );
}

#[test]
fn requantized_model_loads() {
    let start = Instant::now();
    let model = common::smollm2_q4_0();
    println!(
        "SmolLM2 Q4_0 model (requantized in memory, then loaded) ready after {:.2} s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(model.n_vocab(), 49152);
}
