//! The streaming generator over seeded "sampled" token sources on the real tokenizers: for
//! every seed, flush policy and buffer size, the concatenated stream equals the
//! non-streamed text byte for byte; the stop rules (end-of-generation tokens, stop tokens,
//! max tokens, stop strings, a full context) and cancellation (by callback, by the consumer,
//! by a flag raised on another thread) end it as they should.

use std::ops::ControlFlow;
use std::thread;
use std::time::Duration;

use ziglama_infer::model::catalog::KnownModel;
use ziglama_infer::model::gguf::GgufFile;
use ziglama_infer::model::tokenizer::Tokenizer;
use ziglama_infer::stream::{
    Cancellation, FlushPolicy, RecordedTokens, StopReason, StopRules, StreamStatus,
    StreamingGenerator, TokenBuffer,
};

fn tokenizer(model: KnownModel) -> Tokenizer {
    let path = model.ensure().expect("the model must be fetchable");
    let file = GgufFile::open(path).expect("the model must open");
    Tokenizer::from_gguf(&file).expect("the tokenizer must build")
}

/// A small xorshift generator: reproducible without dependencies.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TEXTS: &[&str] = &[
    "Sure! Here is a list:\n1. apples 🍎\n2. pears 🍐\n\nAnything else? Ask me.",
    "日本語の文章です。次の文！ 中文也可以。 한국어 문장. 👨‍👩‍👧‍👦 🇫🇷",
    "fn main() {\n    let x = 3.14; // π\n}\n```\nDone. «Fin.» \"Quoted.\" Next",
    "𓀀 𠀋 🫠 ꙮ rare characters, written as bytes by Gemma's byte fallback.",
];

/// A seeded stand-in for sampling: the tokens of a real text from a random point, with
/// random tokens mixed in, and now and then an end-of-generation token.
fn sampled_tokens(tok: &Tokenizer, seed: u64) -> Vec<u32> {
    let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut out = Vec::new();
    let eog: Vec<u32> = tok.eog_tokens().collect();
    while out.len() < 60 {
        let ids = tok
            .encode(TEXTS[rng.below(TEXTS.len())], false, false)
            .unwrap();
        let start = rng.below(ids.len());
        out.extend_from_slice(&ids[start..]);
        match rng.below(10) {
            0 => out.push(eog[rng.below(eog.len())]),
            1..=3 => out.push(rng.below(tok.n_vocab()) as u32),
            _ => {}
        }
    }
    out
}

/// Stop rules for a seed: sometimes a limit, a stop token, stop strings from the texts.
fn rules_for(tok: &Tokenizer, tokens: &[u32], seed: u64) -> StopRules {
    let mut rng = XorShift(seed | 1);
    let mut rules = StopRules::new();
    if rng.below(3) == 0 {
        rules = rules.with_max_tokens(5 + rng.below(50));
    }
    if rng.below(4) == 0 {
        rules = rules.with_stop_tokens([tokens[rng.below(tokens.len())]]);
    }
    let text = tok.decode_lossy(tokens);
    let chars: Vec<char> = text.chars().collect();
    let stops: Vec<String> = (0..rng.below(3))
        .map(|_| {
            let start = rng.below(chars.len());
            let len = 1 + rng.below(5);
            chars[start..(start + len).min(chars.len())]
                .iter()
                .collect()
        })
        .collect();
    rules.with_stop_strings(stops)
}

