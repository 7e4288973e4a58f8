//! Bad `llama` models are clear errors, never panics: an unknown architecture, impossible
//! hyperparameters, a missing tensor, a tensor of the wrong shape, an unsupported RoPE
//! scaling. Each case is SmolLM2 rewritten in memory with one thing changed.

use std::sync::{Arc, OnceLock};

use ziglama_model::catalog::KnownModel;
use ziglama_model::gguf::{GgufFile, GgufWriter, Metadata};
use ziglama_model::model::{Batch, Model};
use ziglama_model::{ModelError, Result};
use ziglama_tensor::{Tensor, ThreadPool};

fn smollm2() -> &'static GgufFile {
    static FILE: OnceLock<GgufFile> = OnceLock::new();
    FILE.get_or_init(|| {
        GgufFile::open(
            KnownModel::SmolLM2
                .ensure()
                .expect("SmolLM2 must be fetchable"),
        )
        .expect("SmolLM2 opens")
    })
}

/// SmolLM2 with its metadata edited by `meta` and every tensor passed through `tensor`
/// (`None` drops it).
fn variant(
    meta: impl Fn(&mut Metadata),
    tensor: impl Fn(&str, Tensor) -> Option<Tensor>,
) -> Result<Model> {
    let file = smollm2();
    let mut w = GgufWriter::new();
    *w.metadata_mut() = file.metadata().clone();
    meta(w.metadata_mut());
    for info in file.tensor_infos() {
        if let Some(t) = tensor(&info.name, file.tensor(&info.name)?) {
            w.add_tensor(&info.name, t)?;
        }
    }
    Model::from_gguf(GgufFile::from_bytes(Arc::new(w.to_bytes()?))?)
}

fn keep(_: &str, t: Tensor) -> Option<Tensor> {
    Some(t)
}

#[test]
fn an_unchanged_copy_loads() {
    let model = variant(|_| {}, keep).expect("the copy loads");
    assert_eq!(model.n_vocab(), 49152);
    assert_eq!(model.hparams().n_layer, 30);
}

#[test]
fn unknown_architecture() {
    let err = variant(|m| drop(m.set("general.architecture", "gpt2")), keep).unwrap_err();
    assert!(
        matches!(err, ModelError::UnknownArchitecture { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("`gpt2` is not supported"), "{err}");
}

#[test]
fn head_count_kv_that_does_not_divide_head_count() {
    let err = variant(|m| drop(m.set("llama.attention.head_count_kv", 4u32)), keep).unwrap_err();
    assert!(
        err.to_string()
            .contains("llama.attention.head_count_kv`: 4 does not divide"),
        "{err}"
    );
}

#[test]
fn missing_hyperparameter() {
    let err = variant(
        |m| drop(m.remove("llama.attention.layer_norm_rms_epsilon")),
        keep,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("llama.attention.layer_norm_rms_epsilon` is missing"),
        "{err}"
    );
}

#[test]
fn missing_tensor() {
    let err = variant(
        |_| {},
        |name, t| (name != "blk.3.ffn_up.weight").then_some(t),
    )
    .unwrap_err();
    assert!(matches!(err, ModelError::TensorNotFound { .. }), "{err}");
    assert!(err.to_string().contains("blk.3.ffn_up.weight"), "{err}");
}

#[test]
fn tensor_of_the_wrong_shape() {
    let q = smollm2().tensor("blk.0.attn_q.weight").expect("attn_q");
    let err = variant(
        |_| {},
        |name, t| {
            Some(if name == "blk.0.attn_k.weight" {
                q.clone()
            } else {
                t
            })
        },
    )
    .unwrap_err();
    assert!(matches!(err, ModelError::TensorShape { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "tensor `blk.0.attn_k.weight`: expected shape [576, 192], found [576, 576]"
    );
}

#[test]
fn unsupported_rope_scaling() {
    let err = variant(|m| drop(m.set("llama.rope.scaling.type", "longrope")), keep).unwrap_err();
    assert!(
        err.to_string()
            .contains("unsupported RoPE scaling `longrope`"),
        "{err}"
    );
}

#[test]
fn yarn_scaling_is_read_from_metadata() {
    let model = variant(
        |m| {
            m.set("llama.rope.scaling.type", "yarn");
            m.set("llama.rope.scaling.factor", 4.0f32);
            m.set("llama.rope.scaling.original_context_length", 2048u32);
        },
        keep,
    )
    .expect("a YaRN model loads");
    let rope = &model.hparams().layers[0].rope;
    assert_eq!(rope.freq_scale, 0.25);
    assert_eq!(rope.ext_factor, 1.0);
    assert_eq!(rope.n_ctx_orig, 2048);
    // get_mscale(4) / (1 + 0.1 ln 4): the magnitude correction is applied once, in the table.
    assert!(
        (rope.attn_factor - 1.0).abs() < 1e-6,
        "{}",
        rope.attn_factor
    );
    let mut state = model.new_state(8, 1);
    let logits = model
        .forward(
            &Batch::prompt(&[19556, 28], 0, 0),
            &mut state,
            &ThreadPool::new(2),
        )
        .expect("forward");
    assert!(logits.iter().all(|v| v.is_finite()));
}

#[test]
fn linear_scaling_is_read_from_metadata() {
    let model = variant(
        |m| {
            m.set("llama.rope.scaling.type", "linear");
            m.set("llama.rope.scaling.factor", 2.0f32);
        },
        keep,
    )
    .expect("a linearly scaled model loads");
    assert_eq!(model.hparams().layers[0].rope.freq_scale, 0.5);
    assert_eq!(model.hparams().layers[0].rope.ext_factor, 0.0);
}

#[test]
fn a_position_gap_is_an_error_and_clear_starts_over() {
    let model = variant(|_| {}, keep).expect("the copy loads");
    let pool = ThreadPool::new(2);
    let mut state = model.new_state(8, 1);
    model
        .forward(&Batch::prompt(&[19556, 28], 0, 0), &mut state, &pool)
        .expect("positions 0, 1");
    // Position 3 would attend to position 2, which was never run.
    let err = model
        .forward(&Batch::one(957, 3, 0), &mut state, &pool)
        .unwrap_err();
    assert!(
        err.to_string().contains("position 2 of sequence 0"),
        "{err}"
    );
    assert!(err.to_string().contains("never stored"), "{err}");
    state.clear(0);
    let err = model
        .forward(&Batch::one(957, 1, 0), &mut state, &pool)
        .unwrap_err();
    assert!(
        err.to_string().contains("position 0 of sequence 0"),
        "{err}"
    );
    let again = model
        .forward(&Batch::prompt(&[19556, 28], 0, 0), &mut state, &pool)
        .expect("a new sequence in its place");
    let mut fresh = model.new_state(8, 1);
    let want = model
        .forward(&Batch::prompt(&[19556, 28], 0, 0), &mut fresh, &pool)
        .expect("fresh");
    assert_eq!(again, want);
}
