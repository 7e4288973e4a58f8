//! Stop rules of `TextGenerator` on the real model (SmolLM2): stop strings spanning 2 to 4
//! tokens, a stop string at the very start, emoji and CJK characters split across tokens,
//! end-of-generation and stop tokens, min tokens, echo, log-probabilities, prompt errors and
//! the KV cache kept between chat turns.
//!
//! The stop-string and split-character tests make the model "generate" a chosen text: a
//! scripted sampler (any `Sampler` plugs into the builder) returns the text's tokens one by
//! one while the model runs every step as usual.

use std::ops::ControlFlow;
use std::sync::OnceLock;

use ziglama_infer::generator::{GenerationConfig, GenerationError, Prompt, TextGenerator};
use ziglama_infer::model::catalog::KnownModel;
use ziglama_infer::model::chat::Message;
use ziglama_infer::model::model::Model;
use ziglama_infer::sampling::{Candidates, Sampler, SamplingError, TokenId};
use ziglama_infer::stream::{FlushPolicy, StopReason};

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::load(KnownModel::SmolLM2.ensure().expect("SmolLM2")).expect("load"))
}

/// Returns the tokens of a script in order, whatever the logits; `<|endoftext|>` after it.
struct Script {
    tokens: Vec<u32>,
    at: usize,
}

impl Sampler for Script {
    fn name(&self) -> &str {
        "script"
    }
    fn select(&mut self, candidates: &mut Candidates) -> Result<TokenId, SamplingError> {
        let token = self.tokens.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        let index = candidates.iter().position(|c| c.id == token);
        candidates.set_selected(index);
        Ok(token)
    }
    fn reset(&mut self) {
        self.at = 0;
    }
}

fn scripted(tokens: Vec<u32>, config: GenerationConfig) -> TextGenerator<'static> {
    TextGenerator::builder(model())
        .sampler(Script { tokens, at: 0 })
        .config(config)
        .context_size(96)
        .threads(2)
        .build()
        .unwrap()
}

fn encode(text: &str) -> Vec<u32> {
    let g = TextGenerator::builder(model())
        .context_size(8)
        .threads(1)
        .build()
        .unwrap();
    g.tokenizer().encode(text, false, false).unwrap()
}

/// Streams the generation under every flush policy; checks each stream against the whole
/// text and returns it.
fn run_all_policies(
    tokens: &[u32],
    config: GenerationConfig,
    prompt: &str,
) -> (String, StopReason) {
    let mut whole = scripted(tokens.to_vec(), config.clone());
    let want = whole.generate(prompt).unwrap();
    for policy in FlushPolicy::ALL {
        let mut g = scripted(tokens.to_vec(), config.clone().with_flush_policy(policy));
        let mut chunks = Vec::new();
        let result = g
            .stream(prompt, |chunk| {
                chunks.push(chunk.to_string());
                ControlFlow::Continue(())
            })
            .unwrap();
        assert!(
            chunks
                .iter()
                .all(|c| !c.is_empty() && !c.contains('\u{FFFD}')),
            "{chunks:?}"
        );
        assert_eq!(chunks.concat(), want.text, "{policy:?}");
        assert_eq!(result.text, want.text);
        assert_eq!(result.stop_reason, want.stop_reason);
    }
    (want.text, want.stop_reason)
}

#[test]
fn stop_strings_spanning_two_to_four_tokens_end_the_text_before_them() {
    let text = "The quick brown fox jumps over the lazy dog and keeps running far away.";
    let tokens = encode(text);
    let pieces: Vec<String> = tokens
        .iter()
        .map(|&t| String::from_utf8(encode_piece(t)).unwrap())
        .collect();
    assert_eq!(pieces.concat(), text);
    for span in 2..=4 {
        // From the last character of token 5 to the first of token 5 + span - 1.
        let first = 5;
        let start: usize =
            pieces[..first].iter().map(String::len).sum::<usize>() + pieces[first].len() - 1;
        let end: usize = pieces[..first + span - 1]
            .iter()
            .map(String::len)
            .sum::<usize>()
            + 1;
        let stop = &text[start..end];
        let config = GenerationConfig::default()
            .with_max_tokens(64)
            .with_stop_strings(["never appears", stop]);
        let (got, reason) = run_all_policies(&tokens, config, "Tell me:");
        assert_eq!(
            got,
            &text[..text.find(stop).unwrap()],
            "span {span}: {stop:?}"
        );
        assert_eq!(reason, StopReason::StopString(1), "span {span}");
    }
}

