//! Every tensor of both real models dequantizes exactly as llama.cpp's ggml does.
//!
//! The golden hashes in `tests/data/dequant/` are ggml's own `to_float` of each tensor
//! (`scripts/golden/dequant_hashes.py`): the sha256 of the whole tensor as f32 little-endian
//! bytes, the first values of row 0 and hashes of 16 runs of rows, so a failure names the
//! tensor, its type, the first differing value of row 0 and the first differing run of rows.
//! The models are fetched on first use (`KnownModel::ensure`).

mod common;

use ziglama::model::catalog::KnownModel;

fn model_path(model: KnownModel) -> std::path::PathBuf {
    model.ensure().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn smollm2_every_tensor_dequantizes_like_llama_cpp() {
    common::check_file(
        &model_path(KnownModel::SmolLM2),
        "tests/data/dequant/smollm2.tsv",
        "SmolLM2-135M-Instruct Q4_1",
    );
}

#[test]
fn gemma3_every_tensor_dequantizes_like_llama_cpp() {
    common::check_file(
        &model_path(KnownModel::Gemma3),
        "tests/data/dequant/gemma3.tsv",
        "Gemma 3 270M Q4_K_M",
    );
}

#[test]
fn golden_files_are_for_the_pinned_models() {
    for (model, golden) in [
        (KnownModel::SmolLM2, "tests/data/dequant/smollm2.tsv"),
        (KnownModel::Gemma3, "tests/data/dequant/gemma3.tsv"),
    ] {
        let text = std::fs::read_to_string(common::repo_path(golden)).unwrap();
        let header = text.lines().next().unwrap_or("");
        assert!(
            header.contains(model.sha256()) && header.contains(model.file_name()),
            "{golden} was not generated from {} (sha256 {}): header {header:?}",
            model.file_name(),
            model.sha256()
        );
    }
}
