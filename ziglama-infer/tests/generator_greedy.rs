//! Greedy generation through `TextGenerator` equals llama.cpp's on SmolLM2: the 15 committed
//! prompts of the SmolLM2 issue (`ziglama-model/tests/data/llama/cases.tsv`: prompt tokens,
//! llama.cpp's greedy continuation of up to 128 tokens, its top-2 logit gaps), run through
//! the builder's default parts (tokenizer, sampler chain of the deterministic preset, KV
//! cache, stop rules, streaming).

use std::path::PathBuf;
use std::sync::OnceLock;

use ziglama_infer::generator::{GenerationConfig, Prompt, TextGenerator};
use ziglama_infer::model::catalog::KnownModel;
use ziglama_infer::model::model::Model;
use ziglama_infer::stream::StopReason;

/// Greedy divergence is allowed only where llama.cpp's top-2 logits are this close (as in
/// the SmolLM2 issue's own test).
const NEAR_TIE: f32 = 0.05;

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::load(KnownModel::SmolLM2.ensure().expect("SmolLM2")).expect("load"))
}

struct Case {
    name: String,
    prompt: Vec<u32>,
    greedy: Vec<u32>,
    gaps: Vec<f32>,
}

fn list<T: std::str::FromStr>(field: &str) -> Vec<T>
where
    T::Err: std::fmt::Debug,
{
    field
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("a number"))
        .collect()
}

fn cases() -> Vec<Case> {
    cases_of("llama")
}

fn cases_of(dir: &str) -> Vec<Case> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ziglama-model/tests/data")
        .join(dir)
        .join("cases.tsv");
    let text = std::fs::read_to_string(&path).expect("cases.tsv");
    let cases: Vec<Case> = text
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 4, "{line:?}");
            Case {
                name: f[0].into(),
                prompt: list(f[1]),
                greedy: list(f[2]),
                gaps: list(f[3]),
            }
        })
        .collect();
    assert!(cases.len() >= 12);
    cases
}