fn encode_piece(token: u32) -> Vec<u8> {
    static G: OnceLock<ziglama_infer::model::tokenizer::Tokenizer> = OnceLock::new();
    G.get_or_init(|| ziglama_infer::model::tokenizer::Tokenizer::from_gguf(model().gguf()).unwrap())
        .token_to_piece(token)
        .to_vec()
}

#[test]
fn a_stop_string_at_the_very_start_gives_no_text() {
    let tokens = encode("STOP right there, nothing follows.");
    let config = GenerationConfig::default().with_stop_strings(["STOP"]);
    let mut g = scripted(tokens.clone(), config.clone());
    let mut delivered = Vec::new();
    let result = g
        .stream("Hello", |chunk| {
            delivered.push(chunk.to_string());
            ControlFlow::Continue(())
        })
        .unwrap();
    assert!(delivered.is_empty(), "{delivered:?}");
    assert_eq!(result.text, "");
    assert_eq!(result.stop_reason, StopReason::StopString(0));
    assert_eq!(run_all_policies(&tokens, config, "Hello").0, "");
}

#[test]
fn emoji_and_cjk_split_across_tokens_stream_as_whole_characters() {
    let text = "Hi 😀 and 你好世界, ok 🎉 done";
    let tokens = encode(text);
    let split = tokens
        .iter()
        .filter(|&&t| std::str::from_utf8(&encode_piece(t)).is_err())
        .count();
    assert!(
        split >= 2,
        "the vocabulary should split some of these characters"
    );
    let config = GenerationConfig::default().with_max_tokens(64);
    let (got, reason) = run_all_policies(&tokens, config.clone(), "Say:");
    assert_eq!(got, text);
    // The script ends with <|endoftext|>, an end-of-generation token.
    assert_eq!(reason, StopReason::EndOfGeneration(0));

    // A stop string that is one of the split characters.
    let (got, reason) = run_all_policies(&tokens, config.with_stop_strings(["🎉"]), "Say:");
    assert_eq!(got, "Hi 😀 and 你好世界, ok ");
    assert_eq!(reason, StopReason::StopString(0));
}

#[test]
fn end_of_generation_and_stop_tokens_end_the_text_without_theirs() {
    let mut tokens = encode("Hello there");
    let hello = tokens.len();
    tokens.push(2); // <|im_end|>
    tokens.extend(encode(" ignored"));
    let result = scripted(tokens.clone(), GenerationConfig::default())
        .generate("Hi")
        .unwrap();
    assert_eq!(result.text, "Hello there");
    assert_eq!(result.stop_reason, StopReason::EndOfGeneration(2));
    assert_eq!(result.tokens.len(), hello);

    let stop_at = tokens[1];
    let result = scripted(
        tokens.clone(),
        GenerationConfig::default().with_stop_tokens([stop_at]),
    )
    .generate("Hi")
    .unwrap();
    assert_eq!(result.stop_reason, StopReason::StopToken(stop_at));
    assert_eq!(result.tokens, tokens[..1]);

    let result = scripted(
        tokens.clone(),
        GenerationConfig::default()
            .ignoring_eos()
            .with_max_tokens(hello + 2),
    )
    .generate("Hi")
    .unwrap();
    assert_eq!(result.text, "Hello there<|im_end|> ignored");
    assert_eq!(result.stop_reason, StopReason::MaxTokens);
}

fn real(config: GenerationConfig) -> TextGenerator<'static> {
    TextGenerator::builder(model())
        .config(config)
        .context_size(160)
        .threads(2)
        .build()
        .unwrap()
}

const SAY_YES: &str =
    "<|im_start|>user\nAnswer with one word: is water wet?<|im_end|>\n<|im_start|>assistant\n";

