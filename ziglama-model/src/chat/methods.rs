//! Python methods on template values (`str.strip`, `dict.items`, ...), which Hugging Face
//! templates call because jinja2 runs them on Python objects. minijinja-contrib's
//! `pycompat` provides most of them; the few it lacks are here.

use minijinja::value::{from_args, ValueKind};
use minijinja::{Error, ErrorKind, State, Value};

use super::filters::py_isspace;

/// The callback minijinja calls for a method it does not know.
pub(crate) fn unknown_method(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    if value.kind() == ValueKind::String {
        if let Some(rv) = string_method(value.as_str().unwrap_or_default(), method, args)? {
            return Ok(rv);
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args).map_err(|e| {
        if e.kind() == ErrorKind::UnknownMethod {
            Error::new(
                ErrorKind::UnknownMethod,
                format!("{} object has no method named {method}", value.kind()),
            )
        } else {
            e
        }
    })
}

/// String methods pycompat does not have, or has with other semantics than Python's.
fn string_method(s: &str, method: &str, args: &[Value]) -> Result<Option<Value>, Error> {
    Ok(Some(match method {
        "strip" | "lstrip" | "rstrip" => {
            let (chars,): (Option<&str>,) = from_args(args)?;
            let matches = |c: char| match chars {
                Some(chars) => chars.contains(c),
                None => py_isspace(c),
            };
            Value::from(match method {
                "strip" => s.trim_matches(matches),
                "lstrip" => s.trim_start_matches(matches),
                _ => s.trim_end_matches(matches),
            })
        }
        "title" => {
            let () = from_args(args)?;
            Value::from(py_title(s))
        }
        _ => return Ok(None),
    }))
}

/// Python's `str.title`: a cased character after an uncased one is title-cased, one after
/// a cased one lower-cased (`"it's ‘x’"` is `"It'S ‘X’"`).
fn py_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut previous_cased = false;
    for c in s.chars() {
        let cased = c.is_uppercase() || c.is_lowercase();
        if cased && previous_cased {
            out.extend(c.to_lowercase());
        } else if cased {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        previous_cased = cased;
    }
    out
}
