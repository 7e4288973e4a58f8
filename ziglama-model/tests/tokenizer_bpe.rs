//! The BPE tokenizer on small vocabularies built in memory (bad metadata, special-token
//! rules) and, as properties, on SmolLM2 (any text encodes and decodes back).

use proptest::prelude::*;
use ziglama_model::catalog::KnownModel;
use ziglama_model::gguf::{GgufFile, Metadata, MetadataArray, StringArray};
use ziglama_model::tokenizer::{TokenAttr, Tokenizer, TokenizerError};

/// A tiny GPT-2 style vocabulary: bytes a, b, c, Ġ (space), merges "a b" and "Ġ ab", and three
/// special tokens: `<|end|>` (control), `<sep>` (user-defined), `<unk>` (unknown).
fn tiny(pre: &str, types: Option<Vec<i32>>) -> Metadata {
    let mut m = Metadata::new();
    m.insert("tokenizer.ggml.model", "gpt2").unwrap();
    m.insert("tokenizer.ggml.pre", pre).unwrap();
    let tokens: StringArray = ["a", "b", "c", "Ġ", "ab", "Ġab", "<|end|>", "<sep>", "<unk>"]
        .into_iter()
        .collect();
    m.insert("tokenizer.ggml.tokens", MetadataArray::String(tokens))
        .unwrap();
    let merges: StringArray = ["a b", "Ġ ab"].into_iter().collect();
    m.insert("tokenizer.ggml.merges", MetadataArray::String(merges))
        .unwrap();
    let types = types.unwrap_or_else(|| vec![1, 1, 1, 1, 1, 1, 3, 4, 2]);
    m.insert("tokenizer.ggml.token_type", MetadataArray::Int32(types))
        .unwrap();
    m
}

#[test]
fn merges_by_rank_and_drops_unknown_characters() {
    let tok = Tokenizer::from_metadata(&tiny("gpt-2", None)).unwrap();
    assert_eq!(tok.encode("ab ab", false, false).unwrap(), [4, 5]);
    assert_eq!(tok.encode("abc", false, false).unwrap(), [4, 2]);
    // "ba" has no merge; "d" is no token: dropped byte by byte, as llama.cpp does.
    assert_eq!(tok.encode("ba d", false, false).unwrap(), [1, 0, 3]);
    assert_eq!(tok.decode(&[4, 5]), b"ab ab");
    assert_eq!(tok.n_vocab(), 9);
}

#[test]
fn control_tokens_only_with_parse_special_user_defined_always() {
    let tok = Tokenizer::from_metadata(&tiny("gpt-2", None)).unwrap();
    // Without parse_special the control token is text: '<', '|', ... are not tokens here.
    assert_eq!(tok.encode("ab<|end|>", false, false).unwrap(), [4]);
    assert_eq!(tok.encode("ab<|end|>", false, true).unwrap(), [4, 6]);
    // User-defined tokens are cut out either way; unknown ones only with parse_special.
    assert_eq!(tok.encode("ab<sep>ab", false, false).unwrap(), [4, 7, 4]);
    assert_eq!(
        tok.encode("<unk>", false, false).unwrap(),
        Vec::<u32>::new()
    );
    assert_eq!(tok.encode("<unk>", false, true).unwrap(), [8]);
    assert!(tok.is_eog(6), "<|end|> ends generation");
    assert_eq!(tok.eot(), Some(6));
    assert_eq!(tok.token_to_piece(6), b"<|end|>");
    assert!(tok.token_attr(7).contains(TokenAttr::USER_DEFINED));
}

#[test]
fn rstrip_swallows_whitespace_after_special_tokens_of_phi3() {
    let mut m = tiny("gpt-2", None);
    m.insert("general.name", "Phi-3 mini").unwrap();
    let tok = Tokenizer::from_metadata(&m).unwrap();
    assert!(tok.token_attr(6).contains(TokenAttr::RSTRIP));
    assert_eq!(tok.encode("<|end|>  \n ab", false, true).unwrap(), [6, 4]);
    let plain = Tokenizer::from_metadata(&tiny("gpt-2", None)).unwrap();
    assert_eq!(plain.encode("<|end|> ab", false, true).unwrap(), [6, 5]);
}

