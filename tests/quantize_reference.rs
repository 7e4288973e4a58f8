//! ziglama's quantizers produce exactly ggml's reference bytes.
//!
//! The reference is what llama-quantize uses for a model without an importance matrix,
//! `ggml_quantize_chunk(type, src, dst, 0, nrows, n_per_row, NULL)`, and for the activation
//! types Q8_1 and Q8_K (which it does not take) ggml's plain C `quantize_row_*_ref`
//! (`scripts/golden/quantize_refs.py`). Two kinds of input:
//!
//! - `tests/data/quantize/inputs.tsv`: synthetic edge cases (zeros, constants, one huge
//!   outlier, tiny values, alternating signs, exact rounding ties, f16 overflow, signed zeros,
//!   random normal, ...), with ggml's bytes in `synthetic.tsv`;
//! - rows of SmolLM2's `token_embd` dequantized (regenerated here from the model, whose
//!   dequantization is checked first), with the sha256 of ggml's bytes for each row of 2304
//!   values in `smollm2_token_embd.tsv`.
//!
//! A mismatch prints the first differing block: its bytes, ggml's, and the input values.

mod common;

use std::collections::HashMap;
use std::sync::OnceLock;

use ziglama::model::catalog::KnownModel;
use ziglama::model::gguf::GgufFile;
use ziglama::tensor::{GgmlType, Tensor};

/// The synthetic inputs by case name.
fn inputs() -> &'static HashMap<String, Vec<f32>> {
    static INPUTS: OnceLock<HashMap<String, Vec<f32>>> = OnceLock::new();
    INPUTS.get_or_init(|| {
        common::read_tsv("tests/data/quantize/inputs.tsv")
            .into_iter()
            .map(|f| {
                let n: usize = f[1].parse().unwrap();
                let bytes = common::unhex(&f[2]);
                assert_eq!(
                    bytes.len(),
                    4 * n,
                    "inputs.tsv: case {} has the wrong length",
                    f[0]
                );
                let values = bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_bits(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
                    .collect();
                (f[0].clone(), values)
            })
            .collect()
    })
}

/// Our quantization of `x` in rows of `n_per_row`.
fn quantize(ty: GgmlType, x: &[f32], n_per_row: usize) -> Result<Vec<u8>, String> {
    common::no_panic(|| {
        Tensor::quantize(ty, &[n_per_row, x.len() / n_per_row], x)
            .map(|t| t.bytes().to_vec())
            .map_err(|e| format!("quantize failed: {e}"))
    })
}

/// Describes the first block where `ours` and `expected` differ.
fn first_differing_block(ty: GgmlType, ours: &[u8], expected: &[u8], x: &[f32]) -> String {
    if ours.len() != expected.len() {
        return format!("{} bytes, ggml has {}", ours.len(), expected.len());
    }
    let Some(i) = ours.iter().zip(expected).position(|(a, b)| a != b) else {
        return "identical".into();
    };
    let (ts, bs) = (ty.type_size(), ty.block_size());
    let b = i / ts;
    format!(
        "first differing block #{b} (byte {} in it):\n    ours {}\n    ggml {}\n    input {:?}",
        i - b * ts,
        common::hex(&ours[b * ts..(b + 1) * ts]),
        common::hex(&expected[b * ts..(b + 1) * ts]),
        &x[b * bs..(b + 1) * bs]
    )
}

/// Every synthetic case quantized to `type_name` is byte-identical to ggml's.
fn check_synthetic(type_name: &str) {
    let ty = common::ggml_type(type_name);
    let golden = common::read_tsv("tests/data/quantize/synthetic.tsv");
    let mut report = common::Report::default();
    for f in golden.iter().filter(|f| f[0] == type_name) {
        let (case, n_per_row, sha, bytes) = (&f[1], &f[2], &f[3], &f[4]);
        let x = &inputs()[case];
        let n_per_row: usize = n_per_row.parse().unwrap();
        let expected = common::unhex(bytes);
        assert_eq!(&common::sha256(&expected), sha, "synthetic.tsv is corrupt");
        let result = quantize(ty, x, n_per_row).and_then(|ours| {
            if ours == expected {
                Ok(())
            } else {
                Err(format!(
                    "{type_name} of case {case:?}: {}",
                    first_differing_block(ty, &ours, &expected, x)
                ))
            }
        });
        report.record(case, result);
    }
    report.finish(&format!(
        "{type_name}, synthetic inputs (passed/total by case)"
    ));
}