#[test]
fn streamed_equals_non_streamed_for_every_policy_and_buffer_size() {
    let mut reasons = std::collections::BTreeMap::new();
    for (model, seeds) in [(KnownModel::SmolLM2, 0..40), (KnownModel::Gemma3, 40..60)] {
        let tok = tokenizer(model);
        for seed in seeds {
            let tokens = sampled_tokens(&tok, seed);
            let rules = rules_for(&tok, &tokens, seed);
            let reference = StreamingGenerator::new(&tok, rules.clone())
                .generate(RecordedTokens::new(tokens.clone()))
                .unwrap();
            *reasons
                .entry(format!("{:?}", reference.stop_reason).replace(char::is_numeric, ""))
                .or_insert(0) += 1;
            for policy in FlushPolicy::ALL {
                let generator =
                    StreamingGenerator::new(&tok, rules.clone()).with_flush_policy(policy);
                // By callback.
                let mut streamed = String::new();
                let done = generator
                    .run(RecordedTokens::new(tokens.clone()), |chunk| {
                        assert!(!chunk.is_empty());
                        streamed.push_str(chunk);
                        ControlFlow::Continue(())
                    })
                    .unwrap();
                assert_eq!(done, reference, "{model:?} seed {seed} {policy:?}");
                assert_eq!(streamed, reference.text, "{model:?} seed {seed} {policy:?}");
                // By iterator, pulled in this thread.
                let mut chunks = generator.chunks(RecordedTokens::new(tokens.clone()));
                let pulled: Vec<String> = chunks.by_ref().map(Result::unwrap).collect();
                assert_eq!(chunks.into_generated(), reference);
                assert_eq!(
                    pulled.concat(),
                    reference.text,
                    "{model:?} seed {seed} {policy:?}"
                );
                // By iterator, through buffers of every size, to a slower consumer.
                for capacity in [1, 2, 7, 64] {
                    let (producer, consumer) = TokenBuffer::bounded(capacity);
                    let (done, chunks) = thread::scope(|s| {
                        let source = RecordedTokens::new(tokens.clone());
                        let worker = s.spawn(|| generator.run_into(source, producer));
                        let chunks: Vec<String> = consumer
                            .iter()
                            .inspect(|_| {
                                if seed % 10 == 0 {
                                    thread::sleep(Duration::from_micros(200));
                                }
                            })
                            .collect();
                        (worker.join().unwrap().unwrap(), chunks)
                    });
                    assert_eq!(done, reference);
                    assert_eq!(chunks.concat(), reference.text, "capacity {capacity}");
                    assert_eq!(
                        consumer.status(),
                        StreamStatus::Finished(reference.stop_reason)
                    );
                }
            }
        }
    }
    // The seeds reach every kind of stop.
    for kind in [
        "EndOfGeneration()",
        "StopString()",
        "MaxTokens",
        "ContextFull",
    ] {
        assert!(reasons.contains_key(kind), "no {kind} among {reasons:?}");
    }
}

