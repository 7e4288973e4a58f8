//! The text generator: a model, its tokenizer, a sampler, a KV cache, stop rules and
//! streaming, put together.

use std::cell::RefCell;
use std::fmt;
use std::ops::ControlFlow;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use ziglama_model::chat::ChatTemplate;
use ziglama_model::model::{LayeredKvCache, Model, State};
use ziglama_model::tokenizer::{TokenAttr, Tokenizer};
use ziglama_nn::KvCache;
use ziglama_tensor::ThreadPool;

use crate::sampling::Sampler;
use crate::stream::{
    Cancellation, Generated, IncrementalDecoder, Producer, SpecialTokens, StopReason, StopRules,
    StreamingGenerator,
};

use super::contrastive_source::ContrastiveSource;
use super::source::{ModelSource, Record, SampledSource, Steps};
use super::{
    GenerationChunks, GenerationConfig, GenerationError, GenerationResult, Prompt,
    TextGeneratorBuilder, Timings,
};

/// Generates text with a model: tokenizes the prompt, runs it in one batch, then decodes
/// one token per step with a sampler (or contrastive search) until a stop rule fires,
/// delivering the text whole ([`generate`](Self::generate)), by callback
/// ([`stream`](Self::stream)), as an iterator ([`chunks`](Self::chunks)) or to a consumer
/// thread ([`stream_into`](Self::stream_into)). However it is delivered, the text is the
/// same, byte for byte.
///
/// The KV cache persists between generations: a prompt that starts with the tokens of the
/// previous prompt and reply (the next turn of a chat) only runs its new tokens. The sampler
/// is reset before each generation, so the same prompt and seed give the same text.
///
/// ```no_run
/// use std::ops::ControlFlow;
/// use ziglama_infer::generator::{GenerationConfig, TextGenerator};
/// use ziglama_infer::model::{catalog::KnownModel, chat::Message, model::Model};
///
/// let model = Model::load(KnownModel::SmolLM2.ensure()?)?;
/// let mut generator = TextGenerator::builder(&model)
///     .config(GenerationConfig::greedy().with_max_tokens(32).with_stop_strings(["\n\n"]))
///     .build()?;
/// let result = generator.generate("The capital of France is")?;
/// println!("{} ({})", result.text, result.stop_reason);
///
/// let chat = vec![Message::user("Write a haiku about the sea.")];
/// generator.stream(chat, |chunk| {
///     print!("{chunk}");
///     ControlFlow::Continue(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TextGenerator<'m, C = LayeredKvCache> {
    model: &'m Model,
    tokenizer: Arc<Tokenizer>,
    pool: Arc<ThreadPool>,
    state: State<C>,
    /// The tokens whose keys and values sequence 0 of `state` holds, at positions `0..`.
    cached: Vec<u32>,
    sampler: Box<dyn Sampler>,
    custom_sampler: bool,
    config: GenerationConfig,
    decoder: IncrementalDecoder,
    cancellation: Option<Cancellation>,
    template: Option<ChatTemplate>,
    streaming: StreamingGenerator<'static>,
}

/// What the builder hands over.
pub(super) struct Parts<'m, C> {
    pub(super) model: &'m Model,
    pub(super) tokenizer: Arc<Tokenizer>,
    pub(super) pool: Arc<ThreadPool>,
    pub(super) state: State<C>,
    pub(super) sampler: Option<Box<dyn Sampler>>,
    pub(super) config: GenerationConfig,
    pub(super) decoder: IncrementalDecoder,
    pub(super) template: Option<ChatTemplate>,
    pub(super) cancellation: Option<Cancellation>,
}