#[test]
fn bos_and_eos_as_the_metadata_says() {
    let mut m = tiny("gpt-2", None);
    m.insert("tokenizer.ggml.add_bos_token", true).unwrap();
    // No BOS id, and llama.cpp's default (11) is outside this vocabulary.
    let tok = Tokenizer::from_metadata(&m).unwrap();
    assert_eq!(tok.bos(), None);
    let err = tok.encode("ab", true, false).unwrap_err();
    assert!(matches!(
        err,
        TokenizerError::MissingSpecialToken { which: "BOS" }
    ));
    assert_eq!(tok.encode("ab", false, false).unwrap(), [4]);

    m.insert("tokenizer.ggml.bos_token_id", 7u32).unwrap();
    m.insert("tokenizer.ggml.eos_token_id", 6u32).unwrap();
    m.insert("tokenizer.ggml.add_eos_token", true).unwrap();
    let tok = Tokenizer::from_metadata(&m).unwrap();
    assert_eq!(tok.encode("ab", true, false).unwrap(), [7, 4, 6]);
    assert_eq!(tok.detokenize(&[7, 4, 6], true, false), b"ab");
}

#[test]
fn bad_metadata_is_a_clear_error() {
    let err = Tokenizer::from_metadata(&tiny("no-such-pre", None)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, TokenizerError::UnknownPreTokenizer { .. }));
    assert!(
        msg.contains("no-such-pre") && msg.contains("tokenizer.ggml.pre") && msg.contains("smollm"),
        "{msg}"
    );

    let mut m = tiny("gpt-2", None);
    m.set("tokenizer.ggml.model", "bert");
    let err = Tokenizer::from_metadata(&m).unwrap_err();
    assert!(matches!(err, TokenizerError::UnsupportedModel(ref s) if s == "bert"));

    let mut m = tiny("gpt-2", None);
    m.remove("tokenizer.ggml.merges");
    let msg = Tokenizer::from_metadata(&m).unwrap_err().to_string();
    assert!(
        msg.contains("tokenizer.ggml.merges") && msg.contains("missing"),
        "{msg}"
    );

    let msg = Tokenizer::from_metadata(&tiny("gpt-2", Some(vec![1, 1])))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("token_type") && msg.contains('2') && msg.contains('9'),
        "{msg}"
    );

    let mut m = tiny("gpt-2", None);
    m.set("tokenizer.ggml.tokens", 5u32);
    let msg = Tokenizer::from_metadata(&m).unwrap_err().to_string();
    assert!(
        msg.contains("tokenizer.ggml.tokens") && msg.contains("array"),
        "{msg}"
    );

    let mut m = tiny("gpt-2", None);
    m.set(
        "tokenizer.ggml.tokens",
        MetadataArray::String(StringArray::new()),
    );
    assert!(matches!(
        Tokenizer::from_metadata(&m).unwrap_err(),
        TokenizerError::BadVocabSize(0)
    ));
}

fn smollm2() -> &'static Tokenizer {
    static TOK: std::sync::OnceLock<Tokenizer> = std::sync::OnceLock::new();
    TOK.get_or_init(|| {
        let file = GgufFile::open(KnownModel::SmolLM2.ensure().expect("fetch SmolLM2"))
            .expect("open SmolLM2");
        Tokenizer::from_gguf(&file).expect("SmolLM2 tokenizer")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_round_trips(text in "(\\PC|\\s|<\\|im_(start|end)\\|>|'[sStTlL]+|[0-9]{1,6}){0,40}") {
        let tok = smollm2();
        for parse_special in [false, true] {
            let ids = tok.encode(&text, false, parse_special).unwrap();
            prop_assert_eq!(tok.decode(&ids), text.as_bytes());
            prop_assert!(ids.iter().all(|&t| (t as usize) < tok.n_vocab()));
        }
    }
}

#[test]
fn tokenizer_is_send_and_sync() {
    fn shareable<T: Send + Sync + Clone>() {}
    shareable::<Tokenizer>();
}
