//! SmolLM2 requantized by llama-quantize to every type it makes, dequantized as ggml does.
//!
//! The requantized files are large and CI has no llama.cpp, so `tests/data/requantized/`
//! holds, per file, the raw bytes of row 0 and of the last row of a selection of tensors
//! (every type llama-quantize chose is covered) with the sha256 of ggml's dequantization of
//! each row (`LABEL.rows.tsv`), and the sha256 of every whole tensor (`LABEL.hashes.tsv`).
//! The tests here check every committed row; `full_requantized_files` (ignored: it needs the
//! files, which `scripts/golden/check_requantized.sh` makes with llama.cpp and then runs it)
//! checks every tensor of every file.

mod common;

use ziglama::tensor::Tensor;

/// Every row of `tests/data/requantized/LABEL.rows.tsv` dequantizes to its committed hash.
fn check_rows(label: &str) {
    let rel = format!("tests/data/requantized/{label}.rows.tsv");
    let rows = common::read_tsv(&rel);
    let mut report = common::Report::default();
    for f in &rows {
        assert_eq!(f.len(), 7, "{rel}: malformed line");
        let (name, ty_name, shape, row, sha, first, raw) =
            (&f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6]);
        let ty = common::ggml_type(ty_name);
        let ne0 = common::parse_shape(shape)[0];
        let bytes = common::unhex(raw);
        let expected_first = common::parse_f32_bits(first);
        let result = common::no_panic(|| {
            let expected_len = ty.row_size(ne0).map_err(|e| e.to_string())?;
            if bytes.len() != expected_len {
                return Err(format!(
                    "{label} {name} row {row}: {} bytes committed, {ty_name} rows of {ne0} take {expected_len}",
                    bytes.len()
                ));
            }
            let values = Tensor::from_bytes(ty, &[ne0], &bytes)
                .and_then(|t| t.to_f32())
                .map_err(|e| format!("{label} {name} ({ty_name}) row {row}: {e}"))?;
            let got = common::sha256_f32(&values);
            if &got == sha {
                return Ok(());
            }
            let mut msg = format!(
                "{label} {name} ({ty_name}, ne {shape}) row {row}: sha256 {got}, llama.cpp {sha}"
            );
            match common::first_difference(&values, &expected_first) {
                Some((i, a, b)) => {
                    let bs = ty.block_size();
                    let ts = ty.type_size();
                    let block = i / bs;
                    msg += &format!(
                        "\n  first differs at [{i}] (block {block}): ours {a:e} ({:08x}), \
                         llama.cpp {b:e} ({:08x})\n  block {block} bytes: {}\n  ours      {}\n  llama.cpp {}",
                        a.to_bits(),
                        b.to_bits(),
                        common::hex(&bytes[block * ts..(block + 1) * ts]),
                        common::show_f32(&values[..expected_first.len()]),
                        common::show_f32(&expected_first),
                    );
                }
                None => {
                    msg += &format!(
                        "\n  the first {} values agree; first block bytes: {}",
                        expected_first.len(),
                        common::hex(&bytes[..ty.type_size()])
                    );
                }
            }
            Err(msg)
        });
        report.record(ty_name, result);
    }
    report.finish(&format!("requantized {label}, committed rows"));
}

macro_rules! rows_tests {
    ($($test:ident => $label:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check_rows($label);
            }
        )*

        /// Every label's data is committed, and every committed file has a test here.
        #[test]
        fn every_committed_file_is_tested() {
            let labels: Vec<&str> = vec![$($label),*];
            let dir = common::repo_path("tests/data/requantized");
            let mut found: Vec<String> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .filter_map(|e| {
                    let name = e.ok()?.file_name().into_string().ok()?;
                    name.strip_suffix(".rows.tsv").map(str::to_owned)
                })
                .collect();
            found.sort();
            let mut expected: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
            expected.sort();
            assert_eq!(found, expected);
            for label in labels {
                assert!(dir.join(format!("{label}.hashes.tsv")).is_file(), "{label}.hashes.tsv missing");
            }
        }

        /// Every tensor of every requantized file (needs the files: run
        /// scripts/golden/check_requantized.sh, which makes them with llama.cpp and runs this).
        #[test]
        #[ignore = "needs llama.cpp's requantized files: run scripts/golden/check_requantized.sh"]
        fn full_requantized_files() {
            let dir = std::env::var_os("ZIGLAMA_REQUANTIZED_DIR").expect(
                "set ZIGLAMA_REQUANTIZED_DIR to a folder of smollm2-LABEL.gguf files made by \
                 llama-quantize (scripts/golden/check_requantized.sh does both)",
            );
            let dir = std::path::PathBuf::from(dir);
            let mut failed = Vec::new();
            for label in [$($label),*] {
                let path = dir.join(format!("smollm2-{label}.gguf"));
                assert!(path.is_file(), "{} is missing", path.display());
                let golden = format!("tests/data/requantized/{label}.hashes.tsv");
                let what = format!("requantized {label}, every tensor");
                if std::panic::catch_unwind(|| common::check_file(&path, &golden, &what)).is_err() {
                    failed.push(label);
                }
            }
            assert!(failed.is_empty(), "files with tensors that differ from llama.cpp: {failed:?}");
        }
    };
}

rows_tests! {
    rows_q4_0 => "Q4_0",
    rows_q4_1 => "Q4_1",
    rows_q5_0 => "Q5_0",
    rows_q5_1 => "Q5_1",
    rows_q8_0 => "Q8_0",
    rows_q2_k_mix => "Q2_K",
    rows_q2_k_pure => "Q2_K-pure",
    rows_q3_k_m => "Q3_K_M",
    rows_q4_k_m => "Q4_K_M",
    rows_q5_k_m => "Q5_K_M",
    rows_q6_k => "Q6_K",
    rows_iq4_nl => "IQ4_NL",
    rows_iq4_xs => "IQ4_XS",
    rows_f16 => "F16",
    rows_bf16 => "BF16",
    rows_f32 => "F32",
}
