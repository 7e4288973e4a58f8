//! The `chat` example driven through standard input: two user lines then `/quit`; its
//! replies (greedy, streamed to standard output) equal what `TextGenerator` makes for the
//! same conversation through SmolLM2's chat template, and the first one is llama.cpp's.
//!
//! `cargo test` builds the examples next to the tests (`target/<profile>/examples/`), and
//! the test runs that binary; when it is missing (a run of this test alone), the test
//! builds it with cargo into a target directory of its own (the outer cargo holds the lock
//! of the usual one while tests run).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use ziglama::infer::generator::{GenerationConfig, TextGenerator};
use ziglama::infer::sampling::{Preset, SamplingConfig};
use ziglama::model::catalog::KnownModel;
use ziglama::model::chat::Message;
use ziglama::model::model::Model;

const MAX_TOKENS: usize = 24;

#[test]
fn chat_example_streams_the_replies_of_the_conversation() {
    let path = KnownModel::SmolLM2.ensure().expect("SmolLM2");
    let bin = common::example("chat");
    let mut child = Command::new(&bin)
        .args(["--max-tokens", &MAX_TOKENS.to_string(), "--ctx-size", "512"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the chat example");
    let questions = ["What is the capital of France?", "And of Italy?"];
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for q in questions {
            writeln!(stdin, "{q}").unwrap();
        }
        writeln!(stdin, "/quit").unwrap();
        writeln!(stdin, "This line is never read.").unwrap();
    }
    let output = child.wait_with_output().expect("the chat example ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");

    // The same conversation through the library, with the example's default sampler.
    let model = Model::load(&path).unwrap();
    let config = GenerationConfig::default()
        .with_sampling(SamplingConfig {
            temperature: 0.0,
            ..SamplingConfig::preset(Preset::Balanced)
        })
        .with_max_tokens(MAX_TOKENS);
    let mut generator = TextGenerator::builder(&model)
        .config(config)
        .context_size(512)
        .threads(2)
        .build()
        .unwrap();
    let mut conversation = Vec::new();
    let mut want = String::new();
    for q in questions {
        conversation.push(Message::user(q));
        let reply = generator.generate(conversation.clone()).unwrap();
        assert!(!reply.text.is_empty());
        want.push_str(&reply.text);
        want.push('\n');
        conversation.push(Message::assistant(reply.text));
    }
    assert_eq!(stdout, want);
    // llama.cpp's greedy reply to the first question (24 tokens, through the same template).
    assert!(
        stdout
            .starts_with("L'Étoile, la Cité, la Nation, la Géologie, la Culture, la Tradition,\n"),
        "{stdout}"
    );
}
