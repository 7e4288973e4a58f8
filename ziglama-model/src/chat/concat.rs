//! The `~` operator as jinja2 evaluates it: every operand converted with Python's `str`
//! (`None`, `True`, `1e+20`, `{'a': 1}`), where minijinja would print `none`, `true`,
//! `100000000000000000000.0`, `{"a": 1}`.
//!
//! minijinja's `~` cannot be configured, so the template is rewritten before compiling:
//! each operand of `~` becomes `(operand)|_ziglama_str`. Operands are found with jinja2's
//! precedence: `~` binds tighter than `+`, `-`, comparisons, `and`, `or`, `not`, `in` and
//! the conditional expression, and looser than `*`, `/`, `//`, `%`, `**`, unary minus,
//! filters, tests, calls, attributes and subscripts.

/// The name of the filter operands go through (Python's `str`).
pub(crate) const STR_FILTER: &str = "_ziglama_str";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Name,
    Number,
    Str,
    Op,
    Open,
    Close,
}

#[derive(Clone, Copy, Debug)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

/// Words that end an operand of `~`: the operator keywords of expressions. (Statement
/// keywords such as `elif`, `set` or `include` are only keywords as the first word of a
/// statement, which is always a boundary; elsewhere `call` or `filter` are plain names.)
const KEYWORDS: &[&str] = &["in", "not", "and", "or", "if", "else", "recursive"];

/// Operators that end an operand of `~` (those of lower precedence, and separators).
const BOUNDARY_OPS: &[&str] = &[
    "+", "-", "~", "==", "!=", "<", ">", "<=", ">=", ",", ":", "=",
];

/// Splits an expression into tokens; `None` if it holds something this lexer does not
/// know (the tag is then left as it is).
fn tokenize(s: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < s.len() {
        let c = s[i..].chars().next()?;
        let start = i;
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        let kind = if c == '\'' || c == '"' {
            i += 1;
            loop {
                match bytes.get(i)? {
                    b'\\' => i += 2,
                    &b if b == c as u8 => {
                        i += 1;
                        break;
                    }
                    _ => i += 1,
                }
            }
            Kind::Str
        } else if c.is_ascii_digit() {
            while i < s.len() {
                let b = bytes[i];
                let exp_sign = (b == b'+' || b == b'-') && matches!(bytes[i - 1], b'e' | b'E');
                if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || exp_sign {
                    i += 1;
                } else {
                    break;
                }
            }
            Kind::Number
        } else if c.is_alphabetic() || c == '_' {
            while let Some(ch) = s[i..].chars().next() {
                if ch.is_alphanumeric() || ch == '_' {
                    i += ch.len_utf8();
                } else {
                    break;
                }
            }
            Kind::Name
        } else if matches!(c, '(' | '[' | '{') {
            i += 1;
            Kind::Open
        } else if matches!(c, ')' | ']' | '}') {
            i += 1;
            Kind::Close
        } else {
            let two = s.get(i..i + 2).unwrap_or("");
            if matches!(two, "**" | "//" | "==" | "!=" | "<=" | ">=") {
                i += 2;
            } else if "+-*/%~<>=,:.|!".contains(c) {
                i += 1;
            } else {
                return None;
            }
            Kind::Op
        };
        tokens.push(Token {
            kind,
            start,
            end: i,
        });
    }
    Some(tokens)
}