impl<C: KvCache + Sync> fmt::Debug for TextGenerator<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextGenerator")
            .field("n_ctx", &self.state.n_ctx())
            .field("cached", &self.cached.len())
            .field("sampler", &self.sampler.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What a generation keeps to build its result at the end.
pub(super) struct Finish<'g> {
    pub(super) record: Rc<RefCell<Record>>,
    pub(super) prompt_tokens: Vec<u32>,
    pub(super) echo: Option<String>,
    pub(super) started: Instant,
    pub(super) tokenizer: &'g Tokenizer,
    pub(super) config: &'g GenerationConfig,
}

impl Finish<'_> {
    /// The result of a generation that made `generated`.
    pub(super) fn result(self, generated: Generated) -> GenerationResult {
        let Generated {
            text,
            tokens,
            stop_reason,
        } = generated;
        // End-of-generation tokens run as stop tokens of the text pipeline; say which they were.
        let stop_reason = match stop_reason {
            StopReason::StopToken(id)
                if !self.config.stop_token_ids.contains(&id) && self.tokenizer.is_eog(id) =>
            {
                StopReason::EndOfGeneration(id)
            }
            r => r,
        };
        let record = std::mem::take(&mut *self.record.borrow_mut());
        let n = tokens.len();
        let mut logprobs = record.logprobs;
        logprobs.truncate(n);
        let mut token_latencies = record.latencies;
        token_latencies.truncate(n);
        let (prompt_tokens, prompt_time) = record.prompt.unwrap_or_default();
        let text = match self.echo {
            Some(mut echo) => {
                echo.push_str(&text);
                echo
            }
            None => text,
        };
        GenerationResult {
            text,
            tokens,
            prompt_tokens: self.prompt_tokens,
            stop_reason,
            logprobs,
            timings: Timings {
                prompt_tokens,
                prompt_time,
                time_to_first_token: record.first_token.filter(|_| n > 0),
                token_latencies,
                total: self.started.elapsed(),
            },
        }
    }
}

/// The text pipeline of a configuration: pieces from the tokenizer (end-of-generation
/// tokens as stop tokens), the stop rules, the flush policy and the decoder.
fn streaming(
    tokenizer: &Arc<Tokenizer>,
    config: &GenerationConfig,
    decoder: &IncrementalDecoder,
    cancellation: Option<&Cancellation>,
) -> StreamingGenerator<'static> {
    let tok = Arc::clone(tokenizer);
    let hide = decoder.special_tokens() == SpecialTokens::Hide;
    let pieces = move |id: u32| -> Vec<u8> {
        if hide
            && tok
                .token_attr(id)
                .intersects(TokenAttr::CONTROL | TokenAttr::UNKNOWN)
        {
            Vec::new()
        } else {
            tok.token_to_piece(id).to_vec()
        }
    };
    let mut rules = StopRules::new()
        .with_max_tokens(config.max_tokens)
        .with_stop_strings(config.stop_strings.iter().cloned())
        .with_stop_tokens(config.stop_token_ids.iter().copied());
    if !config.ignore_eos {
        rules = rules.with_stop_tokens(tokenizer.eog_tokens());
    }
    if let Some(c) = cancellation {
        rules = rules.with_cancellation(c.clone());
    }
    StreamingGenerator::with_pieces(pieces, rules)
        .with_flush_policy(config.flush_policy)
        .with_decoder(decoder.clone())
}

