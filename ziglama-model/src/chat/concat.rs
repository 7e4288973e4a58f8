//! The `~` operator as jinja2 evaluates it: every operand converted with Python's `str`
//! (`None`, `True`, `1e+20`, `{'a': 1}`), where minijinja would print `none`, `true`,
//! `100000000000000000000.0`, `{"a": 1}`.
//!
//! minijinja's `~` cannot be configured, so the template is rewritten before compiling:
//! each operand of `~` becomes `(operand)|_ziglama_str`. Operands are found with jinja2's
//! precedence: `~` binds tighter than `+`, `-`, comparisons, `and`, `or`, `not`, `in` and
//! the conditional expression, and looser than `*`, `/`, `//`, `%`, `**`, unary minus,
//! filters, tests, calls, attributes and subscripts.

use super::expr::{Expr, Kind, Level};

/// The name of the filter operands go through (Python's `str`).
pub(crate) const STR_FILTER: &str = "_ziglama_str";

/// Rewrites one `{{ ... }}` or `{% ... %}` tag (see the module documentation).
pub(crate) fn python_concat(tag: &str, is_statement: bool) -> String {
    if !tag.contains('~') {
        return tag.to_owned();
    }
    let Some(mut expr) = Expr::parse(tag, is_statement) else {
        return tag.to_owned();
    };
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for k in 0..expr.len() {
        if expr.kind(k) != Kind::Op || expr.text(k) != "~" {
            continue;
        }
        spans.extend(expr.left_operand(k, Level::Concat));
        spans.extend(expr.right_operand(k, Level::Concat));
    }
    spans.sort_unstable();
    spans.dedup();
    for (first, last) in spans {
        expr.insert_before(first, 1, "(");
        expr.insert_after(last, 0, format!(")|{STR_FILTER}"));
    }
    expr.finish()
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
