//! Chat templates render exactly as Python's jinja2 renders them in Hugging Face's
//! `apply_chat_template` environment: for every template (SmolLM2's, from its GGUF file,
//! and every `*.jinja` of llama.cpp's `models/templates/`) and every conversation of
//! `tests/data/chat/conversations.json`, our text equals jinja2's byte for byte, or both
//! fail (with the template's own message when it calls `raise_exception`).
//!
//! llama.cpp's ChatML fallback (for files without a template) is compared with
//! `ChatTemplate::chatml()`.
//!
//! The expected texts were written by `scripts/golden/chat_templates.py` (jinja2, with
//! `strftime_now` reading a fixed time, which the test gives our templates too). llama.cpp's
//! templates are not committed: `scripts/fetch_llama_vocab_tests.py --templates` installs
//! them into `<models dir>/llama-templates/` and runs here when they are missing; each
//! golden file carries the SHA-256 of the template it was made from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use ziglama_model::catalog::{models_dir, KnownModel};
use ziglama_model::chat::{parse_json, ChatError, ChatTemplate, DateTime, Limits, Message, Value};
use ziglama_model::gguf::GgufFile;

/// (template, conversation, why our output differs from jinja2's). Every entry must
/// really differ (the test fails on a stale entry), and nothing else may.
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[];

/// The time `strftime_now` reads in the golden data (`FIXED_NOW` of the script).
fn fixed_now() -> DateTime {
    DateTime::new(2024, 3, 9, 13, 7, 5).expect("valid date")
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/chat")
}