impl<'m> TextGenerator<'m> {
    /// A builder for a generator running `model` (in a state with llama.cpp's default KV
    /// cache unless [`TextGeneratorBuilder::state`] gives one with another cache).
    pub fn builder(model: &'m Model) -> TextGeneratorBuilder<'m> {
        TextGeneratorBuilder::new(model)
    }
}

impl<'m, C: KvCache + Sync> TextGenerator<'m, C> {
    pub(super) fn from_parts(parts: Parts<'m, C>) -> Result<TextGenerator<'m, C>, GenerationError> {
        parts.config.validate()?;
        let custom_sampler = parts.sampler.is_some();
        let sampler = match parts.sampler {
            Some(s) => s,
            None => Box::new(Self::config_sampler(parts.model, &parts.config)?),
        };
        let streaming = streaming(
            &parts.tokenizer,
            &parts.config,
            &parts.decoder,
            parts.cancellation.as_ref(),
        );
        Ok(TextGenerator {
            model: parts.model,
            tokenizer: parts.tokenizer,
            pool: parts.pool,
            state: parts.state,
            cached: Vec::new(),
            sampler,
            custom_sampler,
            config: parts.config,
            decoder: parts.decoder,
            cancellation: parts.cancellation,
            template: parts.template,
            streaming,
        })
    }

    fn config_sampler(
        model: &Model,
        config: &GenerationConfig,
    ) -> Result<crate::sampling::SamplerChain, GenerationError> {
        Ok(config
            .sampling
            .clone()
            .with_seed(config.seed)
            .build(model.n_vocab())?
            .with_logprobs(config.logprobs))
    }

    /// The model.
    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The configuration.
    pub fn config(&self) -> &GenerationConfig {
        &self.config
    }

    /// The state (KV cache) generations run in.
    pub fn state(&self) -> &State<C> {
        &self.state
    }

    /// The tokens the KV cache holds (prompt and reply of the last generation, but its last
    /// token, which was never run).
    pub fn cached_tokens(&self) -> &[u32] {
        &self.cached
    }

    /// Replaces the configuration (the sampler too, unless the builder was given one).
    ///
    /// # Errors
    ///
    /// The configuration is invalid; the generator then keeps the old one.
    pub fn set_config(&mut self, config: GenerationConfig) -> Result<(), GenerationError> {
        config.validate()?;
        if !self.custom_sampler {
            self.sampler = Box::new(Self::config_sampler(self.model, &config)?);
        }
        self.config = config;
        self.rebuild_streaming();
        Ok(())
    }

    /// Replaces the cancellation flag (a raised flag stays raised: give a fresh one for the
    /// next generation).
    pub fn set_cancellation(&mut self, cancellation: Option<Cancellation>) {
        self.cancellation = cancellation;
        self.rebuild_streaming();
    }

    fn rebuild_streaming(&mut self) {
        self.streaming = streaming(
            &self.tokenizer,
            &self.config,
            &self.decoder,
            self.cancellation.as_ref(),
        );
    }

    /// Forgets the KV cache: the next generation runs its whole prompt.
    pub fn clear_cache(&mut self) {
        self.state.clear(0);
        self.cached.clear();
    }

    /// The chat template: the builder's, or the GGUF file's (read on first use).
    ///
    /// # Errors
    ///
    /// The file has no template, or it does not compile.
    pub fn chat_template(&mut self) -> Result<&ChatTemplate, GenerationError> {
        if self.template.is_none() {
            self.template = Some(ChatTemplate::from_gguf(self.model.gguf())?);
        }
        match &self.template {
            Some(t) => Ok(t),
            None => unreachable!("the template was just set"),
        }
    }

    /// The tokens a prompt runs as, and its text (what echo shows).
    ///
    /// ```no_run
    /// use ziglama_infer::generator::{Prompt, TextGenerator};
    /// use ziglama_infer::model::{catalog::KnownModel, chat::Message, model::Model};
    /// let model = Model::load(KnownModel::SmolLM2.ensure()?)?;
    /// let mut generator = TextGenerator::builder(&model).build()?;
    /// let (tokens, text) = generator.prompt_tokens(vec![Message::user("Hi")].into())?;
    /// assert!(text.starts_with("<|im_start|>"));
    /// assert_eq!(tokens[0], 1); // <|im_start|>, one special token
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The chat template fails, or the text cannot be tokenized.
    pub fn prompt_tokens(&mut self, prompt: Prompt) -> Result<(Vec<u32>, String), GenerationError> {
        match prompt {
            Prompt::Text(text) => Ok((self.tokenizer.encode(&text, true, true)?, text)),
            Prompt::Tokens(tokens) => {
                let text = self.tokenizer.decode_lossy(&tokens);
                Ok((tokens, text))
            }
            Prompt::Chat(messages) => {
                let template = self.chat_template()?;
                let text = template.render(&messages, true)?;
                let bos = template.bos_token();
                let has_bos = !bos.is_empty() && text.starts_with(bos);
                Ok((self.tokenizer.encode(&text, !has_bos, true)?, text))
            }
        }
    }

    /// Generates a continuation of `prompt` and returns it whole.
    ///
    /// # Errors
    ///
    /// The prompt is empty, does not fit the context or cannot be tokenized; a forward pass
    /// or the sampler fails.
    pub fn generate(
        &mut self,
        prompt: impl Into<Prompt>,
    ) -> Result<GenerationResult, GenerationError> {
        self.stream(prompt, |_| ControlFlow::Continue(()))
    }

    /// Generates a continuation of `prompt`, handing each chunk of text to `on_chunk` as
    /// soon as the flush policy releases it (the prompt's text first, with echo). The
    /// callback returning [`ControlFlow::Break`] cancels the generation
    /// ([`StopReason::Cancelled`]); the text held back so far is still delivered.
    ///
    /// # Errors
    ///
    /// As [`generate`](Self::generate); the chunks delivered before an error stay
    /// delivered.
    pub fn stream<F>(
        &mut self,
        prompt: impl Into<Prompt>,
        mut on_chunk: F,
    ) -> Result<GenerationResult, GenerationError>
    where
        F: FnMut(&str) -> ControlFlow<()>,
    {
        let (streaming, source, finish) = self.start(prompt.into())?;
        if let Some(echo) = &finish.echo {
            if on_chunk(echo).is_break() {
                return Ok(finish.result(Generated {
                    text: String::new(),
                    tokens: Vec::new(),
                    stop_reason: StopReason::Cancelled,
                }));
            }
        }
        let generated = streaming.run(source, on_chunk)?;
        Ok(finish.result(generated))
    }

    /// Generates a continuation of `prompt` into `producer` (backpressure: a full buffer
    /// pauses the generation), then finishes the stream with the stop reason, or as failed
    /// with the error. The consumer closing the stream cancels the generation.
    ///
    /// ```no_run
    /// use ziglama_infer::generator::{GenerationConfig, TextGenerator};
    /// use ziglama_infer::model::{catalog::KnownModel, model::Model};
    /// use ziglama_infer::stream::TokenBuffer;
    ///
    /// let model = Model::load(KnownModel::SmolLM2.ensure()?)?;
    /// let mut generator = TextGenerator::builder(&model).build()?;
    /// let (producer, consumer) = TokenBuffer::bounded(4);
    /// let result = std::thread::scope(|s| {
    ///     let worker = s.spawn(|| generator.stream_into("Once upon a time", producer));
    ///     for chunk in consumer.iter() {
    ///         print!("{chunk}");
    ///     }
    ///     worker.join().expect("the generating thread")
    /// })?;
    /// assert!(consumer.status().stop_reason() == Some(result.stop_reason));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`generate`](Self::generate).
    pub fn stream_into(
        &mut self,
        prompt: impl Into<Prompt>,
        producer: Producer<String>,
    ) -> Result<GenerationResult, GenerationError> {
        let result = self.stream(prompt, |chunk| match producer.push(chunk.to_string()) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        });
        match &result {
            Ok(done) => producer.finish(done.stop_reason),
            Err(e) => producer.fail(e.to_string()),
        }
        result
    }