#[test]
fn min_tokens_hold_off_the_end_of_generation() {
    let short = real(GenerationConfig::greedy().with_max_tokens(40))
        .generate(SAY_YES)
        .unwrap();
    assert!(
        matches!(short.stop_reason, StopReason::EndOfGeneration(_)),
        "{short:?}"
    );
    let n = short.tokens.len();
    assert!(n < 10, "{n} tokens: {:?}", short.text);
    let long = real(
        GenerationConfig::greedy()
            .with_max_tokens(40)
            .with_min_tokens(n + 5),
    )
    .generate(SAY_YES)
    .unwrap();
    assert!(long.tokens.len() >= n + 5, "{long:?}");
    assert_eq!(long.tokens[..n], short.tokens[..]);
}

#[test]
fn echo_log_probabilities_and_timings() {
    let prompt = "The capital of France is";
    let mut g = real(
        GenerationConfig::greedy()
            .with_max_tokens(8)
            .with_echo(true)
            .with_logprobs(3),
    );
    let mut first = None;
    let result = g
        .stream(prompt, |chunk| {
            first.get_or_insert_with(|| chunk.to_string());
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(first.as_deref(), Some(prompt));
    assert!(result.text.starts_with(prompt) && result.text.len() > prompt.len());
    assert_eq!(result.logprobs.len(), result.tokens.len());
    for (lp, &token) in result.logprobs.iter().zip(&result.tokens) {
        assert_eq!(lp.token, token);
        let top = lp
            .top
            .as_ref()
            .expect("the chain records its top log-probabilities");
        assert_eq!(top.raw.len(), 3);
        // Greedy: the token is the most probable one of the raw distribution.
        assert_eq!(top.raw[0].id, token);
        assert!((top.raw[0].logprob - lp.logprob).abs() < 1e-4);
        assert!(lp.logprob <= 0.0);
    }
    let t = &result.timings;
    assert_eq!(t.prompt_tokens, result.prompt_tokens.len());
    assert_eq!(t.token_latencies.len(), 8);
    assert!(t.time_to_first_token.unwrap() >= t.prompt_time);
    assert!(t.time_to_first_token.unwrap() <= t.total);
    assert!(t.prompt_tokens_per_second().unwrap() > 0.0);
    assert!(t.generated_tokens_per_second().unwrap() > 0.0);
}

#[test]
fn prompts_that_cannot_run_are_errors() {
    let mut g = TextGenerator::builder(model())
        .context_size(8)
        .threads(1)
        .build()
        .unwrap();
    assert!(matches!(
        g.generate(Prompt::Tokens(vec![])),
        Err(GenerationError::EmptyPrompt)
    ));
    let long = "one two three four five six seven eight nine ten eleven";
    assert!(matches!(
        g.generate(long),
        Err(GenerationError::PromptTooLong { n_ctx: 8, .. })
    ));
    assert!(matches!(
        g.generate(Prompt::Tokens(vec![u32::MAX])),
        Err(GenerationError::Model(_))
    ));
    let bad = GenerationConfig::default()
        .with_max_tokens(2)
        .with_min_tokens(3);
    assert!(TextGenerator::builder(model()).config(bad).build().is_err());
}

#[test]
fn a_chat_turn_reuses_the_cache_of_the_previous_one() {
    let config = GenerationConfig::greedy().with_max_tokens(12);
    let mut g = real(config.clone());
    let mut chat = vec![Message::user("What is the capital of France?")];
    let first = g.generate(chat.clone()).unwrap();
    chat.push(Message::assistant(first.text.clone()));
    chat.push(Message::user("And of Italy?"));
    let second = g.generate(chat.clone()).unwrap();
    assert!(
        second.timings.prompt_tokens < second.prompt_tokens.len() / 2,
        "{} of {} prompt tokens run again",
        second.timings.prompt_tokens,
        second.prompt_tokens.len()
    );
    let fresh = real(config).generate(chat).unwrap();
    assert_eq!(fresh.prompt_tokens, second.prompt_tokens);
    assert_eq!(fresh.timings.prompt_tokens, fresh.prompt_tokens.len());
    assert_eq!(fresh.tokens[..6], second.tokens[..6]);
}
