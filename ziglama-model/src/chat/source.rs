//! What is done to a template's text before compiling it, so that minijinja reads it as
//! jinja2 (in Hugging Face's environment) reads it.

use std::sync::OnceLock;

use regex::Regex;

/// The template text minijinja compiles:
/// - line endings `\r\n` and `\r` become `\n`, as jinja2's lexer normalizes them;
/// - `{% generation %}` ... `{% endgeneration %}` (the block transformers' environment
///   accepts to mark the assistant's text, which renders its body) becomes
///   `{% if true %}` ... `{% endif %}`, keeping the tags' whitespace control;
/// - the iterable of every `for` loop goes through a filter that fails on none, as Python
///   cannot iterate over `None` (see [`guard_for_loops`]).
/// - in templates that make markup strings (`safe`, `escape`), `+` escapes as
///   markupsafe's `Markup` does (see [`super::markup`]);
/// - `str % args` formats as Python's printf-style formatting, and `-x` negates booleans
///   (see [`super::arithmetic`]);
/// - operands of `~` are printed as Python's `str` prints them (see
///   [`super::concat::python_concat`]).
pub(crate) fn prepare(source: &str) -> String {
    let mut text = guard_for_loops(&generation_blocks(source));
    if super::markup::uses_markup(&text) {
        text = map_tags(&text, super::markup::python_add);
    }
    if text.contains('%') {
        text = map_tags(&text, super::arithmetic::python_mod);
    }
    if text.contains('-') {
        text = map_tags(&text, super::arithmetic::python_neg);
    }
    if text.contains('~') {
        map_tags(&text, super::concat::python_concat)
    } else {
        text
    }
}

fn generation_blocks(source: &str) -> String {
    static TAG: OnceLock<Option<Regex>> = OnceLock::new();
    let text = source.replace("\r\n", "\n").replace('\r', "\n");
    let tag =
        TAG.get_or_init(|| Regex::new(r"\{%([-+]?)(\s*)(end)?generation(\s*)([-+]?)%\}").ok());
    match tag {
        Some(re) if text.contains("generation") => re
            .replace_all(&text, |c: &regex::Captures<'_>| {
                let body = if c.get(3).is_some() {
                    "endif"
                } else {
                    "if true"
                };
                format!("{{%{}{}{body}{}{}%}}", &c[1], &c[2], &c[4], &c[5])
            })
            .into_owned(),
        _ => text,
    }
}

/// The name of the filter [`guard_for_loops`] inserts.
pub(crate) const ITERABLE_GUARD: &str = "_ziglama_iterable";

