//! The minijinja environment a chat template runs in, set up the way Hugging Face's
//! `apply_chat_template` sets up jinja2: `trim_blocks` and `lstrip_blocks`, loop controls,
//! the globals `raise_exception` and `strftime_now`, a `tojson` filter that is Python's
//! `json.dumps`, and values printed, tested and joined as Python does.

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{ObjectRepr, ValueKind};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value};

use super::clock::Clock;
use super::filters;
use super::json::tojson;
use super::limits::Limits;
use super::methods::unknown_method;
use super::python::{is_namespace, py_str};

/// The name the template is stored under (no file extension: no auto-escaping).
pub(crate) const TEMPLATE_NAME: &str = "chat_template";

/// The error `raise_exception(message)` raises, found again in the error's source chain.
#[derive(Debug)]
pub(crate) struct Raised(pub(crate) String);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

/// Builds the environment holding `source` as [`TEMPLATE_NAME`].
pub(crate) fn build(
    source: String,
    clock: Clock,
    limits: &Limits,
) -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(false)
            .build()?,
    );
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_fuel(Some(limits.fuel));
    env.set_recursion_limit(limits.recursion);
    env.set_debug(false);
    env.set_formatter(|out, _state, value| {
        out.write_str(&py_str(value))
            .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))
    });
    env.set_unknown_method_callback(unknown_method);
    env.remove_global("debug");

    env.add_function(
        "raise_exception",
        |message: Value| -> Result<Value, Error> {
            let text = py_str(&message);
            Err(Error::new(ErrorKind::InvalidOperation, text.clone()).with_source(Raised(text)))
        },
    );
    env.add_function(super::markup::ADD_FUNCTION, |a: &Value, b: &Value| {
        super::markup::add(a, b)
    });
    env.add_function(super::arithmetic::MOD_FUNCTION, |a: &Value, b: &Value| {
        super::arithmetic::modulo(a, b)
    });
    env.add_function(super::arithmetic::NEG_FUNCTION, |v: &Value| {
        super::arithmetic::negate(v)
    });
    env.add_function("strftime_now", move |format: &str| -> Value {
        Value::from(clock().strftime(format))
    });

    env.add_filter("tojson", tojson);
    filters::register(&mut env);
    env.add_test("iterable", |v: &Value| {
        v.is_undefined() || (!v.is_none() && v.try_iter().is_ok())
    });
    env.add_test("sequence", |v: &Value| {
        v.is_undefined()
            || matches!(
                v.kind(),
                ValueKind::Seq | ValueKind::String | ValueKind::Map
            )
    });
    env.add_test("mapping", |v: &Value| {
        v.kind() == ValueKind::Map
            && v.as_object()
                .is_none_or(|o| matches!(o.repr(), ObjectRepr::Map))
            && !is_namespace(v)
    });

    env.add_template_owned(TEMPLATE_NAME, source)?;
    Ok(env)
}
