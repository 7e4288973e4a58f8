//! Arithmetic that minijinja evaluates differently from Python.
//!
//! `%` is printf-style formatting when the left operand is a string (`'%s: %d' % (name,
//! n)`) and floored modulo on numbers; minijinja has only the modulo, so every chain
//! holding a binary `%` is rewritten before compiling: `a % b` becomes
//! `_ziglama_mod(a, b)` (see [`modulo`]). Unary minus on anything but a number literal
//! becomes `_ziglama_neg(x)`, since Python negates booleans (`-True` is `-1`; see
//! [`negate`]).

use minijinja::formatting::{format, FormatStyle};
use minijinja::value::ValueKind;
use minijinja::{Error, ErrorKind, Value};

use super::expr::{Expr, Kind, Level};
use super::python::{py_repr, py_str};

/// The name of the function `%` becomes.
pub(crate) const MOD_FUNCTION: &str = "_ziglama_mod";

/// Rewrites the chains of `*`, `/`, `//`, `%` of one tag that hold a `%`.
pub(crate) fn python_mod(tag: &str, is_statement: bool) -> String {
    if !tag[2..tag.len().saturating_sub(2).max(2)].contains('%') {
        return tag.to_owned();
    }
    let Some(mut expr) = Expr::parse(tag, is_statement) else {
        return tag.to_owned();
    };
    expr.rewrite_chains(Level::Math2, &["*", "/", "//", "%"], "%", MOD_FUNCTION);
    expr.finish()
}

/// The name of the function unary minus becomes.
pub(crate) const NEG_FUNCTION: &str = "_ziglama_neg";

/// Rewrites unary minus on anything but a number literal (`-x`, `-(a)`) into
/// `_ziglama_neg(x)`: Python negates booleans (`-True` is `-1`), minijinja refuses.
pub(crate) fn python_neg(tag: &str, is_statement: bool) -> String {
    if !tag[2..tag.len().saturating_sub(2).max(2)].contains('-') {
        return tag.to_owned();
    }
    let Some(mut expr) = Expr::parse(tag, is_statement) else {
        return tag.to_owned();
    };
    for k in 0..expr.len() {
        let unary = expr.kind(k) == Kind::Op
            && expr.text(k) == "-"
            && !expr.is_binary(k, "-")
            && k + 1 < expr.len()
            && expr.kind(k + 1) != Kind::Number;
        if !unary {
            continue;
        }
        if let Some(end) = expr.unary_operand_end(k) {
            expr.replace(k, format!("{NEG_FUNCTION}("));
            expr.insert_after(end, 0, ")");
        }
    }
    expr.finish()
}

/// `-v` as Python evaluates it: numbers and booleans negate, anything else is an error.
pub(crate) fn negate(v: &Value) -> Result<Value, Error> {
    match v.kind() {
        ValueKind::Bool => Ok(Value::from(-i64::from(v.is_true()))),
        ValueKind::Number if v.is_integer() => i128::try_from(v.clone())
            .ok()
            .and_then(i128::checked_neg)
            .map(Value::from)
            .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "integer overflow in -")),
        ValueKind::Number => Ok(Value::from(-as_f64(v).unwrap_or(f64::NAN))),
        ValueKind::Undefined => Err(Error::new(
            ErrorKind::UndefinedError,
            "undefined value negated",
        )),
        kind => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("bad operand type for unary -: '{kind}'"),
        )),
    }
}

/// `a % b` as Python evaluates it.
pub(crate) fn modulo(a: &Value, b: &Value) -> Result<Value, Error> {
    if a.kind() == ValueKind::String {
        return printf(a.as_str().unwrap_or_default(), b);
    }
    let int = |v: &Value| -> Option<i128> {
        match v.kind() {
            ValueKind::Bool => Some(i128::from(v.is_true())),
            ValueKind::Number if v.is_integer() => i128::try_from(v.clone()).ok(),
            _ => None,
        }
    };
    let zero = || Error::new(ErrorKind::InvalidOperation, "modulo by zero");
    match (int(a), int(b)) {
        (Some(_), Some(0)) => Err(zero()),
        (Some(x), Some(y)) => {
            let r = x.checked_rem_euclid(y).ok_or_else(zero)?;
            Ok(Value::from(if y < 0 && r != 0 { r + y } else { r }))
        }
        _ => {
            let (Some(x), Some(y)) = (as_f64(a), as_f64(b)) else {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "unsupported operand type(s) for %: '{}' and '{}'",
                        a.kind(),
                        b.kind()
                    ),
                ));
            };
            if y == 0.0 {
                return Err(zero());
            }
            let mut r = x % y;
            if r != 0.0 && (r < 0.0) != (y < 0.0) {
                r += y;
            }
            Ok(Value::from(r))
        }
    }
}