/// Rewrites every `{% ... %}` and `{{ ... }}` tag with `f(tag, is_statement)`; text,
/// comments and raw blocks are copied unchanged, string literals inside tags are skipped
/// over when looking for the end of a tag.
pub(crate) fn map_tags(source: &str, mut f: impl FnMut(&str, bool) -> String) -> String {
    let mut out = String::with_capacity(source.len() + 64);
    let mut rest = source;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        let (close, kind) = if rest.starts_with("{#") {
            (rest.find("#}").map(|i| i + 2), None)
        } else if rest.starts_with("{{") {
            (tag_end(rest, "}}"), Some(false))
        } else if rest.starts_with("{%") {
            (tag_end(rest, "%}"), Some(true))
        } else {
            (Some(1), None)
        };
        let Some(close) = close else {
            out.push_str(rest);
            return out;
        };
        let tag = &rest[..close];
        rest = &rest[close..];
        let Some(is_statement) = kind else {
            out.push_str(tag);
            continue;
        };
        let inner = tag[2..tag.len() - 2]
            .trim_start_matches(['-', '+'])
            .trim_start();
        if is_statement && first_word(inner) == "raw" {
            // Copy through the matching endraw tag.
            out.push_str(tag);
            let end = find_endraw(rest).unwrap_or(rest.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else {
            out.push_str(&f(tag, is_statement));
        }
    }
    out.push_str(rest);
    out
}

/// Rewrites `{% for TARGET in ITER [if COND] [recursive] %}` into
/// `{% for TARGET in (ITER)|_ziglama_iterable ... %}`.
pub(crate) fn guard_for_loops(source: &str) -> String {
    map_tags(source, |tag, is_statement| {
        let inner = tag[2..tag.len() - 2]
            .trim_start_matches(['-', '+'])
            .trim_start();
        if is_statement && first_word(inner) == "for" {
            rewrite_for(tag)
        } else {
            tag.to_owned()
        }
    })
}

pub(crate) fn first_word(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The end (exclusive) of a tag starting at 0 and closed by `close`, skipping string
/// literals.
fn tag_end(s: &str, close: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(2) {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => quote = Some(c),
            None if s[i..].starts_with(close) => return Some(i + close.len()),
            None => {}
        }
    }
    None
}

/// The start of the `{% endraw %}` tag in `s`.
fn find_endraw(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find("{%") {
        let at = from + i;
        let inner = s[at + 2..].trim_start_matches(['-', '+']).trim_start();
        if first_word(inner) == "endraw" {
            return Some(at);
        }
        from = at + 2;
    }
    None
}

/// Rewrites one `{% for ... %}` tag (see [`guard_for_loops`]); a tag it does not
/// understand is returned unchanged (minijinja then reports it).
fn rewrite_for(tag: &str) -> String {
    // Words at nesting depth 0, outside string literals, with their byte ranges.
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut word_start: Option<usize> = None;
    let body_end = tag.len() - 2;
    for (i, c) in tag
        .char_indices()
        .skip(2)
        .take_while(|(i, _)| *i < body_end)
    {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        let is_word_char = c.is_alphanumeric() || c == '_';
        if let Some(start) = word_start {
            if !is_word_char {
                if depth == 0 {
                    words.push((start, i));
                }
                word_start = None;
            }
        } else if is_word_char {
            word_start = Some(i);
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
    }
    if let Some(start) = word_start {
        words.push((start, body_end));
    }
    let word = |&(a, b): &(usize, usize)| &tag[a..b];
    let Some(in_pos) = words.iter().position(|w| word(w) == "in") else {
        return tag.to_owned();
    };
    let iter_start = words[in_pos].1;
    let iter_end = words[in_pos + 1..]
        .iter()
        .find(|w| matches!(word(w), "if" | "recursive"))
        .map(|w| w.0)
        .unwrap_or_else(|| tag[..body_end].trim_end_matches(['-', '+']).len());
    let iter = tag[iter_start..iter_end].trim();
    if iter.is_empty() {
        return tag.to_owned();
    }
    format!(
        "{} ({iter})|{ITERABLE_GUARD} {}",
        &tag[..iter_start],
        &tag[iter_end..]
    )
}

#[cfg(test)]
mod tests {
    use super::{guard_for_loops, prepare};

    #[test]
    fn for_loops_iterate_through_the_guard() {
        assert_eq!(
            guard_for_loops("{%- for m in messages[1:] if m.role != 'x' -%}{{ '{% for a in b %}' }}{% endfor %}"),
            "{%- for m in (messages[1:])|_ziglama_iterable if m.role != 'x' -%}{{ '{% for a in b %}' }}{% endfor %}"
        );
        assert_eq!(
            guard_for_loops("{% for k, v in d.items() %}{# {% for x in y %} #}"),
            "{% for k, v in (d.items())|_ziglama_iterable %}{# {% for x in y %} #}"
        );
        assert_eq!(
            guard_for_loops("{% raw %}{% for x in y %}{% endraw %}{%for x in [1,2]-%}"),
            "{% raw %}{% for x in y %}{% endraw %}{%for x in ([1,2])|_ziglama_iterable -%}"
        );
        assert_eq!(guard_for_loops("{% for x %}{ {"), "{% for x %}{ {");
    }

    #[test]
    fn generation_blocks_become_plain_blocks() {
        use super::generation_blocks as prepare;
        assert_eq!(
            prepare("a{%- generation %}b{% endgeneration -%}\r\nc\rd"),
            "a{%- if true %}b{% endif -%}\nc\nd"
        );
        assert_eq!(prepare("{{ 'generation' }}"), "{{ 'generation' }}");
    }

    #[test]
    fn prepare_does_both() {
        assert_eq!(
            prepare("{% generation %}{% for x in y %}"),
            "{% if true %}{% for x in (y)|_ziglama_iterable %}"
        );
    }
}
