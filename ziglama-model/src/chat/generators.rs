//! Filters that give Python generators in jinja2 (`map`, `select`, `reject`, `selectattr`,
//! `rejectattr`): iterable once, without a length, not JSON-serializable; and the guard
//! every `for` loop's iterable goes through.

use std::borrow::Cow;

use minijinja::value::{Rest, ValueOrKwargs};
use minijinja::{Environment, Error, ErrorKind, State, Value};

/// Registers the generator filters and the for-loop guard.
pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("map", map);
    env.add_filter("select", select);
    env.add_filter("reject", reject);
    env.add_filter("selectattr", selectattr);
    env.add_filter("rejectattr", rejectattr);
    env.add_filter(super::source::ITERABLE_GUARD, iterable_guard);
}

/// The items as a Python generator would give them: iterable once, without a length,
/// and not serializable to JSON.
fn generator(items: Vec<Value>) -> Value {
    Value::make_one_shot_iterator(items.into_iter())
}

fn map(state: &mut State, value: Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    minijinja::filters::map(state, value, args).map(generator)
}

fn select(
    state: &mut State,
    value: Value,
    test: Option<Cow<'_, str>>,
    args: Rest<ValueOrKwargs>,
) -> Result<Value, Error> {
    minijinja::filters::select(state, value, test, args).map(generator)
}

fn reject(
    state: &mut State,
    value: Value,
    test: Option<Cow<'_, str>>,
    args: Rest<ValueOrKwargs>,
) -> Result<Value, Error> {
    minijinja::filters::reject(state, value, test, args).map(generator)
}

fn selectattr(
    state: &mut State,
    value: Value,
    attr: Cow<'_, str>,
    test: Option<Cow<'_, str>>,
    args: Rest<ValueOrKwargs>,
) -> Result<Value, Error> {
    minijinja::filters::selectattr(state, value, attr, test, args).map(generator)
}

fn rejectattr(
    state: &mut State,
    value: Value,
    attr: Cow<'_, str>,
    test: Option<Cow<'_, str>>,
    args: Rest<ValueOrKwargs>,
) -> Result<Value, Error> {
    minijinja::filters::rejectattr(state, value, attr, test, args).map(generator)
}

/// What every `for` loop's iterable goes through (see `source::guard_for_loops`): Python
/// cannot iterate over `None`, minijinja would iterate over nothing.
fn iterable_guard(value: Value) -> Result<Value, Error> {
    if value.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "'NoneType' object is not iterable",
        ));
    }
    Ok(value)
}
