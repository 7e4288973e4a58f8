//! `TextGenerator` over another KV cache than the default: a caller's `State` with any
//! `KvCache` (here a contiguous f16 cache, and a q8_0 one) plugs in through the builder;
//! with the same storage it gives the default's tokens, and a second chat turn keeps the
//! cached prefix (removing the positions past it) as with the default cache.

use std::sync::OnceLock;

use ziglama_infer::generator::{GenerationConfig, TextGenerator};
use ziglama_infer::model::catalog::KnownModel;
use ziglama_infer::model::chat::Message;
use ziglama_infer::model::model::{ContiguousKvCache, KvType, LayeredKvCache, Model};
use ziglama_nn::KvCache;

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::load(KnownModel::SmolLM2.ensure().expect("SmolLM2")).expect("load"))
}

const N_CTX: usize = 160;

/// Two greedy chat turns: the replies' tokens, and the prompt tokens the second turn ran.
fn two_turns<C: KvCache + Sync>(mut g: TextGenerator<'_, C>) -> (Vec<u32>, Vec<u32>, usize) {
    let mut chat = vec![Message::user("What is the capital of France?")];
    let first = g.generate(chat.clone()).unwrap();
    chat.push(Message::assistant(first.text.clone()));
    chat.push(Message::user("And of Italy?"));
    let second = g.generate(chat).unwrap();
    (first.tokens, second.tokens, second.timings.prompt_tokens)
}

fn config() -> GenerationConfig {
    GenerationConfig::greedy().with_max_tokens(10)
}

#[test]
fn a_callers_state_with_any_kv_cache_plugs_in() {
    let m = model();
    let default = two_turns(
        TextGenerator::builder(m)
            .config(config())
            .context_size(N_CTX)
            .threads(2)
            .build()
            .unwrap(),
    );
    let n_layer = m.hparams().layers.len();
    let contiguous = ContiguousKvCache::new(n_layer, 1, N_CTX, m.kv_row_len());
    let g = TextGenerator::builder(m)
        .config(config())
        .state(m.new_state_with(contiguous))
        .threads(2)
        .build()
        .unwrap();
    assert_eq!(g.state().n_ctx(), N_CTX);
    let same = two_turns(g);
    assert_eq!(same, default);
    assert!(
        default.2 < 20,
        "the second turn ran {} prompt tokens",
        default.2
    );

    // A quantized cache: another storage, still a working generator.
    let q8 = LayeredKvCache::with_type(
        &m.hparams().windows(),
        1,
        N_CTX,
        m.kv_row_len(),
        KvType::Q8_0,
    )
    .unwrap();
    let g = TextGenerator::builder(m)
        .config(config())
        .state(m.new_state_with(q8))
        .threads(2)
        .build()
        .unwrap();
    let (first, second, rerun) = two_turns(g);
    assert!(!first.is_empty() && first.len() <= 10);
    assert!(!second.is_empty());
    assert!(rerun < 20, "the second turn ran {rerun} prompt tokens");
}
