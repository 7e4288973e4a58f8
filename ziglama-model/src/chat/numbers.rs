//! jinja2's `int` and `float` filters: Python's `int()` / `float()` of the value, falling
//! back (for `int`) to `int(float(value))`, then to the default, never an error.

use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Environment, Error, Value};

use super::filters::{arg, int_arg, py_isspace};

/// Registers `int` and `float`.
pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("int", int);
    env.add_filter("float", float);
}

/// Python's `int(text, base)` of a string: surrounding whitespace, a sign and `_` between
/// digits allowed.
fn parse_py_int(text: &str, base: u32) -> Option<i128> {
    let t = text.trim_matches(py_isspace);
    let (negative, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let v = i128::from_str_radix(&digits.replace('_', ""), base).ok()?;
    Some(if negative { -v } else { v })
}

/// Python's `float(text)` of a string.
fn parse_py_float(text: &str) -> Option<f64> {
    let t = text.trim_matches(py_isspace);
    if t.starts_with('_') || t.ends_with('_') || t.contains("__") {
        return None;
    }
    t.replace('_', "").parse::<f64>().ok()
}

/// jinja2's `int(value, default=0, base=10)`: Python's `int`, then `int(float(value))`,
/// then the default.
fn int(value: &Value, args: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let default = arg(&args, &kwargs, 0, "default")?.unwrap_or(Value::from(0));
    let base = int_arg(arg(&args, &kwargs, 1, "base")?, 10)?;
    kwargs.assert_all_used()?;
    let base = u32::try_from(base)
        .ok()
        .filter(|b| (2..=36).contains(b))
        .unwrap_or(10);
    let as_int = match value.kind() {
        ValueKind::Bool => Some(i128::from(value.is_true())),
        ValueKind::Number if value.is_integer() => i128::try_from(value.clone()).ok(),
        ValueKind::Number => f64::try_from(value.clone())
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f.trunc() as i128),
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            parse_py_int(s, base).or_else(|| {
                parse_py_float(s)
                    .filter(|f| f.is_finite())
                    .map(|f| f.trunc() as i128)
            })
        }
        _ => None,
    };
    Ok(as_int.map(Value::from).unwrap_or(default))
}

/// jinja2's `float(value, default=0.0)`: Python's `float`, or the default.
fn float(value: &Value, args: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let default = arg(&args, &kwargs, 0, "default")?.unwrap_or(Value::from(0.0));
    kwargs.assert_all_used()?;
    let as_float = match value.kind() {
        ValueKind::Bool => Some(f64::from(u8::from(value.is_true()))),
        ValueKind::Number => f64::try_from(value.clone()).ok(),
        ValueKind::String => parse_py_float(value.as_str().unwrap_or_default()),
        _ => None,
    };
    Ok(as_float.map(Value::from).unwrap_or(default))
}