    /// The generation as an iterator of text chunks, run lazily in the caller's thread:
    /// each `next` runs the model until a chunk is complete. Dropping the iterator stops the
    /// generation; [`GenerationChunks::into_result`] gives the result.
    ///
    /// ```no_run
    /// use ziglama_infer::generator::TextGenerator;
    /// use ziglama_infer::model::{catalog::KnownModel, model::Model};
    ///
    /// let model = Model::load(KnownModel::SmolLM2.ensure()?)?;
    /// let mut generator = TextGenerator::builder(&model).build()?;
    /// let mut chunks = generator.chunks("The capital of France is")?;
    /// for chunk in chunks.by_ref() {
    ///     print!("{}", chunk?);
    /// }
    /// let result = chunks.into_result();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The prompt is empty, does not fit the context or cannot be tokenized (errors of the
    /// model or sampler come from the iterator).
    pub fn chunks(
        &mut self,
        prompt: impl Into<Prompt>,
    ) -> Result<GenerationChunks<'_, C>, GenerationError> {
        let (streaming, source, finish) = self.start(prompt.into())?;
        Ok(GenerationChunks::new(streaming.chunks(source), finish))
    }

    /// Prepares a generation: tokenizes the prompt, keeps what the cache already holds of
    /// it, resets the sampler and makes the token source.
    #[allow(clippy::type_complexity)]
    fn start(
        &mut self,
        prompt: Prompt,
    ) -> Result<(&StreamingGenerator<'static>, ModelSource<'_, C>, Finish<'_>), GenerationError>
    {
        let started = Instant::now();
        let (tokens, text) = self.prompt_tokens(prompt)?;
        let TextGenerator {
            model,
            tokenizer,
            pool,
            state,
            cached,
            sampler,
            config,
            streaming,
            ..
        } = self;
        if tokens.is_empty() {
            return Err(GenerationError::EmptyPrompt);
        }
        if tokens.len() > state.n_ctx() {
            return Err(GenerationError::PromptTooLong {
                n_tokens: tokens.len(),
                n_ctx: state.n_ctx(),
            });
        }
        let record = Rc::new(RefCell::new(Record::default()));
        let mut masked: Vec<u32> = config.stop_token_ids.clone();
        if !config.ignore_eos {
            masked.extend(tokenizer.eog_tokens());
        }
        let steps = Steps {
            started,
            masked,
            min_tokens: config.min_tokens,
            n_logprobs: config.logprobs,
            n_generated: 0,
            record: Rc::clone(&record),
        };
        let source = match config.contrastive {
            Some(search) => {
                let n_ctx = state.n_ctx().min(tokens.len() + config.max_tokens);
                ModelSource::Contrastive(Box::new(ContrastiveSource::new(
                    model,
                    pool,
                    search,
                    n_ctx,
                    tokens.clone(),
                    steps,
                )))
            }
            None => {
                let keep = reusable_prefix(&state.cache, cached, &tokens);
                if keep == 0 {
                    state.clear(0);
                } else {
                    state
                        .cache
                        .remove_positions(0, keep..usize::MAX)
                        .map_err(ziglama_model::ModelError::from)?;
                }
                cached.truncate(keep);
                sampler.reset();
                ModelSource::Sampled(SampledSource {
                    model,
                    pool,
                    state,
                    cached,
                    sampler: &mut **sampler,
                    pending: tokens[keep..].to_vec(),
                    steps,
                })
            }
        };
        let finish = Finish {
            record,
            prompt_tokens: tokens,
            echo: config.echo.then_some(text),
            started,
            tokenizer,
            config,
        };
        Ok((streaming, source, finish))
    }
}

/// How many tokens at the start of `prompt` the cache already holds and can keep: the
/// common prefix with `cached`, less at least one token (its logits are needed), or none
/// when the cache cannot continue there (a sliding-window layer whose ring has already
/// overwritten positions the window at that point reads: the prompt then runs from the
/// start).
fn reusable_prefix<C: KvCache>(cache: &C, cached: &[u32], prompt: &[u32]) -> usize {
    let common = cached
        .iter()
        .zip(prompt)
        .take_while(|(a, b)| a == b)
        .count();
    let keep = common.min(prompt.len().saturating_sub(1));
    if keep > 0 && cache.check_continuation(0, keep).is_err() {
        0
    } else {
        keep
    }
}
