//! Streaming through `TextGenerator` on the real model (SmolLM2): the concatenated stream
//! equals the non-streamed text byte for byte for 50 seeded sampled generations, over every
//! flush policy and every delivery (callback, iterator, consumer thread with buffers of 1, 3
//! and 16 chunks, the smallest with a consumer slower than the producer); cancellation
//! mid-stream from a callback, from another thread and by the consumer closing the stream.

use std::ops::ControlFlow;
use std::sync::OnceLock;
use std::time::Duration;

use ziglama_infer::generator::{GenerationConfig, GenerationResult, TextGenerator};
use ziglama_infer::model::catalog::KnownModel;
use ziglama_infer::model::model::Model;
use ziglama_infer::sampling::{Preset, SamplingConfig};
use ziglama_infer::stream::{Cancellation, FlushPolicy, StopReason, StreamStatus, TokenBuffer};

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::load(KnownModel::SmolLM2.ensure().expect("SmolLM2")).expect("load"))
}

fn generator(config: GenerationConfig) -> TextGenerator<'static> {
    TextGenerator::builder(model())
        .config(config)
        .context_size(128)
        .threads(2)
        .build()
        .unwrap()
}

const PROMPTS: [&str; 5] = [
    "Once upon a time",
    "<|im_start|>user\nSay hello in Chinese, Japanese and with emoji.<|im_end|>\n<|im_start|>assistant\n",
    "The three best things about Paris are",
    "def fibonacci(n):",
    "<|im_start|>user\nWrite two short sentences about cats.<|im_end|>\n<|im_start|>assistant\n",
];

/// The seed's configuration: a hot sampler (varied text), stop strings on odd seeds.
fn config(seed: u32, policy: FlushPolicy) -> GenerationConfig {
    let sampling = SamplingConfig {
        temperature: 1.3,
        ..SamplingConfig::preset(Preset::Balanced)
    };
    let mut config = GenerationConfig::default()
        .with_sampling(sampling)
        .with_seed(seed)
        .with_max_tokens(20)
        .with_flush_policy(policy);
    if seed % 2 == 1 {
        config = config.with_stop_strings([". ", "\n\n", "!"]);
    }
    config
}

/// Delivers `prompt`'s generation by `mode` and returns the concatenated chunks and result.
fn streamed(
    generator: &mut TextGenerator<'_>,
    prompt: &str,
    mode: usize,
) -> (String, GenerationResult) {
    match mode {
        0 => {
            let mut text = String::new();
            let result = generator
                .stream(prompt, |chunk| {
                    assert!(!chunk.is_empty());
                    text.push_str(chunk);
                    ControlFlow::Continue(())
                })
                .unwrap();
            (text, result)
        }
        1 => {
            let mut chunks = generator.chunks(prompt).unwrap();
            let text: String = chunks.by_ref().map(Result::unwrap).collect();
            (text, chunks.into_result())
        }
        _ => {
            let capacity = [1, 3, 16][mode - 2];
            let (producer, consumer) = TokenBuffer::bounded(capacity);
            std::thread::scope(|s| {
                let worker = s.spawn(|| generator.stream_into(prompt, producer));
                let mut text = String::new();
                for chunk in consumer.iter() {
                    if capacity == 1 {
                        // A consumer slower than the producer: the producer waits.
                        std::thread::sleep(Duration::from_millis(15));
                    }
                    text.push_str(&chunk);
                }
                let result = worker.join().unwrap().unwrap();
                assert_eq!(
                    consumer.status(),
                    StreamStatus::Finished(result.stop_reason)
                );
                (text, result)
            })
        }
    }
}

#[test]
fn fifty_seeded_generations_stream_exactly_their_text() {
    let mut stops = 0;
    for seed in 0..50u32 {
        let policy = FlushPolicy::ALL[(seed as usize / 5) % 4];
        let mode = seed as usize % 5;
        let prompt = PROMPTS[seed as usize % PROMPTS.len()];
        let mut g = generator(config(seed, policy));
        let whole = g.generate(prompt).unwrap();
        let (text, result) = streamed(&mut g, prompt, mode);
        assert_eq!(text, whole.text, "seed {seed}, {policy:?}, mode {mode}");
        assert_eq!(result.text, whole.text, "seed {seed}");
        assert_eq!(result.tokens, whole.tokens, "seed {seed}");
        assert_eq!(result.stop_reason, whole.stop_reason, "seed {seed}");
        // A fresh generator with the same seed makes the same text.
        if seed % 10 == 0 {
            let again = generator(config(seed, FlushPolicy::EveryToken))
                .generate(prompt)
                .unwrap();
            assert_eq!(again.tokens, whole.tokens, "seed {seed}");
        }
        if matches!(whole.stop_reason, StopReason::StopString(_)) {
            stops += 1;
        }
        assert_eq!(whole.timings.token_latencies.len(), whole.tokens.len());
    }
    assert!(
        stops >= 5,
        "only {stops} generations ended at a stop string"
    );
}

#[test]
fn a_callback_cancels_mid_stream_and_keeps_what_it_was_given() {
    let mut g = generator(config(3, FlushPolicy::EveryToken).with_max_tokens(60));
    let mut chunks = Vec::new();
    let result = g
        .stream("Once upon a time", |chunk| {
            chunks.push(chunk.to_string());
            if chunks.len() == 4 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(result.stop_reason, StopReason::Cancelled);
    assert!(chunks.len() <= 5, "{chunks:?}");
    assert_eq!(chunks.concat(), result.text);
    assert!(result.tokens.len() < 10);
}

#[test]
fn another_thread_cancels_mid_stream() {
    let cancel = Cancellation::new();
    let mut g = TextGenerator::builder(model())
        .config(
            GenerationConfig::greedy()
                .with_max_tokens(100)
                .ignoring_eos(),
        )
        .cancellation(cancel.clone())
        .context_size(128)
        .threads(2)
        .build()
        .unwrap();
    let (producer, consumer) = TokenBuffer::bounded(2);
    let (text, result) = std::thread::scope(|s| {
        let worker = s.spawn(|| g.stream_into("The capital of France is", producer));
        let mut text = String::new();
        for (i, chunk) in consumer.iter().enumerate() {
            text.push_str(&chunk);
            if i == 4 {
                cancel.cancel();
            }
        }
        (text, worker.join().unwrap().unwrap())
    });
    assert_eq!(result.stop_reason, StopReason::Cancelled);
    assert!(result.tokens.len() < 20, "{} tokens", result.tokens.len());
    assert_eq!(text, result.text);
    assert!(consumer.status().is_cancelled());

    // A raised flag stays raised: the next generation stops at once, until it is replaced.
    assert_eq!(g.generate("Hi").unwrap().stop_reason, StopReason::Cancelled);
    g.set_cancellation(None);
    assert_eq!(g.generate("Hi").unwrap().tokens.len(), 100);
}

#[test]
fn the_consumer_closing_the_stream_cancels_the_generation() {
    let mut g = generator(
        GenerationConfig::greedy()
            .with_max_tokens(100)
            .ignoring_eos(),
    );
    let (producer, consumer) = TokenBuffer::bounded(1);
    let result = std::thread::scope(|s| {
        let worker = s.spawn(|| g.stream_into("The capital of France is", producer));
        let first = consumer.pop();
        assert!(first.is_some());
        drop(consumer);
        worker.join().unwrap().unwrap()
    });
    assert_eq!(result.stop_reason, StopReason::Cancelled);
    assert!(result.tokens.len() < 10, "{} tokens", result.tokens.len());
}
