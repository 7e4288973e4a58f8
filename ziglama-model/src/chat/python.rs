//! Python's `str()` and `repr()` of template values.
//!
//! Chat templates are written for jinja2, where `{{ value }}`, the `string` filter and
//! `join` print values as Python does: `None`, `True`, `1.0`, `['a', 'b']`, `{'k': 1}`.
//! These functions print minijinja values the same way.

use minijinja::value::{ObjectRepr, ValueKind};
use minijinja::Value;
use unicode_general_category::{get_general_category, GeneralCategory};

/// Python's `str(value)`; undefined prints as nothing, as jinja2's `Undefined` does.
pub(crate) fn py_str(value: &Value) -> String {
    let mut out = String::new();
    match value.kind() {
        ValueKind::Undefined => {}
        ValueKind::String => out.push_str(value.as_str().unwrap_or_default()),
        _ => write_repr(&mut out, value, 0),
    }
    out
}

/// Python's `repr(value)`.
pub(crate) fn py_repr(value: &Value) -> String {
    if value.is_undefined() {
        return "Undefined".into();
    }
    let mut out = String::new();
    write_repr(&mut out, value, 0);
    out
}

/// Nesting beyond which containers print as `[...]` (Python prints recursive ones so).
const MAX_DEPTH: usize = 64;

/// Whether a value is a `namespace()` object (which minijinja does not expose as a type;
/// its debug text starts with `Namespace {`, and only the start is formatted).
pub(crate) fn is_namespace(value: &Value) -> bool {
    struct Prefix(String);
    impl std::fmt::Write for Prefix {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            for c in s.chars() {
                if self.0.len() >= 11 {
                    return Err(std::fmt::Error);
                }
                self.0.push(c);
            }
            Ok(())
        }
    }
    let Some(obj) = value.as_object() else {
        return false;
    };
    if !matches!(obj.repr(), ObjectRepr::Map) {
        return false;
    }
    let mut prefix = Prefix(String::new());
    let _ = std::fmt::Write::write_fmt(&mut prefix, format_args!("{obj:?}"));
    prefix.0 == "Namespace {"
}

fn write_repr(out: &mut String, value: &Value, depth: usize) {
    if depth < MAX_DEPTH && is_namespace(value) {
        // jinja2's Namespace prints as `<Namespace {'a': 1}>`.
        let items = Value::from_pairs(value.try_iter().into_iter().flatten().map(|k| {
            let v = value.get_item(&k).unwrap_or_default();
            (k, v)
        }));
        out.push_str("<Namespace ");
        write_repr(out, &items, depth + 1);
        out.push('>');
        return;
    }
    match value.kind() {
        // jinja2's Undefined prints as nothing, but its repr (inside a list) is `Undefined`.
        ValueKind::Undefined if depth > 0 => out.push_str("Undefined"),
        ValueKind::Undefined => {}
        ValueKind::None => out.push_str("None"),
        // A markup string (from `safe`, `escape`) is markupsafe's `Markup('...')`.
        ValueKind::String if value.is_safe() => {
            out.push_str("Markup(");
            write_str_repr(out, value.as_str().unwrap_or_default());
            out.push(')');
        }
        ValueKind::Bool => out.push_str(if value.is_true() { "True" } else { "False" }),
        ValueKind::Number => write_number(out, value),
        ValueKind::String => write_str_repr(out, value.as_str().unwrap_or_default()),
        ValueKind::Seq if depth < MAX_DEPTH => {
            let open_close = if value.is_tuple() {
                ("(", ")")
            } else {
                ("[", "]")
            };
            out.push_str(open_close.0);
            let mut n = 0;
            if let Ok(items) = value.try_iter() {
                for (i, item) in items.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_repr(out, &item, depth + 1);
                    n += 1;
                }
            }
            if value.is_tuple() && n == 1 {
                out.push(',');
            }
            out.push_str(open_close.1);
        }
        ValueKind::Map
            if depth < MAX_DEPTH
                && value
                    .as_object()
                    .is_none_or(|o| matches!(o.repr(), ObjectRepr::Map)) =>
        {
            out.push('{');
            if let Ok(keys) = value.try_iter() {
                for (i, key) in keys.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_repr(out, &key, depth + 1);
                    out.push_str(": ");
                    let item = value.get_item(&key).unwrap_or_default();
                    write_repr(out, &item, depth + 1);
                }
            }
            out.push('}');
        }
        ValueKind::Seq => out.push_str("[...]"),
        ValueKind::Map if depth >= MAX_DEPTH => out.push_str("{...}"),
        _ => out.push_str(&value.to_string()),
    }
}

fn write_number(out: &mut String, value: &Value) {
    if value.is_integer() {
        out.push_str(&value.to_string());
    } else {
        match f64::try_from(value.clone()) {
            Ok(f) => out.push_str(&float_repr(f)),
            Err(_) => out.push_str(&value.to_string()),
        }
    }
}

/// Python's `repr(float)`: the shortest digits that read back to the same value, in fixed
/// notation when the decimal exponent is in -4..16 (with at least one digit after the
/// point) and in scientific notation (`1e+16`, `1.5e-05`) otherwise.
pub(crate) fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Rust's `{:e}` prints the shortest round-trip digits: "-1.25e-7", "0e0".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::from(sign);
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(&digits);
        } else if point as usize >= digits.len() {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point as usize]);
            out.push('.');
            out.push_str(&digits[point as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    }
    out
}

/// Python's `repr(str)`: single quotes unless the text has a single quote and no double
/// one; backslash escapes for the quote, backslash, `\n`, `\r`, `\t` and every character
/// Python does not consider printable.
fn write_str_repr(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            c => {
                let n = c as u32;
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
        }
    }
    out.push(quote);
}

/// Python's `str.isprintable` for one character: everything but the "Other" and
/// "Separator" categories, except the ASCII space.
fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::Surrogate
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::SpaceSeparator
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_repr() {
        for (f, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456.789, "123456.789"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1.2345e100, "1.2345e+100"),
            (f64::INFINITY, "inf"),
            (f64::NAN, "nan"),
        ] {
            assert_eq!(float_repr(f), want, "{f}");
        }
    }

    #[test]
    fn values_print_as_python_str() {
        let v =
            super::super::parse_json(r#"["it's", "say \"hi\"", null, true, 1, 2.5, {"a": "b\n"}]"#)
                .unwrap();
        assert_eq!(
            py_str(&v),
            r#"["it's", 'say "hi"', None, True, 1, 2.5, {'a': 'b\n'}]"#
        );
        assert_eq!(py_str(&Value::from("plain")), "plain");
        assert_eq!(py_str(&Value::UNDEFINED), "");
        let s = Value::from_iter([Value::from("a\u{7}\u{85}é")]);
        assert_eq!(py_str(&s), r"['a\x07\x85é']");
    }
}