#[test]
fn token_rules() {
    let tok = tokenizer(KnownModel::SmolLM2);
    let hello = tok.encode("Hello world", false, false).unwrap();
    let eos = tok.eos().unwrap(); // <|im_end|>
    let mut tokens = hello.clone();
    tokens.push(eos);
    tokens.extend(&hello);

    let run = |rules: StopRules| {
        StreamingGenerator::new(&tok, rules)
            .generate(RecordedTokens::new(tokens.clone()))
            .unwrap()
    };
    let done = run(StopRules::new());
    assert_eq!(done.text, "Hello world");
    assert_eq!(done.tokens, hello);
    assert_eq!(done.stop_reason, StopReason::EndOfGeneration(eos));

    let done = run(StopRules::new().ignoring_end_of_generation());
    assert_eq!(done.text, "Hello world<|im_end|>Hello world");
    assert_eq!(done.stop_reason, StopReason::ContextFull);

    let done = run(StopRules::new().with_stop_tokens([hello[1]]));
    assert_eq!(done.tokens, &hello[..1]);
    assert_eq!(done.stop_reason, StopReason::StopToken(hello[1]));

    let done = run(StopRules::new().with_max_tokens(1));
    assert_eq!(done.tokens, &hello[..1]);
    assert_eq!(done.stop_reason, StopReason::MaxTokens);

    let done = run(StopRules::new().with_max_tokens(0));
    assert_eq!(
        (done.text.as_str(), done.stop_reason),
        ("", StopReason::MaxTokens)
    );

    // A stop string at the very start: nothing is delivered.
    let mut chunks = 0;
    let done = StreamingGenerator::new(&tok, StopRules::new().with_stop_strings(["Hel"]))
        .run(RecordedTokens::new(tokens.clone()), |_| {
            chunks += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!((done.text.as_str(), chunks), ("", 0));
    assert_eq!(done.stop_reason, StopReason::StopString(0));
}

#[test]
fn cancellation_by_callback() {
    let tok = tokenizer(KnownModel::SmolLM2);
    let tokens = tok.encode(&TEXTS[0].repeat(5), false, false).unwrap();
    for policy in FlushPolicy::ALL {
        let mut chunks = Vec::new();
        let done = StreamingGenerator::new(&tok, StopRules::new())
            .with_flush_policy(policy)
            .run(RecordedTokens::new(tokens.clone()), |chunk| {
                chunks.push(chunk.to_string());
                if chunks.len() == 3 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .unwrap();
        assert_eq!(done.stop_reason, StopReason::Cancelled);
        assert!(done.tokens.len() < tokens.len() / 2, "{policy:?}");
        // The text held back when the callback stopped came in one last chunk.
        assert!(chunks.len() <= 4);
        assert_eq!(chunks.concat(), done.text);
        assert_eq!(done.text, tok.decode_lossy(&done.tokens));
    }
}

#[test]
fn cancelling_a_pulled_iteration() {
    let tok = tokenizer(KnownModel::SmolLM2);
    let tokens = tok.encode(&TEXTS[0].repeat(5), false, false).unwrap();
    let generator =
        StreamingGenerator::new(&tok, StopRules::new()).with_flush_policy(FlushPolicy::Newline);
    let mut chunks = generator.chunks(RecordedTokens::new(tokens.clone()));
    let mut pulled: Vec<String> = chunks.by_ref().take(2).map(Result::unwrap).collect();
    assert_eq!(chunks.stop_reason(), None);
    pulled.extend(chunks.cancel());
    assert_eq!(chunks.next().map(Result::unwrap), None);
    let done = chunks.into_generated();
    assert_eq!(done.stop_reason, StopReason::Cancelled);
    assert_eq!(pulled.concat(), done.text);
    assert_eq!(done.text, tok.decode_lossy(&done.tokens));
    assert!(done.tokens.len() < tokens.len() / 2);
}

#[test]
fn cancellation_by_flag_from_another_thread_and_by_consumer() {
    let tok = tokenizer(KnownModel::SmolLM2);
    let tokens = tok.encode(&TEXTS[1].repeat(20), false, false).unwrap();

    // A flag raised on another thread once the consumer has seen four chunks.
    let cancel = Cancellation::new();
    let generator =
        StreamingGenerator::new(&tok, StopRules::new().with_cancellation(cancel.clone()));
    let (producer, consumer) = TokenBuffer::bounded(2);
    let (done, received) = thread::scope(|s| {
        let worker = s.spawn(|| generator.run_into(RecordedTokens::new(tokens.clone()), producer));
        let mut received: Vec<String> = consumer.iter().take(4).collect();
        let remote = cancel.clone();
        thread::spawn(move || remote.cancel()).join().unwrap();
        received.extend(consumer.iter());
        (worker.join().unwrap().unwrap(), received)
    });
    assert_eq!(done.stop_reason, StopReason::Cancelled);
    assert!(consumer.status().is_cancelled());
    assert!(done.tokens.len() < tokens.len() / 4);
    assert_eq!(received.concat(), done.text, "nothing lost, nothing twice");

    // The consumer closing the stream.
    let generator = StreamingGenerator::new(&tok, StopRules::new());
    let (producer, consumer) = TokenBuffer::bounded(1);
    let done = thread::scope(|s| {
        let worker = s.spawn(|| generator.run_into(RecordedTokens::new(tokens.clone()), producer));
        let first: Vec<String> = consumer.iter().take(3).collect();
        assert_eq!(first.len(), 3);
        consumer.close();
        worker.join().unwrap().unwrap()
    });
    assert_eq!(done.stop_reason, StopReason::Cancelled);
    assert!(done.tokens.len() < tokens.len() / 4);
}

#[test]
fn a_failing_source_fails_the_stream() {
    let tok = tokenizer(KnownModel::SmolLM2);
    let generator = StreamingGenerator::new(&tok, StopRules::new());
    let mut calls = 0;
    let source = || {
        calls += 1;
        if calls < 4 {
            Ok(Some(tok.encode("a", false, false).unwrap()[0]))
        } else {
            Err("the forward pass failed")
        }
    };
    let mut chunks = generator.chunks(source);
    assert_eq!(chunks.next(), Some(Ok("a".to_string())));
    assert_eq!(chunks.next(), Some(Ok("a".to_string())));
    assert_eq!(chunks.next(), Some(Ok("a".to_string())));
    assert_eq!(chunks.next(), Some(Err("the forward pass failed")));
    assert_eq!(chunks.next(), None);
    assert_eq!(chunks.into_generated().text, "aaa");

    let mut calls = 0;
    let source = || {
        calls += 1;
        if calls < 4 {
            Ok(Some(tok.encode("a", false, false).unwrap()[0]))
        } else {
            Err("the forward pass failed")
        }
    };
    let (producer, consumer) = TokenBuffer::bounded(8);
    let result = generator.run_into(source, producer);
    assert_eq!(result, Err("the forward pass failed"));
    assert_eq!(consumer.iter().collect::<Vec<_>>(), ["a", "a", "a"]);
    assert_eq!(
        consumer.status(),
        StreamStatus::Failed("the forward pass failed".to_string())
    );
}