/// SmolLM2's token_embd rows named in the golden file, dequantized and concatenated.
fn token_embd_input() -> &'static Result<Vec<f32>, String> {
    static INPUT: OnceLock<Result<Vec<f32>, String>> = OnceLock::new();
    INPUT.get_or_init(|| {
        let header = std::fs::read_to_string(common::repo_path(
            "tests/data/quantize/smollm2_token_embd.tsv",
        ))
        .expect("tests/data/quantize/smollm2_token_embd.tsv");
        let field = |key: &str| {
            header
                .lines()
                .find_map(|l| l.strip_prefix(&format!("# {key}\t")))
                .unwrap_or_else(|| panic!("smollm2_token_embd.tsv has no {key} line"))
                .to_owned()
        };
        let ids: Vec<usize> = field("token_ids")
            .split(',')
            .map(|s| s.parse().unwrap())
            .collect();
        let expected_sha = field("input_sha256");
        let path = KnownModel::SmolLM2
            .ensure()
            .unwrap_or_else(|e| panic!("{e}"));
        let file = GgufFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let embd = file
            .tensor("token_embd.weight")
            .unwrap_or_else(|e| panic!("token_embd.weight: {e}"));
        let ne0 = embd.row_len();
        let mut x = vec![0f32; ids.len() * ne0];
        common::no_panic(|| {
            for (k, &id) in ids.iter().enumerate() {
                embd.dequantize_row_into(id, &mut x[k * ne0..(k + 1) * ne0])
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })?;
        let got = common::sha256_f32(&x);
        if got != expected_sha {
            return Err(format!(
                "the input itself differs: token_embd ({:?}) rows dequantize to sha256 {got}, \
                 ggml's to {expected_sha}; fix {:?} dequantization first \
                 (tests/dequantize_real_models.rs)",
                embd.dtype(),
                embd.dtype()
            ));
        }
        Ok(x)
    })
}

/// Every row of 2304 token_embd values quantized to `type_name` hashes like ggml's bytes.
fn check_token_embd(type_name: &str) {
    let ty = common::ggml_type(type_name);
    let x = match token_embd_input() {
        Ok(x) => x,
        Err(e) => panic!("{e}"),
    };
    let golden = common::read_tsv("tests/data/quantize/smollm2_token_embd.tsv");
    let mut report = common::Report::default();
    for f in golden.iter().filter(|f| f[0] == type_name) {
        let row: usize = f[1].parse().unwrap();
        let n: usize = f[2].parse().unwrap();
        let input = &x[row * n..(row + 1) * n];
        let result = quantize(ty, input, n).and_then(|ours| {
            let got = common::sha256(&ours);
            if got == f[3] {
                Ok(())
            } else {
                Err(format!(
                    "{type_name} of token_embd row {row} (values {}..{}): sha256 {got}, ggml {}; \
                     our first block {} for input {:?} (regenerate ggml's bytes with \
                     scripts/golden/quantize_refs.py to compare blocks)",
                    row * n,
                    (row + 1) * n,
                    f[3],
                    common::hex(&ours[..ty.type_size()]),
                    &input[..ty.block_size()]
                ))
            }
        });
        report.record(type_name, result);
    }
    report.finish(&format!("{type_name}, SmolLM2 token_embd rows"));
}

macro_rules! quantize_tests {
    ($($ty:literal => $synthetic:ident, $embd:ident;)*) => {
        $(
            #[test]
            fn $synthetic() {
                check_synthetic($ty);
            }

            #[test]
            fn $embd() {
                check_token_embd($ty);
            }
        )*

        /// The golden files cover exactly the types tested here.
        #[test]
        fn golden_data_covers_the_tested_types() {
            let tested = [$($ty),*];
            for file in ["synthetic.tsv", "smollm2_token_embd.tsv"] {
                let mut types: Vec<String> = common::read_tsv(&format!("tests/data/quantize/{file}"))
                    .into_iter()
                    .map(|f| f[0].clone())
                    .collect();
                types.dedup();
                assert_eq!(types, tested, "{file}");
            }
            assert!(inputs().len() >= 20, "inputs.tsv has {} cases", inputs().len());
        }
    };
}

quantize_tests! {
    "Q4_0" => q4_0_synthetic, q4_0_token_embd;
    "Q4_1" => q4_1_synthetic, q4_1_token_embd;
    "Q5_0" => q5_0_synthetic, q5_0_token_embd;
    "Q5_1" => q5_1_synthetic, q5_1_token_embd;
    "Q8_0" => q8_0_synthetic, q8_0_token_embd;
    "Q8_1" => q8_1_synthetic, q8_1_token_embd;
    "Q8_K" => q8_k_synthetic, q8_k_token_embd;
    "Q4_K" => q4_k_synthetic, q4_k_token_embd;
    "Q6_K" => q6_k_synthetic, q6_k_token_embd;
    "F16" => f16_synthetic, f16_token_embd;
    "BF16" => bf16_synthetic, bf16_token_embd;
}
