//! Stop strings on real tokenizations: strings spanning 2, 3 and 4 tokens, a stop string at
//! the very start, one only begun when the text ends, overlapping candidates and stop
//! strings inside split characters, under every flush policy.

use ziglama_infer::model::catalog::KnownModel;
use ziglama_infer::model::gguf::GgufFile;
use ziglama_infer::model::tokenizer::Tokenizer;
use ziglama_infer::stream::{FlushPolicy, StopStrings, TextStream};

fn tokenizer(model: KnownModel) -> Tokenizer {
    let path = model.ensure().expect("the model must be fetchable");
    let file = GgufFile::open(path).expect("the model must open");
    Tokenizer::from_gguf(&file).expect("the tokenizer must build")
}

/// How many tokens of `ids` overlap the first occurrence of `stop` in their decoding.
fn tokens_spanned(tok: &Tokenizer, ids: &[u32], stop: &str) -> usize {
    let text = tok.decode(ids);
    let start = text
        .windows(stop.len())
        .position(|w| w == stop.as_bytes())
        .expect("the stop string occurs");
    let end = start + stop.len();
    let mut at = 0;
    let mut spanned = 0;
    for &id in ids {
        let len = tok.token_to_piece(id).len();
        if at < end && at + len > start {
            spanned += 1;
        }
        at += len;
    }
    spanned
}

/// Streams `ids` token by token under `policy`; checks that what has been shown is at every
/// step a prefix of the final text, and returns the chunks and the final text.
fn stream(
    tok: &Tokenizer,
    ids: &[u32],
    stops: &[&str],
    policy: FlushPolicy,
) -> (Vec<String>, String, Option<usize>) {
    let mut s = TextStream::new(policy).with_stop_strings(stops.iter().copied());
    let mut chunks = Vec::new();
    for &id in ids {
        chunks.extend(s.push_token(tok, id));
        let shown: String = chunks.concat();
        assert!(s.text().starts_with(&shown));
        if s.stop_string().is_some() {
            break;
        }
    }
    let done = s.finish();
    chunks.extend(done.last_chunk);
    assert!(chunks.iter().all(|c| !c.is_empty()));
    (chunks, done.text, done.stop_string.map(|m| m.index))
}

/// One case: the text the model "generates", the stop strings, the number of tokens the
/// matched stop string spans, and the text the generation returns.
struct Case {
    model: KnownModel,
    generated: &'static str,
    stops: &'static [&'static str],
    spans: usize,
    expected: &'static str,
    index: Option<usize>,
}

const CASES: &[Case] = &[
    // "\n" | "\n"
    Case {
        model: KnownModel::SmolLM2,
        generated: "Observation: done\n\nQuestion: why",
        stops: &["\n\n"],
        spans: 2,
        expected: "Observation: done",
        index: Some(0),
    },
    // "###" | "END" | "###"
    Case {
        model: KnownModel::SmolLM2,
        generated: "The answer is 42.\n###END### more",
        stops: &["###END###"],
        spans: 3,
        expected: "The answer is 42.\n",
        index: Some(0),
    },
    // " ST" | "OP" | "_" | "H": starts inside a token
    Case {
        model: KnownModel::SmolLM2,
        generated: " User: hi</s> STOP_HERE ok",
        stops: &["STOP_H"],
        spans: 4,
        expected: " User: hi</s> ",
        index: Some(0),
    },
    // "</" | "s" | ">"
    Case {
        model: KnownModel::Gemma3,
        generated: " User: hi</s> STOP_HERE ok",
        stops: &["</s>"],
        spans: 3,
        expected: " User: hi",
        index: Some(0),
    },
    // At the very start of the output.
    Case {
        model: KnownModel::SmolLM2,
        generated: "###END### more",
        stops: &["###"],
        spans: 1,
        expected: "",
        index: Some(0),
    },
    Case {
        model: KnownModel::Gemma3,
        generated: "Observation: done",
        stops: &["Observation:"],
        spans: 2,
        expected: "",
        index: Some(0),
    },
    // Overlapping candidates: "#END#" ends before "ND###" and "42.\n###EX" fails late.
    Case {
        model: KnownModel::SmolLM2,
        generated: "The answer is 42.\n###END### more",
        stops: &["ND###", "42.\n###EX", "#END#"],
        spans: 3,
        expected: "The answer is 42.\n##",
        index: Some(2),
    },
    // Inside characters split across byte-level tokens: 本 is whole, 語 is three tokens.
    Case {
        model: KnownModel::SmolLM2,
        generated: "I 💜 Rust 🦀 and 日本語のテキスト",
        stops: &["本語"],
        spans: 4,
        expected: "I 💜 Rust 🦀 and 日",
        index: Some(0),
    },
    // Gemma's byte fallback: 𠀋 is four <0xNN> tokens.
    Case {
        model: KnownModel::Gemma3,
        generated: "𓀀 𠀋 🫠 ꙮ",
        stops: &["𠀋"],
        spans: 4,
        expected: "𓀀 ",
        index: Some(0),
    },
];

#[test]
fn stop_strings_spanning_tokens() {
    let tokenizers = [
        tokenizer(KnownModel::SmolLM2),
        tokenizer(KnownModel::Gemma3),
    ];
    for case in CASES {
        let tok = &tokenizers[usize::from(case.model == KnownModel::Gemma3)];
        let ids = tok.encode(case.generated, false, false).unwrap();
        let index = case.index.expect("these cases match");
        assert_eq!(
            tokens_spanned(tok, &ids, case.stops[index]),
            case.spans,
            "{:?}",
            case.generated
        );
        // The whole-text rule agrees.
        let m = StopStrings::new(case.stops.iter().copied())
            .find_in(case.generated)
            .unwrap();
        assert_eq!(&case.generated[..m.start], case.expected);
        for policy in FlushPolicy::ALL {
            let (chunks, text, index) = stream(tok, &ids, case.stops, policy);
            assert_eq!(text, case.expected, "{policy:?} {:?}", case.generated);
            assert_eq!(chunks.concat(), text);
            assert_eq!(index, case.index);
            assert!(chunks.iter().all(|c| !c.contains('\u{FFFD}')));
        }
    }
}

#[test]
fn stop_string_begun_but_not_completed_at_the_end() {
    let tok = tokenizer(KnownModel::SmolLM2);
    for (generated, stops) in [
        ("The answer is 42.\n###EN", &["###END###"][..]),
        ("Observation: done\n", &["\n\n", "done\n\nQ"][..]),
        ("I 💜 Rust 🦀 and 日本", &["本語"][..]),
    ] {
        let ids = tok.encode(generated, false, false).unwrap();
        for policy in FlushPolicy::ALL {
            let (chunks, text, index) = stream(&tok, &ids, stops, policy);
            assert_eq!(index, None);
            assert_eq!(text, generated);
            assert_eq!(chunks.concat(), generated);
        }
        // While the stream ran, the possible stop string was held back.
        let mut s = TextStream::new(FlushPolicy::EveryToken).with_stop_strings(stops.to_vec());
        let shown: String = ids
            .iter()
            .filter_map(|&id| s.push_token(&tok, id))
            .collect();
        assert!(generated.len() > shown.len(), "{generated:?}: {shown:?}");
    }
}
