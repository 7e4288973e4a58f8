//! Putting a text generator together: the model and the parts that replace the defaults.

use std::fmt;
use std::sync::Arc;

use ziglama_model::chat::ChatTemplate;
use ziglama_model::model::{LayeredKvCache, Model, State};
use ziglama_model::tokenizer::Tokenizer;
use ziglama_nn::KvCache;
use ziglama_tensor::ThreadPool;

use crate::sampling::Sampler;
use crate::stream::{Cancellation, IncrementalDecoder};

use super::{GenerationConfig, GenerationError, TextGenerator};

/// The context a generator gets when neither a state nor a size is given: the model's
/// training context, at most this many positions (as llama.cpp's default `n_ctx`).
pub const DEFAULT_CONTEXT_SIZE: usize = 4096;

/// Builds a [`TextGenerator`]: every part has a default taken from the model, and each can
/// be replaced.
///
/// | part | default | replaced by |
/// |---|---|---|
/// | tokenizer | the GGUF file's | [`tokenizer`](Self::tokenizer) |
/// | sampler | the chain [`GenerationConfig::sampling`] describes | [`sampler`](Self::sampler) (any [`Sampler`]) |
/// | KV cache | `model.new_state(n, 1)`, `n` = [`DEFAULT_CONTEXT_SIZE`] or less | [`state`](Self::state) (a `State` with any [`KvCache`]: `model.new_state_with(cache)`), [`context_size`](Self::context_size) |
/// | threads | one per core | [`threads`](Self::threads), [`thread_pool`](Self::thread_pool) |
/// | stop rules, streaming | [`GenerationConfig::default`] | [`config`](Self::config), [`cancellation`](Self::cancellation), [`decoder`](Self::decoder) |
/// | chat template | the GGUF file's, read on first use | [`chat_template`](Self::chat_template) |
///
/// ```no_run
/// use ziglama_infer::generator::{GenerationConfig, TextGenerator};
/// use ziglama_infer::model::{catalog::KnownModel, model::Model};
/// use ziglama_infer::sampling::Greedy;
///
/// let model = Model::load(KnownModel::SmolLM2.ensure()?)?;
/// let mut generator = TextGenerator::builder(&model)
///     .config(GenerationConfig::default().with_max_tokens(16))
///     .sampler(Greedy::new())
///     .context_size(256)
///     .threads(2)
///     .build()?;
/// let result = generator.generate("The capital of France is")?;
/// println!("{}", result.text);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TextGeneratorBuilder<'m, C = LayeredKvCache> {
    model: &'m Model,
    tokenizer: Option<Tokenizer>,
    sampler: Option<Box<dyn Sampler>>,
    /// Makes the state, given the context size asked for (a given state ignores it).
    state: StateSource<C>,
    context_size: Option<usize>,
    pool: Option<Arc<ThreadPool>>,
    threads: Option<usize>,
    config: GenerationConfig,
    decoder: IncrementalDecoder,
    template: Option<ChatTemplate>,
    cancellation: Option<Cancellation>,
}

/// Where the generator's state comes from.
enum StateSource<C> {
    /// A fresh state with llama.cpp's default cache (only for `LayeredKvCache`).
    Fresh(fn(&Model, usize) -> State<C>),
    /// The caller's.
    Given(Box<State<C>>),
}

