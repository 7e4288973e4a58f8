//! Text filters whose jinja2 behaviour differs from minijinja's built-in ones (or that
//! minijinja lacks), written to give jinja2's output: `string`, `trim`, `join`, `indent`,
//! `center`, `truncate`, `wordcount`, `escape`, `forceescape`; and the registration of
//! the number filters ([`super::numbers`]) and generator filters ([`super::generators`]).

use std::borrow::Cow;

use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};

use super::python::py_str;

/// Registers the filters of this module in `env`.
pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("string", |value: &Value| Value::from(py_str(value)));
    env.add_filter(super::concat::STR_FILTER, |value: &Value| {
        Value::from(py_str(value))
    });
    env.add_filter("trim", trim);
    env.add_filter("join", join);
    env.add_filter("indent", indent);
    env.add_filter("wordcount", wordcount);
    super::numbers::register(env);
    super::generators::register(env);
    env.add_filter("center", center);
    env.add_filter("truncate", truncate);
    env.add_filter("forceescape", |value: &Value| {
        Value::from_safe_string(markup_escape(&py_str(value)))
    });
    env.add_filter("escape", escape);
    env.add_filter("e", escape);
}

/// Python's `str.isspace` for one character (Rust's `char::is_whitespace` leaves out the
/// four ASCII separators U+001C..U+001F).
pub(crate) fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.splitlines()`: lines without their line breaks, which are `\n`, `\r`,
/// `\r\n`, `\v`, `\f`, U+001C..U+001E, U+0085, U+2028 and U+2029.
pub(crate) fn py_splitlines(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\u{b}'
                | '\u{c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if is_break {
            lines.push(&s[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r' {
                if let Some(&(j, '\n')) = chars.peek() {
                    chars.next();
                    end = j + 1;
                }
            }
            start = end;
        }
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

/// jinja2's `trim(value, chars=None)`: Python's `str.strip`, of the value printed as a
/// string.
fn trim(value: &Value, chars: Option<&str>) -> Value {
    let s = py_str(value);
    let out = match chars {
        Some(chars) => s.trim_matches(|c| chars.contains(c)),
        None => s.trim_matches(py_isspace),
    };
    Value::from(out)
}

/// jinja2's `join(value, d='', attribute=None)`: each item (or its attribute) printed as
/// Python's `str` does, separated by `d`.
fn join(state: &State, value: &Value, args: Rest<Value>, kwargs: Kwargs) -> Result<String, Error> {
    let mut joiner = kwargs.get::<Option<Value>>("d")?;
    let attribute = kwargs.get::<Option<Value>>("attribute")?;
    kwargs.assert_all_used()?;
    match args.as_slice() {
        [] => {}
        [d] if joiner.is_none() => joiner = Some(d.clone()),
        _ => return Err(Error::from(ErrorKind::TooManyArguments)),
    }
    let joiner = joiner.map(|d| py_str(&d)).unwrap_or_default();
    if value.is_undefined() {
        return Ok(String::new());
    }
    let mut out = String::new();
    for (i, item) in value.try_iter()?.enumerate() {
        state.consume_fuel(1)?;
        if i > 0 {
            out.push_str(&joiner);
        }
        let item = match &attribute {
            Some(attr) => item_attribute(&item, attr)?,
            None => item,
        };
        out.push_str(&py_str(&item));
    }
    Ok(out)
}

/// `item[attr]` where `attr` may be a dotted path or an integer index, as jinja2's
/// `make_attrgetter` resolves it.
fn item_attribute(item: &Value, attr: &Value) -> Result<Value, Error> {
    if let Some(path) = attr.as_str() {
        let mut v = item.clone();
        for part in path.split('.') {
            v = match part.parse::<usize>() {
                Ok(i) if v.kind() == ValueKind::Seq => v.get_item_by_index(i)?,
                _ => v.get_attr(part)?,
            };
        }
        Ok(v)
    } else {
        item.get_item(attr)
    }
}

/// Argument `pos` of a filter, given by position or by `name`.
pub(crate) fn arg(
    args: &[Value],
    kwargs: &Kwargs,
    pos: usize,
    name: &str,
) -> Result<Option<Value>, Error> {
    match args.get(pos) {
        Some(v) => Ok(Some(v.clone())),
        None => kwargs.get::<Option<Value>>(name),
    }
}

pub(crate) fn int_arg(v: Option<Value>, default: i64) -> Result<i64, Error> {
    match v {
        None => Ok(default),
        Some(v) => v.as_i64().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("expected an integer, got {}", v.kind()),
            )
        }),
    }
}

/// jinja2's `center(value, width=80)`: Python's `str.center`.
fn center(value: &Value, args: Rest<Value>, kwargs: Kwargs) -> Result<String, Error> {
    let width = int_arg(arg(&args, &kwargs, 0, "width")?, 80)?.min(1 << 20);
    kwargs.assert_all_used()?;
    let s = py_str(value);
    let len = s.chars().count() as i64;
    if width <= len {
        return Ok(s);
    }
    let marg = width - len;
    let left = marg / 2 + (marg & width & 1);
    let mut out = " ".repeat(left as usize);
    out.push_str(&s);
    out.push_str(&" ".repeat((marg - left) as usize));
    Ok(out)
}

/// jinja2's `truncate(s, length=255, killwords=False, end='...', leeway=5)`.
fn truncate(value: &Value, args: Rest<Value>, kwargs: Kwargs) -> Result<String, Error> {
    let length = int_arg(arg(&args, &kwargs, 0, "length")?, 255)?;
    let killwords = arg(&args, &kwargs, 1, "killwords")?.is_some_and(|v| v.is_true());
    let end = arg(&args, &kwargs, 2, "end")?.map_or_else(|| "...".to_owned(), |v| py_str(&v));
    let leeway = int_arg(arg(&args, &kwargs, 3, "leeway")?, 5)?;
    kwargs.assert_all_used()?;
    let s = py_str(value);
    let n_end = end.chars().count() as i64;
    if length < n_end {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("expected length >= {n_end}, got {length}"),
        ));
    }
    if leeway < 0 {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("expected leeway >= 0, got {leeway}"),
        ));
    }
    if s.chars().count() as i64 <= length.saturating_add(leeway) {
        return Ok(s);
    }
    let head: String = s.chars().take((length - n_end) as usize).collect();
    let head = if killwords {
        head
    } else {
        match head.rsplit_once(' ') {
            Some((before, _)) => before.to_owned(),
            None => head,
        }
    };
    Ok(head + &end)
}

/// jinja2's `wordcount`: the number of runs of word characters (`\w+`).
fn wordcount(value: &Value) -> usize {
    static WORD: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let text = py_str(value);
    match WORD.get_or_init(|| regex::Regex::new(r"\w+").ok()) {
        Some(re) => re.find_iter(&text).count(),
        None => text.split_whitespace().count(),
    }
}

/// jinja2's `indent(s, width=4, first=False, blank=False)`: every line but the first (and
/// the first too with `first`) prefixed by `width` spaces (or by `width` if it is a
/// string); blank lines only with `blank`. As in jinja2, a trailing line break is kept.
fn indent(value: &Value, args: Rest<Value>, kwargs: Kwargs) -> Result<String, Error> {
    let mut width = kwargs.get::<Option<Value>>("width")?;
    let mut first = kwargs.get::<Option<bool>>("first")?;
    let mut blank = kwargs.get::<Option<bool>>("blank")?;
    kwargs.assert_all_used()?;
    let mut positional = args.iter();
    if let Some(w) = positional.next() {
        width = Some(w.clone());
    }
    if let Some(f) = positional.next() {
        first = Some(f.is_true());
    }
    if let Some(b) = positional.next() {
        blank = Some(b.is_true());
    }
    if positional.next().is_some() {
        return Err(Error::from(ErrorKind::TooManyArguments));
    }
    let indention: Cow<'_, str> = match &width {
        None => "    ".into(),
        Some(w) if w.kind() == ValueKind::String => w.as_str().unwrap_or_default().into(),
        Some(w) => match w.as_i64() {
            Some(n) => " ".repeat(n.clamp(0, 1 << 16) as usize).into(),
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "indent: width must be an integer or a string",
                ))
            }
        },
    };
    let text = py_str(value) + "\n";
    let lines = py_splitlines(&text);
    let mut out = String::new();
    if blank.unwrap_or(false) {
        out = lines.join(&format!("\n{indention}"));
    } else if let Some((head, rest)) = lines.split_first() {
        out.push_str(head);
        if !rest.is_empty() {
            out.push('\n');
            for (i, line) in rest.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                if !line.is_empty() {
                    out.push_str(&indention);
                }
                out.push_str(line);
            }
        }
    }
    if first.unwrap_or(false) {
        out.insert_str(0, &indention);
    }
    Ok(out)
}

/// jinja2's `escape` (markupsafe): a value already marked safe is left alone, anything
/// else is printed and escaped with [`markup_escape`].
fn escape(value: &Value) -> Value {
    if value.is_safe() {
        return value.clone();
    }
    Value::from_safe_string(markup_escape(&py_str(value)))
}

/// markupsafe's escaping: `&`, `<`, `>`, `'` and `"` as `&amp;`, `&lt;`, `&gt;`, `&#39;`
/// and `&#34;`.
pub(crate) fn markup_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitlines_as_python() {
        assert_eq!(
            py_splitlines("a\nb\r\nc\rd\u{2028}e\n"),
            ["a", "b", "c", "d", "e"]
        );
        assert_eq!(py_splitlines("{\n\n"), ["{", ""]);
        assert!(py_splitlines("").is_empty());
    }

    #[test]
    fn indent_keeps_a_trailing_line_break_as_jinja2() {
        let kw = |first: bool| Kwargs::from_iter([("first", Value::from(first))]);
        let ind = |s: &str, first| indent(&Value::from(s), Rest(vec![Value::from(4)]), kw(first));
        assert_eq!(ind("{\n", true).unwrap(), "    {\n");
        assert_eq!(ind("a\n\nb", false).unwrap(), "a\n\n    b");
        assert_eq!(ind("x", true).unwrap(), "    x");
    }
}