/// Rewrites one `{{ ... }}` or `{% ... %}` tag (see the module documentation).
pub(crate) fn python_concat(tag: &str, is_statement: bool) -> String {
    let body_start = 2 + usize::from(tag[2..].starts_with(['-', '+']));
    let mut body_end = tag.len() - 2;
    if body_end > body_start && tag[..body_end].ends_with(['-', '+']) {
        body_end -= 1;
    }
    if body_end <= body_start || !tag[body_start..body_end].contains('~') {
        return tag.to_owned();
    }
    let body = &tag[body_start..body_end];
    let Some(tokens) = tokenize(body) else {
        return tag.to_owned();
    };
    let Some(matching) = match_brackets(&tokens) else {
        return tag.to_owned();
    };
    let text = |t: &Token| &body[t.start..t.end];
    let is_operand_end = |i: usize| {
        let t = &tokens[i];
        match t.kind {
            Kind::Name => !KEYWORDS.contains(&text(t)),
            Kind::Number | Kind::Str | Kind::Close => true,
            Kind::Op | Kind::Open => false,
        }
    };
    // Whether token `i` ends an operand when met at the operand's own depth.
    let is_boundary = |i: usize| {
        let t = &tokens[i];
        if i == 0 && is_statement && t.kind == Kind::Name {
            return true;
        }
        let word = text(t);
        let after_is = i > 0 && text(&tokens[i - 1]) == "is";
        let after_is_not = i > 1 && text(&tokens[i - 1]) == "not" && text(&tokens[i - 2]) == "is";
        match t.kind {
            Kind::Name => KEYWORDS.contains(&word) && !after_is && !after_is_not,
            Kind::Op if word == "-" || word == "+" => i > 0 && is_operand_end(i - 1),
            Kind::Op => BOUNDARY_OPS.contains(&word),
            _ => false,
        }
    };
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (k, t) in tokens.iter().enumerate() {
        if t.kind != Kind::Op || text(t) != "~" {
            continue;
        }
        // Left operand: tokens k-1, k-2, ... down to a boundary or an unmatched opener.
        let mut first = k;
        let mut i = k;
        while i > 0 {
            let j = i - 1;
            match tokens[j].kind {
                Kind::Open => break,
                Kind::Close => {
                    first = matching[j];
                    i = matching[j];
                    continue;
                }
                _ if is_boundary(j) => break,
                _ => {}
            }
            first = j;
            i = j;
        }
        if first < k {
            spans.push((first, k - 1));
        }
        // Right operand: tokens k+1, k+2, ... up to a boundary or an unmatched closer.
        let mut last = k;
        let mut i = k + 1;
        while i < tokens.len() {
            match tokens[i].kind {
                Kind::Close => break,
                Kind::Open => {
                    last = matching[i];
                    i = matching[i] + 1;
                    continue;
                }
                _ if is_boundary(i) && !(i == k + 1 && matches!(text(&tokens[i]), "-" | "+")) => {
                    break
                }
                _ => {}
            }
            last = i;
            i += 1;
        }
        if last > k {
            spans.push((k + 1, last));
        }
    }
    spans.sort_unstable();
    spans.dedup();
    // Insertions (byte offset in body, text); closings before openings at one offset.
    let mut inserts: Vec<(usize, u8, String)> = Vec::new();
    for &(a, b) in &spans {
        inserts.push((tokens[a].start, 1, "(".to_owned()));
        inserts.push((tokens[b].end, 0, format!(")|{STR_FILTER}")));
    }
    inserts.sort_by_key(|x| (x.0, x.1));
    let mut out = String::with_capacity(tag.len() + inserts.len() * 16);
    out.push_str(&tag[..body_start]);
    let mut at = 0;
    for (pos, _, s) in &inserts {
        out.push_str(&body[at..*pos]);
        out.push_str(s);
        at = *pos;
    }
    out.push_str(&body[at..]);
    out.push_str(&tag[body_end..]);
    out
}

/// For each bracket token, the index of its partner; `None` if brackets do not balance.
fn match_brackets(tokens: &[Token]) -> Option<Vec<usize>> {
    let mut matching = vec![usize::MAX; tokens.len()];
    let mut stack = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        match t.kind {
            Kind::Open => stack.push(i),
            Kind::Close => {
                let open = stack.pop()?;
                matching[open] = i;
                matching[i] = open;
            }
            _ => {}
        }
    }
    stack.is_empty().then_some(matching)
}

#[cfg(test)]
mod tests {
    use super::python_concat;

    #[test]
    fn operands_of_tilde_go_through_str() {
        let cases = [
            ("{{ a ~ b }}", "{{ (a)|_ziglama_str ~ (b)|_ziglama_str }}"),
            (
                "{{- '// ' + k + ': ' ~ v ~ '\\n' -}}",
                "{{- '// ' + k + (': ')|_ziglama_str ~ (v)|_ziglama_str ~ ('\\n')|_ziglama_str -}}",
            ),
            (
                "{% set x = f(a, 'x' ~ b.c[0]|upper) if y else z %}",
                "{% set x = f(a, ('x')|_ziglama_str ~ (b.c[0]|upper)|_ziglama_str) if y else z %}",
            ),
            (
                "{%- if -n ~ x is not none == 'a~b' -%}",
                "{%- if (-n)|_ziglama_str ~ (x is not none)|_ziglama_str == 'a~b' -%}",
            ),
            (
                "{{ ['\"' ~ e ~ '\"'] + [x * 2 ~ -1] }}",
                "{{ [('\"')|_ziglama_str ~ (e)|_ziglama_str ~ ('\"')|_ziglama_str] + [(x * 2)|_ziglama_str ~ (-1)|_ziglama_str] }}",
            ),
            (
                "{% elif call(x) ~ y %}",
                "{% elif (call(x))|_ziglama_str ~ (y)|_ziglama_str %}",
            ),
            ("{{ 'no tilde' }}", "{{ 'no tilde' }}"),
            ("{{ 'a~b' }}", "{{ 'a~b' }}"),
        ];
        for (tag, want) in cases {
            assert_eq!(python_concat(tag, tag.starts_with("{%")), want, "{tag}");
        }
    }
}