/// A number (or bool, as Python's `True` is 1) as a float.
pub(crate) fn as_f64(v: &Value) -> Option<f64> {
    match v.kind() {
        ValueKind::Bool => Some(if v.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => f64::try_from(v.clone()).ok(),
        _ => None,
    }
}

/// Python's `format % args`: a tuple gives the arguments, anything else is the one
/// argument; `%s`, `%r` and `%a` print with Python's `str`/`repr`, the rest as printf.
/// As in Python, a list or dict given to a format without conversions is accepted (they
/// could serve `%(name)s`).
fn printf(format_str: &str, args: &Value) -> Result<Value, Error> {
    let mapping_like = !args.is_tuple() && matches!(args.kind(), ValueKind::Seq | ValueKind::Map);
    let args: Vec<Value> = if args.is_tuple() {
        args.try_iter()?.collect()
    } else {
        vec![args.clone()]
    };
    // The conversion letter of each argument, to print %s/%r/%a arguments as Python does.
    let mut conversions = Vec::new();
    let mut chars = format_str.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            continue;
        }
        for c in chars.by_ref() {
            if c.is_ascii_alphabetic() {
                conversions.push(c);
                break;
            }
        }
    }
    if conversions.is_empty() && mapping_like {
        return Ok(Value::from(format_str.replace("%%", "%")));
    }
    if conversions.len() != args.len() {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            if conversions.len() > args.len() {
                "not enough arguments for format string"
            } else {
                "not all arguments converted during string formatting"
            },
        ));
    }
    let args: Vec<Value> = args
        .iter()
        .zip(&conversions)
        .map(|(v, c)| match c {
            's' => Value::from(py_str(v)),
            'r' | 'a' => Value::from(py_repr(v)),
            _ if v.kind() == ValueKind::Bool => Value::from(i64::from(v.is_true())),
            _ => v.clone(),
        })
        .collect();
    let format_str = format_str.replace("%r", "%s").replace("%a", "%s");
    format(FormatStyle::Printf, &format_str, &args).map(Value::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_chains_become_calls() {
        assert_eq!(
            python_mod("{{ a * b % c - d % 2 }}", false),
            "{{ _ziglama_mod(a * b , c) - _ziglama_mod(d , 2) }}"
        );
        assert_eq!(python_mod("{{ '100%' }}", false), "{{ '100%' }}");
        assert_eq!(
            python_neg("{{ -t + -1 - -x.y[0](2)|abs ~ --(a) }}", false),
            "{{ _ziglama_neg(t) + -1 - _ziglama_neg(x.y[0](2))|abs ~ _ziglama_neg(_ziglama_neg((a))) }}"
        );
    }

    #[test]
    fn modulo_and_formatting_as_python() {
        let v = |x: i64| Value::from(x);
        assert_eq!(modulo(&v(-7), &v(3)).unwrap(), v(2));
        assert_eq!(modulo(&v(7), &v(-3)).unwrap(), v(-2));
        assert_eq!(modulo(&Value::from(-7.5), &v(2)).unwrap(), Value::from(0.5));
        assert!(modulo(&v(1), &v(0)).is_err());
        let args = Value::from_iter([Value::from(()), Value::from(true), Value::from("x")]);
        let tuple = Value::from(minijinja::value::Tuple::from(
            args.try_iter().unwrap().collect::<Vec<_>>(),
        ));
        assert_eq!(
            modulo(&Value::from("%s|%d|%r|100%%"), &tuple).unwrap(),
            Value::from("None|1|'x'|100%")
        );
    }
}
