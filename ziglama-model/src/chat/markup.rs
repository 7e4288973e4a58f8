//! `+` with markup strings as jinja2 evaluates it. In Python, `safe` (and `escape`) make a
//! markupsafe `Markup`, and `Markup + str` (or `str + Markup`) HTML-escapes the plain
//! string: `"<b>"|safe + "<i>"` is `<b>&lt;i&gt;`. minijinja's `+` concatenates as is.
//!
//! Templates that use `safe`, `escape` or `e` are rewritten before compiling: every chain
//! `a + b - c + d` becomes `_ziglama_add(_ziglama_add(a, b) - c, d)`, a function with
//! Python's semantics (see [`add`]).

use minijinja::value::ValueKind;
use minijinja::{Error, ErrorKind, Value};

use super::arithmetic::as_f64;
use super::expr::{Expr, Level};
use super::filters::markup_escape;

/// The name of the function additions become.
pub(crate) const ADD_FUNCTION: &str = "_ziglama_add";

/// Whether a template makes markup strings (and so needs [`python_add`]).
pub(crate) fn uses_markup(source: &str) -> bool {
    let mut rest = source;
    while let Some(i) = rest.find('|') {
        rest = &rest[i + 1..];
        let name = rest.trim_start();
        let word_end = name
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(name.len());
        if matches!(&name[..word_end], "safe" | "escape" | "e" | "forceescape") {
            return true;
        }
    }
    false
}

/// Rewrites the chains of `+` of one tag into calls of [`ADD_FUNCTION`].
pub(crate) fn python_add(tag: &str, is_statement: bool) -> String {
    if !tag.contains('+') {
        return tag.to_owned();
    }
    let Some(mut expr) = Expr::parse(tag, is_statement) else {
        return tag.to_owned();
    };
    expr.rewrite_chains(Level::Math1, &["+", "-"], "+", ADD_FUNCTION);
    expr.finish()
}

/// `a + b` as Python evaluates it: a markup string plus a string escapes the plain one and
/// gives markup; otherwise numbers add, strings and lists concatenate, and anything else
/// is an error.
pub(crate) fn add(a: &Value, b: &Value) -> Result<Value, Error> {
    let (ka, kb) = (a.kind(), b.kind());
    let unsupported = || {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("unsupported operand type(s) for +: '{ka}' and '{kb}'"),
        )
    };
    match (ka, kb) {
        (ValueKind::String, ValueKind::String) => {
            let (sa, sb) = (a.as_str().unwrap_or(""), b.as_str().unwrap_or(""));
            if a.is_safe() || b.is_safe() {
                let part = |v: &Value, s: &str| {
                    if v.is_safe() {
                        s.to_owned()
                    } else {
                        markup_escape(s)
                    }
                };
                Ok(Value::from_safe_string(part(a, sa) + &part(b, sb)))
            } else {
                Ok(Value::from(format!("{sa}{sb}")))
            }
        }
        (ValueKind::Number | ValueKind::Bool, ValueKind::Number | ValueKind::Bool) => {
            let int = |v: &Value| -> Option<i128> {
                if v.kind() == ValueKind::Bool {
                    Some(i128::from(v.is_true()))
                } else if v.is_integer() {
                    i128::try_from(v.clone()).ok()
                } else {
                    None
                }
            };
            match (int(a), int(b)) {
                (Some(x), Some(y)) => x.checked_add(y).map(Value::from).ok_or_else(unsupported),
                _ => {
                    let x = as_f64(a).ok_or_else(unsupported)?;
                    let y = as_f64(b).ok_or_else(unsupported)?;
                    Ok(Value::from(x + y))
                }
            }
        }
        (ValueKind::Seq, ValueKind::Seq) if a.is_tuple() == b.is_tuple() => {
            let items: Vec<Value> = a.try_iter()?.chain(b.try_iter()?).collect();
            Ok(Value::from(items))
        }
        (ValueKind::Undefined, _) | (_, ValueKind::Undefined) => Err(Error::new(
            ErrorKind::UndefinedError,
            "undefined value used in +",
        )),
        _ => Err(unsupported()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addition_chains_become_calls() {
        assert_eq!(
            python_add("{{ \"a '\"|safe + t['n'] + \"'\\n\"|safe + t | tojson() }}", false),
            "{{ _ziglama_add(_ziglama_add(_ziglama_add(\"a '\"|safe , t['n']) , \"'\\n\"|safe) , t | tojson()) }}"
        );
        assert_eq!(
            python_add("{% set x = [a + 1] if b + c - d else -e + f(g + h) %}", true),
            "{% set x = [_ziglama_add(a , 1)] if _ziglama_add(b , c) - d else _ziglama_add(-e , f(_ziglama_add(g , h))) %}"
        );
    }

    #[test]
    fn markup_plus_string_escapes_the_string() {
        let safe = Value::from_safe_string("<b>".into());
        let out = add(&safe, &Value::from("\"&'")).unwrap();
        assert!(out.is_safe());
        assert_eq!(out.as_str(), Some("<b>&#34;&amp;&#39;"));
        assert_eq!(
            add(&Value::from(1), &Value::from(true)).unwrap(),
            Value::from(2)
        );
        assert_eq!(
            add(&Value::from(1), &Value::from(0.5)).unwrap(),
            Value::from(1.5)
        );
        assert!(add(&Value::from("a"), &Value::from(1)).is_err());
    }
}
