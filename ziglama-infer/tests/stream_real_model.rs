//! Streaming real generations: SmolLM2 samples 50 seeded continuations (temperature
//! sampling with a seeded generator, the model as a [`TokenSource`]), streamed live through
//! a bounded buffer to a consumer thread. For every seed the streamed text, and the same
//! tokens replayed under every flush policy and buffer size, equal the non-streamed text
//! (the lossy decoding of the tokens, cut before the first stop string) byte for byte.

use std::ops::ControlFlow;
use std::thread;

use ziglama_infer::model::catalog::KnownModel;
use ziglama_infer::model::model::{Batch, Model, State};
use ziglama_infer::model::tokenizer::Tokenizer;
use ziglama_infer::model::ModelError;
use ziglama_infer::stream::{
    FlushPolicy, RecordedTokens, StopRules, StopStrings, StreamingGenerator, TokenBuffer,
    TokenSource,
};
use ziglama_tensor::ThreadPool;

/// Prompts that invite emoji, CJK and punctuation.
const PROMPTS: &[&str] = &[
    "<|im_start|>user\nReply with three emoji and a short Japanese greeting.<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nWrite one sentence in Chinese about tea, then one in English.<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nList two fruits, one per line, each with an emoji.<|im_end|>\n<|im_start|>assistant\n",
    "The recipe, step by step:\n1.",
    "日本の首都は",
];

const MAX_TOKENS: usize = 20;

/// A seeded draw from softmax(logits / temperature) (SplitMix64).
struct Sampler {
    state: u64,
    temperature: f32,
}

impl Sampler {
    fn next_f64(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn sample(&mut self, logits: &[f32]) -> u32 {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let weights: Vec<f64> = logits
            .iter()
            .map(|&l| (((l - max) / self.temperature) as f64).exp())
            .collect();
        let mut r = self.next_f64() * weights.iter().sum::<f64>();
        for (i, w) in weights.iter().enumerate() {
            r -= w;
            if r <= 0.0 {
                return i as u32;
            }
        }
        (weights.len() - 1) as u32
    }
}

/// The model and a sampler as a token source: prefill the prompt, then one token per call.
struct ModelSource<'m> {
    model: &'m Model,
    state: State,
    pool: &'m ThreadPool,
    sampler: Sampler,
    logits: Vec<f32>,
    pos: usize,
}

impl<'m> ModelSource<'m> {
    fn new(model: &'m Model, pool: &'m ThreadPool, prompt: &[u32], seed: u64) -> ModelSource<'m> {
        let mut state = model.new_state(prompt.len() + MAX_TOKENS + 1, 1);
        let logits = model
            .forward(&Batch::prompt(prompt, 0, 0), &mut state, pool)
            .expect("the prompt runs");
        ModelSource {
            model,
            state,
            pool,
            sampler: Sampler {
                state: seed,
                temperature: 1.0,
            },
            logits,
            pos: prompt.len(),
        }
    }
}

impl TokenSource for ModelSource<'_> {
    type Error = ModelError;
    fn next_token(&mut self) -> Result<Option<u32>, ModelError> {
        if self.pos >= self.state.n_ctx() {
            return Ok(None);
        }
        let token = self.sampler.sample(&self.logits);
        self.logits =
            self.model
                .forward(&Batch::one(token, self.pos, 0), &mut self.state, self.pool)?;
        self.pos += 1;
        Ok(Some(token))
    }
}

#[test]
fn fifty_sampled_generations_stream_to_the_non_streamed_text() {
    let model = Model::load(
        KnownModel::SmolLM2
            .ensure()
            .expect("the model must be fetchable"),
    )
    .expect("the model must load");
    let tok = Tokenizer::from_gguf(model.gguf()).unwrap();
    let pool = ThreadPool::new(1);
    let capacities = [1, 2, 7, 64];
    let mut split_characters = 0;
    for seed in 0..50u64 {
        let prompt = tok
            .encode(PROMPTS[seed as usize % PROMPTS.len()], false, true)
            .unwrap();
        let rules = StopRules::new()
            .with_max_tokens(MAX_TOKENS)
            .with_stop_strings(["\n\n", "。"]);

        // Streamed live from the model to a consumer thread, policy and buffer by seed.
        let policy = FlushPolicy::ALL[seed as usize % 4];
        let capacity = capacities[(seed as usize / 4) % 4];
        let generator = StreamingGenerator::new(&tok, rules.clone()).with_flush_policy(policy);
        let (producer, consumer) = TokenBuffer::bounded(capacity);
        let (live, chunks) = thread::scope(|s| {
            let source = ModelSource::new(&model, &pool, &prompt, seed);
            let worker = s.spawn(|| generator.run_into(source, producer));
            let chunks: Vec<String> = consumer.iter().collect();
            (worker.join().unwrap().unwrap(), chunks)
        });
        split_characters += live
            .tokens
            .iter()
            .filter(|&&id| std::str::from_utf8(tok.token_to_piece(id)).is_err())
            .count();

        // The non-streamed text of these tokens, computed independently of the stream: the
        // lossy decoding, cut before the first stop string.
        let whole = tok.decode_lossy(&live.tokens);
        let cut = StopStrings::new(rules.stop_strings().iter().cloned()).find_in(&whole);
        let expected = &whole[..cut.map_or(whole.len(), |m| m.start)];
        assert_eq!(live.text, expected, "seed {seed}");
        assert_eq!(
            chunks.concat(),
            expected,
            "seed {seed} {policy:?} {capacity}"
        );
        if !expected.contains('\u{FFFD}') {
            assert!(chunks.iter().all(|c| !c.contains('\u{FFFD}')));
        }

        // The same tokens under every policy, by callback and through every buffer size.
        let mut tokens = live.tokens.clone();
        if let Some(id) = live.stop_reason.token() {
            tokens.push(id);
        }
        for policy in FlushPolicy::ALL {
            let generator = StreamingGenerator::new(&tok, rules.clone()).with_flush_policy(policy);
            let mut streamed = String::new();
            let done = generator
                .run(RecordedTokens::new(tokens.clone()), |c| {
                    streamed.push_str(c);
                    ControlFlow::Continue(())
                })
                .unwrap();
            assert_eq!(done, live);
            assert_eq!(streamed, live.text, "seed {seed} {policy:?}");
            for capacity in capacities {
                let (producer, consumer) = TokenBuffer::bounded(capacity);
                let chunks = thread::scope(|s| {
                    let worker = s.spawn(|| {
                        generator.run_into(RecordedTokens::new(tokens.clone()), producer)
                    });
                    let chunks: Vec<String> = consumer.iter().collect();
                    worker.join().unwrap().unwrap();
                    chunks
                });
                assert_eq!(
                    chunks.concat(),
                    live.text,
                    "seed {seed} {policy:?} {capacity}"
                );
            }
        }
    }
    // The generations did split characters across tokens.
    assert!(split_characters > 0, "no character was split across tokens");
}