impl<C> fmt::Debug for TextGeneratorBuilder<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextGeneratorBuilder")
            .field(
                "sampler",
                &self.sampler.as_ref().map(|s| s.name().to_owned()),
            )
            .field("context_size", &self.context_size)
            .field("threads", &self.threads)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<'m> TextGeneratorBuilder<'m> {
    /// A builder for `model` with every part at its default.
    pub fn new(model: &'m Model) -> TextGeneratorBuilder<'m> {
        TextGeneratorBuilder {
            model,
            tokenizer: None,
            sampler: None,
            state: StateSource::Fresh(|model, n_ctx| model.new_state(n_ctx, 1)),
            context_size: None,
            pool: None,
            threads: None,
            config: GenerationConfig::default(),
            decoder: IncrementalDecoder::new(),
            template: None,
            cancellation: None,
        }
    }
}

impl<'m, C: KvCache + Sync> TextGeneratorBuilder<'m, C> {
    /// Uses this tokenizer instead of the one the GGUF file describes.
    pub fn tokenizer(mut self, tokenizer: Tokenizer) -> Self {
        self.tokenizer = Some(tokenizer);
        self
    }

    /// Uses this sampler (a selector, a [`SamplerChain`](crate::sampling::SamplerChain), or
    /// your own) instead of the chain the configuration describes; the configuration's
    /// sampling parameters and seed are then not used. It is
    /// [`reset`](Sampler::reset) before each generation.
    pub fn sampler(self, sampler: impl Sampler + 'static) -> Self {
        self.boxed_sampler(Box::new(sampler))
    }

    /// [`sampler`](Self::sampler) for a sampler already boxed.
    pub fn boxed_sampler(mut self, sampler: Box<dyn Sampler>) -> Self {
        self.sampler = Some(sampler);
        self
    }

    /// Runs in this state (sequence 0 of its KV cache, whatever the [`KvCache`]) instead of a
    /// fresh one.
    ///
    /// ```no_run
    /// use ziglama_infer::generator::TextGenerator;
    /// use ziglama_infer::model::{catalog::KnownModel, model::Model};
    ///
    /// let model = Model::load(KnownModel::SmolLM2.ensure()?)?;
    /// let state = model.new_state(1024, 1); // or model.new_state_with(any_cache)
    /// let mut generator = TextGenerator::builder(&model).state(state).build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn state<D: KvCache + Sync>(self, state: State<D>) -> TextGeneratorBuilder<'m, D> {
        TextGeneratorBuilder {
            model: self.model,
            tokenizer: self.tokenizer,
            sampler: self.sampler,
            state: StateSource::Given(Box::new(state)),
            context_size: self.context_size,
            pool: self.pool,
            threads: self.threads,
            config: self.config,
            decoder: self.decoder,
            template: self.template,
            cancellation: self.cancellation,
        }
    }

    /// Makes a fresh state of `n_ctx` positions (ignored when a state is given).
    pub fn context_size(mut self, n_ctx: usize) -> Self {
        self.context_size = Some(n_ctx);
        self
    }

    /// Runs the model on this pool (shared with other generators, say).
    pub fn thread_pool(mut self, pool: Arc<ThreadPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Runs the model on a pool of `n` threads of its own (ignored when a pool is given).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }

    /// Sets what to generate and when to stop.
    pub fn config(mut self, config: GenerationConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets how tokens become text (to hide special tokens, for instance).
    pub fn decoder(mut self, decoder: IncrementalDecoder) -> Self {
        self.decoder = decoder;
        self
    }

    /// Uses this chat template instead of the GGUF file's.
    pub fn chat_template(mut self, template: ChatTemplate) -> Self {
        self.template = Some(template);
        self
    }

    /// Stops every generation when this flag is raised (from any thread).
    pub fn cancellation(mut self, cancellation: Cancellation) -> Self {
        self.cancellation = Some(cancellation);
        self
    }

    /// Builds the generator.
    ///
    /// # Errors
    ///
    /// The GGUF file's tokenizer cannot be built, the configuration is invalid (sampling
    /// parameters out of range included), or the context size is 0.
    pub fn build(self) -> Result<TextGenerator<'m, C>, GenerationError> {
        let tokenizer = match self.tokenizer {
            Some(t) => t,
            None => Tokenizer::from_gguf(self.model.gguf())?,
        };
        let state = match self.state {
            StateSource::Given(s) => *s,
            StateSource::Fresh(fresh) => {
                let n_ctx = self
                    .context_size
                    .unwrap_or_else(|| self.model.n_ctx_train().clamp(1, DEFAULT_CONTEXT_SIZE));
                if n_ctx == 0 {
                    return Err(GenerationError::InvalidParameter {
                        name: "context_size",
                        reason: "a context of 0 positions holds no prompt".into(),
                    });
                }
                fresh(self.model, n_ctx)
            }
        };
        let pool = match self.pool {
            Some(p) => p,
            None => {
                let n = self
                    .threads
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
                Arc::new(ThreadPool::new(n.max(1)))
            }
        };
        TextGenerator::from_parts(super::text_generator::Parts {
            model: self.model,
            tokenizer: Arc::new(tokenizer),
            pool,
            state,
            sampler: self.sampler,
            config: self.config,
            decoder: self.decoder,
            template: self.template,
            cancellation: self.cancellation,
        })
    }
}