fn llama_templates_dir() -> PathBuf {
    let dir = models_dir().join("llama-templates");
    if dir.join(".complete").exists() {
        return dir;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join("fetch_llama_vocab_tests.py");
    let python = std::env::var_os("ZIGLAMA_PYTHON").unwrap_or_else(|| "python3".into());
    let out = Command::new(&python)
        .arg(&script)
        .arg("--templates")
        .env("ZIGLAMA_MODELS", models_dir())
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", script.display()));
    assert!(
        out.status.success() && dir.join(".complete").exists(),
        "{} --templates failed ({}):\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One conversation of conversations.json.
struct Conversation {
    name: String,
    messages: Value,
    add_generation_prompt: bool,
    variables: Vec<(String, Value)>,
}

fn conversations() -> Vec<Conversation> {
    let text = std::fs::read_to_string(data_dir().join("conversations.json")).expect("read");
    let root = parse_json(&text).expect("conversations.json");
    let list = root.get_attr("conversations").expect("conversations");
    let mut out = Vec::new();
    for c in list.try_iter().expect("a list") {
        let mut variables = Vec::new();
        let tools = c.get_attr("tools").expect("tools");
        if !tools.is_undefined() {
            variables.push(("tools".to_owned(), tools));
        }
        let extra = c.get_attr("extra").expect("extra");
        if !extra.is_undefined() {
            for key in extra.try_iter().expect("a map") {
                let value = extra.get_item(&key).expect("item");
                variables.push((key.as_str().expect("a key").to_owned(), value));
            }
        }
        out.push(Conversation {
            name: c.get_attr("name").unwrap().as_str().unwrap().to_owned(),
            messages: c.get_attr("messages").unwrap(),
            add_generation_prompt: c.get_attr("add_generation_prompt").unwrap().is_true(),
            variables,
        });
    }
    assert!(
        out.len() >= 15,
        "conversations.json has {} conversations",
        out.len()
    );
    out
}

/// The golden record of one template.
fn read_golden(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read golden")).expect("json")
}

/// The text of the template a golden record was made from. For llama.cpp's ChatML
/// fallback (a string in llama.cpp's C++ source, not fetched), ours: `ChatTemplate::chatml`.
fn template_source(golden: &serde_json::Value, llama_dir: &Path) -> String {
    let name = golden["template"].as_str().unwrap();
    if name == "llama-cpp-chatml-fallback" {
        return ChatTemplate::chatml().unwrap().source().to_owned();
    }
    let source = if name == "gguf-SmolLM2" {
        let file = GgufFile::open(KnownModel::SmolLM2.ensure().expect("fetch SmolLM2")).unwrap();
        file.metadata()
            .get_str("tokenizer.chat_template")
            .unwrap()
            .to_owned()
    } else {
        let path = llama_dir.join(format!("{name}.jinja"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    assert_eq!(
        sha256_hex(&source),
        golden["sha256"].as_str().unwrap(),
        "{name}: the template is not the one the golden data was made from"
    );
    source
}

/// What our renderer gives for one conversation: text, or an error.
fn render(template: &ChatTemplate, c: &Conversation) -> Result<String, ChatError> {
    let vars: Vec<(&str, Value)> = c
        .variables
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    template.render_with(&c.messages, c.add_generation_prompt, &vars)
}

/// Compares one (template, conversation) result; `None` if they agree, else a description.
fn compare(expected: &serde_json::Value, got: &Result<String, ChatError>) -> Option<String> {
    match (expected.get("output"), got) {
        (Some(want), Ok(text)) if want.as_str() == Some(text.as_str()) => None,
        (Some(want), Ok(text)) => Some(format!(
            "output differs:\n--- jinja2\n{}\n--- ours\n{text}\n---",
            want.as_str().unwrap()
        )),
        (Some(_), Err(e)) => Some(format!("jinja2 renders, we fail: {e}")),
        (None, Ok(text)) => Some(format!(
            "jinja2 fails ({}), we render:\n{text}",
            expected["error"]
        )),
        (None, Err(e)) => {
            let err = &expected["error"];
            if err["raised_by_template"].as_bool() == Some(true) {
                let want = err["message"].as_str().unwrap();
                match e {
                    ChatError::Raised { message, .. } if message == want => None,
                    _ => Some(format!(
                        "the template raises {want:?} in jinja2, we fail with: {e}"
                    )),
                }
            } else {
                None
            }
        }
    }
}

#[test]
fn every_template_renders_like_jinja2() {
    let llama_dir = llama_templates_dir();
    let conversations = conversations();
    let mut goldens: Vec<PathBuf> = std::fs::read_dir(data_dir().join("expected"))
        .expect("expected/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    goldens.sort();

    let mut n_templates = 0;
    let mut n_cases = 0;
    let mut n_raised = 0;
    let mut differences: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut fully_matching = 0;
    for path in &goldens {
        let golden = read_golden(path);
        if golden.get("missing").is_some() {
            continue; // a GGUF without a template: see gguf_without_template_is_an_error
        }
        let name = golden["template"].as_str().unwrap().to_owned();
        let source = template_source(&golden, &llama_dir);
        n_templates += 1;
        let compiled = ChatTemplate::new(source).map(|t| {
            t.with_special_tokens(
                golden["bos_token"].as_str().unwrap(),
                golden["eos_token"].as_str().unwrap(),
            )
            .with_clock(fixed_now)
            .expect("recompile")
        });
        let before = differences.len();
        if golden.get("compile_error").is_some() {
            // jinja2 refuses the template: so must we, when compiling or rendering.
            n_cases += conversations.len();
            if let Ok(t) = &compiled {
                for c in &conversations {
                    if let Ok(text) = render(t, c) {
                        differences.insert(
                            (name.clone(), c.name.clone()),
                            format!("jinja2 cannot compile the template, we render:\n{text}"),
                        );
                    }
                }
            }
        } else {
            let results = &golden["results"];
            assert_eq!(results.as_object().unwrap().len(), conversations.len());
            for c in &conversations {
                let expected = &results[c.name.as_str()];
                n_cases += 1;
                n_raised += usize::from(expected.get("error").is_some());
                let got = match &compiled {
                    Ok(t) => render(t, c),
                    Err(e) => Err(ChatError::Render {
                        line: 0,
                        message: format!("we cannot compile the template: {e}"),
                    }),
                };
                if let Some(diff) = compare(expected, &got) {
                    differences.insert((name.clone(), c.name.clone()), diff);
                }
            }
        }
        if differences.len() == before {
            fully_matching += 1;
        }
    }
    let n_match = n_cases - differences.len();
    eprintln!(
        "chat templates: {fully_matching}/{n_templates} templates match jinja2 on every \
         conversation; {n_match}/{n_cases} (template, conversation) cases match \
         ({n_raised} of them are errors in jinja2)"
    );

    // Every difference is a listed one, and every listed one is still a difference.
    let listed: BTreeMap<(String, String), &str> = KNOWN_DIFFERENCES
        .iter()
        .map(|&(t, c, why)| ((t.to_owned(), c.to_owned()), why))
        .collect();
    let unexpected: Vec<String> = differences
        .iter()
        .filter(|(k, _)| !listed.contains_key(*k))
        .map(|((t, c), d)| format!("== {t} / {c}: {d}"))
        .collect();
    let stale: Vec<&(String, String)> = listed
        .keys()
        .filter(|k| !differences.contains_key(*k))
        .collect();
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "{} unexpected differences from jinja2:\n{}\nlisted differences that no longer differ: {stale:?}",
        unexpected.len(),
        unexpected.join("\n")
    );
    assert!(n_templates >= 72, "only {n_templates} templates checked");
}

#[test]
fn smollm2_template_comes_from_its_gguf_file() {
    let file = GgufFile::open(KnownModel::SmolLM2.ensure().expect("fetch SmolLM2")).unwrap();
    let golden = read_golden(&data_dir().join("expected/gguf-SmolLM2.json"));
    let template = ChatTemplate::from_gguf(&file).expect("SmolLM2 has a chat template");
    assert_eq!(
        sha256_hex(template.source()),
        golden["sha256"].as_str().unwrap()
    );
    assert_eq!(template.bos_token(), golden["bos_token"].as_str().unwrap());
    assert_eq!(template.eos_token(), golden["eos_token"].as_str().unwrap());
    assert_eq!(template.bos_token(), "<|im_start|>");
}

#[test]
fn gguf_without_template_is_an_error() {
    let golden = read_golden(&data_dir().join("expected/gguf-Gemma3.json"));
    assert_eq!(golden["missing"], "tokenizer.chat_template");
    let file = GgufFile::open(KnownModel::Gemma3.ensure().expect("fetch Gemma 3")).unwrap();
    let err = ChatTemplate::from_gguf(&file).unwrap_err();
    assert!(
        matches!(
            err,
            ChatError::MissingTemplate {
                key: "tokenizer.chat_template"
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("tokenizer.chat_template"));

    // As llama.cpp does, fall back to ChatML, with the file's bos and eos texts.
    let t = ChatTemplate::from_gguf_or_chatml(&file).unwrap();
    assert_eq!(t.source(), ChatTemplate::chatml().unwrap().source());
    assert_eq!(t.bos_token(), golden["bos_token"].as_str().unwrap());
    assert_eq!(t.eos_token(), golden["eos_token"].as_str().unwrap());
    assert_eq!(t.bos_token(), "<bos>");
    // A file with a template keeps it.
    let smollm2 = GgufFile::open(KnownModel::SmolLM2.ensure().expect("fetch SmolLM2")).unwrap();
    assert_eq!(
        ChatTemplate::from_gguf_or_chatml(&smollm2)
            .unwrap()
            .source(),
        ChatTemplate::from_gguf(&smollm2).unwrap().source()
    );
}

#[test]
fn messages_api_renders_like_the_json_conversation() {
    // SmolLM2's template through the typed API, against jinja2's text for "multi_turn".
    let file = GgufFile::open(KnownModel::SmolLM2.ensure().expect("fetch SmolLM2")).unwrap();
    let template = ChatTemplate::from_gguf(&file).unwrap();
    let golden = read_golden(&data_dir().join("expected/gguf-SmolLM2.json"));
    let messages = [
        Message::system("You are a concise assistant."),
        Message::user("Name a colour."),
        Message::assistant("Blue."),
        Message::user("Another one?"),
    ];
    assert_eq!(
        template.render(&messages, true).unwrap(),
        golden["results"]["multi_turn"]["output"].as_str().unwrap()
    );
}

/// Templates are untrusted: every way one can fail is an error naming what failed.
#[test]
fn broken_and_hostile_templates_are_errors() {
    let hi = [Message::user("hi")];
    let syntax = |src: &str| ChatTemplate::new(src).unwrap_err();
    match syntax("line one\n{% if messages %}\n{{ messages[0].content }}") {
        ChatError::Syntax { line, message } => {
            assert_eq!(line, 3, "{message}");
            assert!(message.contains("end of input"), "{message}");
        }
        e => panic!("expected a syntax error, got {e}"),
    }
    assert!(matches!(
        syntax("{{ 1 + }}"),
        ChatError::Syntax { line: 1, .. }
    ));
    assert!(matches!(syntax("{% endfor %}"), ChatError::Syntax { .. }));

    let render = |src: &str| ChatTemplate::new(src).unwrap().render(&hi, true);
    // Runtime errors: the line and what failed.
    match render("ok\n{{ messages[0].content.nope.deeper }}") {
        Err(ChatError::Render { line: 2, message }) => assert!(message.contains("undefined")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        render("{{ 'a' + 1 }}"),
        Err(ChatError::Render { .. })
    ));
    assert!(matches!(
        render("{{ messages | from_json }}"),
        Err(ChatError::Render { .. })
    ));
    assert!(matches!(
        render("{{ messages.append(1) }}"),
        Err(ChatError::Render { .. })
    ));
    match render("{% if messages[0].role != 'system' %}{{ raise_exception('need a system message') }}{% endif %}") {
        Err(ChatError::Raised { message, line: 1 }) => assert_eq!(message, "need a system message"),
        other => panic!("{other:?}"),
    }
    // Unbounded work, recursion and output stop with LimitExceeded.
    let limited = |src: &str| {
        ChatTemplate::new(src)
            .unwrap()
            .with_limits(Limits {
                fuel: 100_000,
                recursion: 50,
                max_output_bytes: 10_000,
            })
            .unwrap()
            .render(&hi, true)
    };
    for src in [
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        "{% for i in range(100000) %}0123456789{% endfor %}",
        "{{ 'x' * 100000 }}",
    ] {
        match limited(src) {
            Err(ChatError::LimitExceeded { message, .. }) => assert!(!message.is_empty()),
            other => panic!("{src}: expected a limit error, got {other:?}"),
        }
    }
    // The default limits stop them too (fuel first).
    let err =
        render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");
    assert!(
        matches!(err, Err(ChatError::LimitExceeded { .. })),
        "{err:?}"
    );
}

/// Snippets whose output differs from jinja2's, with the reason (none today).
const SNIPPET_DIFFERENCES: &[(&str, &str)] = &[];

/// Small templates probing the Python semantics templates rely on (`snippets.json`):
/// printing, `~`, `string`, `join`, `tojson` and its options, strip/split/... methods,
/// filters, tests, truthiness, arithmetic, loops, namespaces, macros, whitespace control,
/// and the errors (None iterated, `in` None, length of None, str + int, list.append).
#[test]
fn snippets_render_like_jinja2() {
    let spec = std::fs::read_to_string(data_dir().join("snippets.json")).unwrap();
    let spec = parse_json(&spec).unwrap();
    let golden = read_golden(&data_dir().join("snippets_expected.json"));
    let variables = spec.get_attr("variables").unwrap();
    let vars: Vec<(String, Value)> = variables
        .try_iter()
        .unwrap()
        .map(|k| {
            let v = variables.get_item(&k).unwrap();
            (k.as_str().unwrap().to_owned(), v)
        })
        .collect();
    let vars: Vec<(&str, Value)> = vars.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let mut differences = BTreeMap::new();
    let mut n = 0;
    for snippet in spec.get_attr("snippets").unwrap().try_iter().unwrap() {
        let name = snippet
            .get_attr("name")
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned();
        let source = snippet
            .get_attr("template")
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned();
        let got = ChatTemplate::new(source).and_then(|t| {
            t.with_clock(fixed_now)?
                .render_with(&Value::from(Vec::<Value>::new()), false, &vars)
        });
        if let Some(diff) = compare(&golden["results"][name.as_str()], &got) {
            differences.insert(name, diff);
        }
        n += 1;
    }
    assert_eq!(n, golden["results"].as_object().unwrap().len());
    let listed: BTreeMap<String, &str> = SNIPPET_DIFFERENCES
        .iter()
        .map(|&(name, why)| (name.to_owned(), why))
        .collect();
    let unexpected: Vec<String> = differences
        .iter()
        .filter(|(k, _)| !listed.contains_key(*k))
        .map(|(k, d)| format!("== {k}: {d}"))
        .collect();
    let stale: Vec<&String> = listed
        .keys()
        .filter(|k| !differences.contains_key(*k))
        .collect();
    eprintln!("snippets: {}/{n} match jinja2", n - differences.len());
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "{} snippets differ from jinja2:\n{}\nlisted differences that no longer differ: {stale:?}",
        unexpected.len(),
        unexpected.join("\n")
    );
}

/// Random expressions mixing `~`, `+` and `%` (the operators whose evaluation is rewritten
/// before compiling) with the operators around them in precedence, filters, subscripts,
/// conditionals and literals (`expressions.json`): our result equals jinja2's, or both
/// fail. Expressions that differ are listed with the reason (none today).
const EXPRESSION_DIFFERENCES: &[(&str, &str)] = &[
    (
        "{% for v in [not '%s!' < undefined_x < ('p', 3) != (b|string + 2)] %}{{ loop.index }}:{{ v }}{% endfor %}",
        "ordering against an undefined value is an UndefinedError in jinja2; minijinja's lenient undefined compares (false)",
    ),
    (
        "{{ m.k if [1, 2] else 1 - '%s!' % t and (('p', 3)) in 0 * none + not [1, 2] + a|length if ('p', 3) else c }}",
        NOT_AFTER_OPERATOR,
    ),
    (
        "{{ l[1] if 1.5 else 1.5 != c // l[1] if b else 2 + (a|length) + '<'|safe * not (l|join('-')) }}",
        NOT_AFTER_OPERATOR,
    ),
    (
        "{{ not 1.5 % not [undefined_x, 0] == t if not '<'|safe else not 'x'|e }}",
        NOT_AFTER_OPERATOR,
    ),
    (
        "{{ (m.k if ('p', 3) else undefined_x) in [1, 2] == true ~ m < c - [-3, true] / not [1, 2] and a|length }}",
        NOT_AFTER_OPERATOR,
    ),
    (
        "{{ l[1] if 1.5 else m.k == (a|length) % not -'x'|e }}",
        NOT_AFTER_OPERATOR,
    ),
];

/// jinja2 parses `not` right after a binary operator (`x + not y`, `x % not y`) as a plain
/// name (here always in a branch never evaluated); minijinja's grammar rejects it, so the
/// template does not compile. No real template writes this.
const NOT_AFTER_OPERATOR: &str = "`+ not x` / `* not x`: jinja2 accepts, minijinja does not parse";

#[test]
fn random_expressions_evaluate_like_jinja2() {
    let text = std::fs::read_to_string(data_dir().join("expressions.json")).unwrap();
    let spec = parse_json(&text).unwrap();
    let golden = read_golden(&data_dir().join("expressions.json"));
    let variables = spec.get_attr("variables").unwrap();
    let vars: Vec<(String, Value)> = variables
        .try_iter()
        .unwrap()
        .map(|k| {
            let v = variables.get_item(&k).unwrap();
            (k.as_str().unwrap().to_owned(), v)
        })
        .collect();
    let vars: Vec<(&str, Value)> = vars.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() >= 400);
    let mut differences = Vec::new();
    for case in cases {
        let template = case["template"].as_str().unwrap();
        let got = ChatTemplate::new(template)
            .and_then(|t| t.render_with(&Value::from(Vec::<Value>::new()), false, &vars));
        if let Some(diff) = compare(case, &got) {
            differences.push((template, diff));
        }
    }
    let listed: Vec<&str> = EXPRESSION_DIFFERENCES.iter().map(|d| d.0).collect();
    let unexpected: Vec<String> = differences
        .iter()
        .filter(|(t, _)| !listed.contains(t))
        .map(|(t, d)| format!("== {t}: {d}"))
        .collect();
    let stale: Vec<&&str> = listed
        .iter()
        .filter(|t| !differences.iter().any(|(d, _)| d == *t))
        .collect();
    eprintln!(
        "expressions: {}/{} match jinja2",
        cases.len() - differences.len(),
        cases.len()
    );
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "{} expressions differ from jinja2:\n{}\nlisted differences that no longer differ: {stale:?}",
        unexpected.len(),
        unexpected.join("\n")
    );
}
