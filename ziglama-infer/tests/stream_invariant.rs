//! The streaming invariant, checked on random token sequences of both real tokenizers: for
//! every flush policy, the chunks of a [`TextStream`] concatenate to the non-streamed text
//! (the lossy decoding of the tokens, cut before the first stop string), and what has been
//! shown is at every step a prefix of it.

use ziglama_infer::model::catalog::KnownModel;
use ziglama_infer::model::gguf::GgufFile;
use ziglama_infer::model::tokenizer::Tokenizer;
use ziglama_infer::stream::{FlushPolicy, StopStrings, TextStream};

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
    "Hello there! How are you today? I am fine. Thanks.\n\nNext paragraph: 1. one\n2. two\n",
    "I 💜 Rust 🦀 and 日本語のテキスト。文が終わる！本当？ 𓀀 𠀋 🫠 ꙮ",
    "家族: 👨‍👩‍👧‍👦, flags: 🇫🇷🇯🇵. «Citation.» He said \"no.\" Then left…  Done",
    "fn main() {\n    println!(\"{}\", 3.14);\n}\n<|im_end|> ### END ###",
];

/// A generated sequence: mostly windows of real encodings, sometimes random ids.
fn random_ids(tok: &Tokenizer, encoded: &[Vec<u32>], rng: &mut XorShift) -> Vec<u32> {
    let ids = &encoded[rng.below(encoded.len())];
    let start = rng.below(ids.len() / 2);
    let mut out: Vec<u32> = ids[start..].to_vec();
    for _ in 0..rng.below(4) {
        let at = rng.below(out.len() + 1);
        out.insert(at, rng.below(tok.n_vocab()) as u32);
    }
    out
}

/// Stop strings: substrings of the text (so matches happen, often across tokens and inside
/// split characters), sometimes one that never occurs.
fn random_stops(text: &str, rng: &mut XorShift) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut stops = Vec::new();
    for _ in 0..rng.below(4) {
        if rng.below(5) == 0 || chars.is_empty() {
            stops.push("never occurs ⊥".to_string());
            continue;
        }
        let start = rng.below(chars.len());
        let len = 1 + rng.below(6);
        stops.push(
            chars[start..(start + len).min(chars.len())]
                .iter()
                .collect(),
        );
    }
    stops
}

#[test]
fn chunks_concatenate_to_the_non_streamed_text() {
    let mut checked = 0;
    let mut stopped = 0;
    for (model, seed) in [(KnownModel::SmolLM2, 0x5eed), (KnownModel::Gemma3, 0xfeed)] {
        let tok = tokenizer(model);
        let encoded: Vec<Vec<u32>> = TEXTS
            .iter()
            .map(|t| tok.encode(t, false, true).unwrap())
            .collect();
        let mut rng = XorShift(seed);
        for _ in 0..300 {
            let ids = random_ids(&tok, &encoded, &mut rng);
            let whole = tok.decode_lossy(&ids);
            let stops = random_stops(&whole, &mut rng);
            let found = StopStrings::new(stops.iter().cloned()).find_in(&whole);
            let expected = &whole[..found.map_or(whole.len(), |m| m.start)];
            stopped += usize::from(found.is_some());
            for policy in FlushPolicy::ALL {
                let mut s = TextStream::new(policy).with_stop_strings(stops.iter().cloned());
                let mut shown = String::new();
                for &id in &ids {
                    if let Some(chunk) = s.push_token(&tok, id) {
                        assert!(!chunk.is_empty());
                        shown.push_str(&chunk);
                        assert!(expected.starts_with(&shown), "{model:?} {policy:?} {ids:?}");
                    }
                    if s.stop_string().is_some() {
                        break;
                    }
                }
                let done = s.finish();
                shown.extend(done.last_chunk);
                assert_eq!(shown, expected, "{model:?} {policy:?} {ids:?} {stops:?}");
                assert_eq!(done.text, expected);
                assert_eq!(done.stop_string, found);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * 300 * FlushPolicy::ALL.len());
    // Both outcomes were exercised.
    assert!(stopped > 150 && stopped < 550, "{stopped} of 600 stopped");
}