#[test]
fn greedy_generation_equals_llama_cpp_on_every_committed_prompt() {
    let tokenizer_eog = |id: u32| id == 0 || id == 2;
    let mut generator = TextGenerator::builder(model())
        .context_size(256)
        .threads(2)
        .build()
        .unwrap();
    let mut failures = Vec::new();
    let mut ended_by_eog = 0;
    for case in cases() {
        // llama.cpp's transcript stops after an end-of-generation token, which it lists.
        let n = case.greedy.len();
        generator
            .set_config(GenerationConfig::greedy().with_max_tokens(n))
            .unwrap();
        let result = generator
            .generate(Prompt::Tokens(case.prompt.clone()))
            .unwrap();
        assert_eq!(result.prompt_tokens, case.prompt);
        let (want, want_stop) = match case.greedy.last() {
            Some(&last) if tokenizer_eog(last) => {
                ended_by_eog += 1;
                (&case.greedy[..n - 1], StopReason::EndOfGeneration(last))
            }
            _ => (&case.greedy[..], StopReason::MaxTokens),
        };
        match result.tokens.iter().zip(want).position(|(a, b)| a != b) {
            None => {
                assert_eq!(result.tokens, want, "{}", case.name);
                assert_eq!(result.stop_reason, want_stop, "{}", case.name);
            }
            Some(step) if case.gaps[step] < NEAR_TIE => {
                println!("{}: diverges at a near-tie, step {step}", case.name)
            }
            Some(step) => failures.push(format!(
                "{}: step {step}: {} vs llama.cpp {} (gap {})",
                case.name, result.tokens[step], want[step], case.gaps[step]
            )),
        }
        assert_eq!(
            result.text,
            generator.tokenizer().decode_lossy(&result.tokens),
            "{}",
            case.name
        );
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(ended_by_eog, 1, "code_rust ends with <|im_end|>");
}

/// Gemma 3 (SentencePiece, sliding-window layers, 262k vocabulary): through
/// `TextGenerator`, greedy decoding gives the tokens of a plain argmax loop over
/// `Model::forward` on four committed prompts (the chat one, and one of 689 tokens that runs
/// past the 512-position sliding window), which are llama.cpp's tokens, and stops at the same
/// end-of-generation token.
#[test]
fn greedy_generation_equals_an_argmax_loop_on_gemma3() {
    use ziglama_infer::model::model::{argmax, Batch};
    let model = Model::load(KnownModel::Gemma3.ensure().expect("Gemma 3")).expect("load");
    let n = 24;
    let mut generator = TextGenerator::builder(&model)
        .config(GenerationConfig::greedy().with_max_tokens(n))
        .context_size(768)
        .threads(2)
        .build()
        .unwrap();
    let pool = ziglama_infer::model::tensor::ThreadPool::new(2);
    let cases = cases_of("gemma3");
    let mut checked = 0;
    for case in cases
        .iter()
        .filter(|c| ["hello", "japanese", "chat_simple", "long_essay"].contains(&c.name.as_str()))
    {
        // Each prompt from an empty cache, as llama.cpp ran it: reusing a cached prefix (all
        // these prompts start with BOS) splits the prompt into other batches, whose products
        // sum in other orders (as llama.cpp's do).
        generator.clear_cache();
        let result = generator
            .generate(Prompt::Tokens(case.prompt.clone()))
            .unwrap();
        let mut state = model.new_state(768, 1);
        let mut logits = model
            .forward(&Batch::prompt(&case.prompt, 0, 0), &mut state, &pool)
            .unwrap();
        let mut want = Vec::new();
        let mut stop = StopReason::MaxTokens;
        for pos in case.prompt.len()..case.prompt.len() + n {
            let token = argmax(&logits) as u32;
            if generator.tokenizer().is_eog(token) {
                stop = StopReason::EndOfGeneration(token);
                break;
            }
            want.push(token);
            logits = model
                .forward(&Batch::one(token, pos, 0), &mut state, &pool)
                .unwrap();
        }
        assert_eq!(result.tokens, want, "{}", case.name);
        assert_eq!(result.stop_reason, stop, "{}", case.name);
        // And llama.cpp's continuation (the logits are bit-equal to llama.cpp's).
        assert_eq!(
            result.tokens[..],
            case.greedy[..want.len()],
            "{}",
            case.name
        );
        assert_eq!(
            result.text,
            generator.tokenizer().decode_lossy(&result.tokens),
            "{}",
            case.name
        );
        checked += 1;
    }
    assert_eq!(checked, 4);
}

/// Gemma 3's sliding-window layers and the text generator's prefix reuse: a prompt that
/// extends the previous one reuses the cached positions (the window at its first new
/// position is still in the rings) and gives the tokens of a fresh generator; a prompt that
/// shares only an early part of a sequence longer than the window cannot (its rings have
/// overwritten what that part's window reads), so the generator runs it from the start and
/// still gives a fresh generator's tokens.
#[test]
fn prefix_reuse_with_sliding_windows_on_gemma3() {
    let model = Model::load(KnownModel::Gemma3.ensure().expect("Gemma 3")).expect("load");
    let generator = || {
        TextGenerator::builder(&model)
            .config(GenerationConfig::greedy().with_max_tokens(8))
            .context_size(1024)
            .threads(2)
            .build()
            .unwrap()
    };
    let cases = cases_of("gemma3");
    let essay = &cases
        .iter()
        .find(|c| c.name == "long_essay")
        .unwrap()
        .prompt;
    assert!(essay.len() > 600, "long_essay has {} tokens", essay.len());

    let mut g = generator();
    let first = g.generate(Prompt::Tokens(essay[..600].to_vec())).unwrap();
    // Extends everything cached: the prompt and the generated tokens run so far (a chat's
    // next turn), then 40 new tokens.
    let cached = g.cached_tokens().to_vec();
    assert_eq!(cached[..600], essay[..600]);
    assert_eq!(cached[600..], first.tokens[..cached.len() - 600]);
    let mut extended = cached.clone();
    extended.extend_from_slice(&essay[600..640]);
    let reused = g.generate(Prompt::Tokens(extended.clone())).unwrap();
    let fresh = generator()
        .generate(Prompt::Tokens(extended.clone()))
        .unwrap();
    assert_eq!(
        reused.timings.prompt_tokens, 40,
        "only the 40 new prompt tokens run"
    );
    assert_eq!(fresh.timings.prompt_tokens, extended.len());
    // The reused run computes the 40 new tokens as a batch of their own, the fresh one the
    // whole prompt as one batch: their products sum in other orders, so the logits differ in
    // the last bits and the tokens are compared before any near-tie can part them.
    assert_eq!(reused.tokens[..4], fresh.tokens[..4]);

    // Shares the first 100 of the cached positions: the window at position 100 reaches back
    // to position 0, long overwritten in the 512-position rings.
    let mut diverging = essay[..100].to_vec();
    diverging.extend_from_slice(&essay[300..400]);
    let rerun = g.generate(Prompt::Tokens(diverging.clone())).unwrap();
    let fresh = generator().generate(Prompt::Tokens(diverging)).unwrap();
    assert_eq!(rerun.timings.prompt_tokens, 200, "runs from the start");
    assert_eq!(rerun.tokens, fresh.tokens);
}
