#!/usr/bin/env python3
"""Render every chat template over the committed conversations with jinja2 (golden data).

Usage (with a Python that has jinja2, e.g. the peer's venv):
    ~/.cache/ziglama-peer/venv/bin/python scripts/golden/chat_templates.py \
        [--templates DIR] [--smollm2 GGUF] [--gemma3 GGUF]

The templates are:
- the `tokenizer.chat_template` of the two real models (SmolLM2, Gemma 3), read from their
  GGUF files with the bos/eos token texts of their vocabularies;
- llama.cpp's ChatML fallback (used for a GGUF file without a template), read from
  llama.cpp's common/chat.cpp (--llama-src), against which ChatTemplate::chatml() is tested;
- every `*.jinja` of llama.cpp's `models/templates/` (installed into
  `<models>/llama-templates/` by `scripts/fetch_llama_vocab_tests.py --templates`, run
  first if needed), rendered with bos_token "<s>" and eos_token "</s>".

Each is rendered over every conversation of
ziglama-model/tests/data/chat/conversations.json the way Hugging Face transformers'
`apply_chat_template` renders (jinja2 `ImmutableSandboxedEnvironment` with `trim_blocks`,
`lstrip_blocks`, the `loopcontrols` extension and a `{% generation %}` block tag; a `tojson` filter that is `json.dumps` with
`ensure_ascii=False`; globals `raise_exception` and `strftime_now`; variables `messages`,
`tools` and `documents` (None when absent), `add_generation_prompt`, `bos_token`,
`eos_token` and the conversation's extra variables), except that `strftime_now` reads a
fixed time, FIXED_NOW below, so that the output is deterministic.

Writes ziglama-model/tests/data/chat/expected/<template>.json:
    {"template": NAME, "source": ..., "sha256": <of the template text>,
     "bos_token": ..., "eos_token": ..., "jinja2": <version>,
     "results": {<conversation>: {"output": TEXT} | {"error": {"type": ..., "message": ...}}}}
and ziglama-model/tests/data/chat/snippets_expected.json: the small templates of
snippets.json (probes of the Python semantics templates rely on) rendered over its
variables. And ziglama-model/tests/data/chat/expressions.json: 400 random expressions (seeded) mixing
~, + and % with the operators around them in precedence, printed or in set/if/for/macro
statements, with jinja2's output or error.
A template jinja2 cannot compile gets {"compile_error": {...}} instead of "results"; a GGUF
file without a template gets {"missing": "tokenizer.chat_template"} (Gemma 3 270M has none).
"""

from __future__ import annotations

import argparse
import codecs
import datetime
import hashlib
import json
import random
import re
import struct
import subprocess
import sys
from pathlib import Path

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.sandbox

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "ziglama-model" / "tests" / "data" / "chat"
FIXED_NOW = datetime.datetime(2024, 3, 9, 13, 7, 5)
LLAMA_BOS = "<s>"
LLAMA_EOS = "</s>"


# --- the smallest GGUF metadata reader the two templates need ---------------------------

def _read_gguf_metadata(path: Path) -> dict:
    data = path.read_bytes()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return vals[0]

    def string() -> str:
        nonlocal pos
        n = take("Q")
        s = data[pos:pos + n].decode("utf-8")
        pos += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t: int):
        if t in scalar:
            return take(scalar[t])
        if t == 8:
            return string()
        if t == 9:
            et = take("I")
            n = take("Q")
            return [value(et) for _ in range(n)]
        raise ValueError(f"unknown GGUF type {t}")

    assert data[:4] == b"GGUF", path
    pos = 4
    take("I")  # version
    take("Q")  # tensor count
    n_kv = take("Q")
    meta = {}
    for _ in range(n_kv):
        key = string()
        meta[key] = value(take("I"))
    return meta


def gguf_template(path: Path) -> tuple[str | None, str, str]:
    """The file's chat template (None if it has none) and its bos and eos token texts."""
    meta = _read_gguf_metadata(path)
    tokens = meta["tokenizer.ggml.tokens"]
    bos = tokens[meta["tokenizer.ggml.bos_token_id"]]
    eos = tokens[meta["tokenizer.ggml.eos_token_id"]]
    return meta.get("tokenizer.chat_template"), bos, eos


# --- the environment apply_chat_template builds ------------------------------------------

class GenerationTag(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}`, which transformers' environment accepts (it
    marks the assistant's tokens for training masks); when rendering it outputs its body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller):
        return caller()


def compile_template(source: str) -> jinja2.Template:
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return FIXED_NOW.strftime(format)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


def error_record(e: Exception) -> dict:
    rec = {"type": type(e).__name__, "message": str(e)}
    if isinstance(e, jinja2.exceptions.TemplateSyntaxError):
        rec["line"] = e.lineno
    # raise_exception raises the base TemplateError itself: its message is the template's.
    rec["raised_by_template"] = type(e) is jinja2.exceptions.TemplateError
    return rec


def render_all(name: str, source: str, origin: str, bos: str, eos: str, conversations: list) -> dict:
    out = {
        "template": name,
        "source": origin,
        "sha256": hashlib.sha256(source.encode("utf-8")).hexdigest(),
        "bos_token": bos,
        "eos_token": eos,
        "jinja2": jinja2.__version__,
    }
    try:
        tmpl = compile_template(source)
    except Exception as e:  # noqa: BLE001 - any compile failure is recorded
        out["compile_error"] = error_record(e)
        return out
    results = {}
    for conv in conversations:
        ctx = {
            "messages": conv["messages"],
            "tools": conv.get("tools"),
            "documents": None,
            "add_generation_prompt": conv["add_generation_prompt"],
            "bos_token": bos,
            "eos_token": eos,
        }
        ctx.update(conv.get("extra", {}))
        try:
            results[conv["name"]] = {"output": tmpl.render(**ctx)}
        except Exception as e:  # noqa: BLE001 - any render failure is recorded
            results[conv["name"]] = {"error": error_record(e)}
    out["results"] = results
    return out


def llama_chatml_fallback(llama_src: Path) -> str:
    """The template llama.cpp falls back to when a GGUF file has none (the string of the
    CHATML_TEMPLATE_SRC macro of common/chat.cpp), read from llama.cpp's source tree."""
    lines = (llama_src / "common" / "chat.cpp").read_text(encoding="utf-8").splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("#define CHATML_TEMPLATE_SRC"))
    body = []
    for line in lines[start + 1:]:
        body.append(line)
        if not line.rstrip().endswith("\\"):
            break
    literals = re.findall(r'"((?:[^"\\]|\\.)*)"', "\n".join(body))
    return "".join(codecs.decode(lit, "unicode_escape") for lit in literals)


def render_snippets() -> None:
    """Renders the small templates of snippets.json into snippets_expected.json."""
    spec = json.loads((DATA / "snippets.json").read_text(encoding="utf-8"))
    results = {}
    for snip in spec["snippets"]:
        try:
            results[snip["name"]] = {"output": compile_template(snip["template"]).render(**spec["variables"])}
        except Exception as e:  # noqa: BLE001 - any failure is recorded
            results[snip["name"]] = {"error": error_record(e)}
    out = {"jinja2": jinja2.__version__, "results": results}
    text = json.dumps(out, ensure_ascii=False, indent=1) + "\n"
    (DATA / "snippets_expected.json").write_text(text, encoding="utf-8")
    n_err = sum("error" in r for r in results.values())
    print(f"snippets: {len(results) - n_err} rendered, {n_err} raised", file=sys.stderr)


EXPR_VARS = {"a": "x<y>", "b": 3, "c": 2.5, "n": None, "t": True, "l": [1, "z"], "m": {"k": "v"}, "s": "&'\""}


def random_expression(rng, depth: int = 0) -> str:
    """A random jinja2 expression mixing the operators whose evaluation ziglama rewrites
    (~, +, %) with everything around them in precedence."""
    atoms = ["a", "b", "c", "n", "t", "l", "m", "s", "undefined_x", "'q'", "'%s!'", "'<'|safe",
             "1", "2", "0", "-3", "1.5", "none", "true", "[1, 2]", "('p', 3)", "m.k", "l[1]",
             "a|length", "b|string", "l|join('-')", "'x'|e"]
    if depth > 3 or rng.random() < 0.3:
        return rng.choice(atoms)
    kind = rng.random()
    left = random_expression(rng, depth + 1)
    right = random_expression(rng, depth + 1)
    if kind < 0.55:
        op = rng.choice(["~", "~", "+", "+", "-", "*", "%", "%", "//", "/", "==", "!=", "<",
                         "and", "or", "in"])
        return f"{left} {op} {right}"
    if kind < 0.7:
        return f"({left})"
    if kind < 0.8:
        cond = random_expression(rng, depth + 1)
        return f"{left} if {cond} else {right}"
    if kind < 0.87:
        return f"not {left}"
    if kind < 0.94:
        return f"-{left}" if not left.startswith("-") else left
    return f"[{left}, {right}]"


def render_expressions(count: int = 400) -> None:
    """Random expressions (seeded), printed or used in set/if/for/macro statements, into
    expressions.json: the template and jinja2's output or error, for the rewrites of ~, +,
    % and unary minus."""
    rng = random.Random(20240309)
    cases = []
    seen = set()
    n_errors = 0
    while len(cases) < count:
        expr = random_expression(rng)
        if expr in seen or not any(op in expr for op in ("~", "+", "%")):
            continue
        seen.add(expr)
        # Some in statements: set, if, for (a one-item list), macro default.
        form = rng.random()
        if form < 0.6:
            template = "{{ " + expr + " }}"
        elif form < 0.7:
            template = "{% set v = " + expr + " %}[{{ v }}]"
        elif form < 0.8:
            template = "{% if " + expr + " %}yes{% else %}no{% endif %}"
        elif form < 0.9:
            template = "{% for v in [" + expr + "] %}{{ loop.index }}:{{ v }}{% endfor %}"
        else:
            template = "{% macro f(v=" + expr + ") %}<{{ v }}>{% endmacro %}{{ f() }}"
        try:
            result = {"output": compile_template(template).render(**EXPR_VARS)}
        except Exception as e:  # noqa: BLE001 - any failure is recorded
            # Most random expressions fail (types); keep a fifth of the cases as errors.
            if n_errors >= count // 5:
                continue
            n_errors += 1
            result = {"error": error_record(e)}
        cases.append({"template": template, **result})
    out = {"about": "Random expressions (scripts/golden/chat_templates.py, render_expressions) "
                    "rendered by jinja2 over `variables`.",
           "jinja2": jinja2.__version__, "variables": EXPR_VARS, "cases": cases}
    text = json.dumps(out, ensure_ascii=False, indent=1) + "\n"
    (DATA / "expressions.json").write_text(text, encoding="utf-8")
    n_err = sum("error" in c for c in cases)
    print(f"expressions: {len(cases) - n_err} rendered, {n_err} raised", file=sys.stderr)


def llama_templates_dir(override: str | None) -> Path:
    if override:
        return Path(override)
    script = REPO / "scripts" / "fetch_llama_vocab_tests.py"
    proc = subprocess.run([sys.executable, str(script), "--templates"], stdout=subprocess.PIPE, check=True, text=True)
    return Path(proc.stdout.strip())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--templates", help="directory of llama.cpp's *.jinja (default: fetched)")
    parser.add_argument("--smollm2", default=str(REPO / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    parser.add_argument("--gemma3", default=str(REPO / "models" / "gemma-3-270m-q4_k_m.gguf"))
    parser.add_argument("--llama-src", default=str(Path.home() / ".cache/ziglama-peer/src/llama_cpp_python-0.3.36/vendor/llama.cpp"),
                        help="llama.cpp's source tree (for its ChatML fallback template)")
    args = parser.parse_args(argv)

    conversations = json.loads((DATA / "conversations.json").read_text(encoding="utf-8"))["conversations"]
    expected = DATA / "expected"
    expected.mkdir(parents=True, exist_ok=True)
    for old in expected.glob("*.json"):
        old.unlink()

    jobs = []
    for name, path in (("SmolLM2", args.smollm2), ("Gemma3", args.gemma3)):
        source, bos, eos = gguf_template(Path(path))
        if source is None:
            # Gemma 3 270M's GGUF has no template: the test checks that we say so.
            rec = {"template": f"gguf-{name}", "source": Path(path).name, "missing": "tokenizer.chat_template",
                   "bos_token": bos, "eos_token": eos}
            (expected / f"gguf-{name}.json").write_text(json.dumps(rec, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
            print(f"gguf-{name}: no tokenizer.chat_template", file=sys.stderr)
            continue
        jobs.append((f"gguf-{name}", source, f"tokenizer.chat_template of {Path(path).name}", bos, eos))
    # What llama.cpp renders with when a GGUF file has no template (Gemma 3 270M): ChatML.
    jobs.append(("llama-cpp-chatml-fallback", llama_chatml_fallback(Path(args.llama_src)),
                 "llama.cpp common/chat.cpp CHATML_TEMPLATE_SRC (the fallback without a template)",
                 LLAMA_BOS, LLAMA_EOS))
    for path in sorted(llama_templates_dir(args.templates).glob("*.jinja")):
        source = path.read_bytes().decode("utf-8")
        jobs.append((path.stem, source, f"llama.cpp models/templates/{path.name}", LLAMA_BOS, LLAMA_EOS))

    for name, source, origin, bos, eos in jobs:
        rec = render_all(name, source, origin, bos, eos, conversations)
        text = json.dumps(rec, ensure_ascii=False, indent=1) + "\n"
        (expected / f"{name}.json").write_text(text, encoding="utf-8")
        if "compile_error" in rec:
            summary = f"compile error: {rec['compile_error']['message']}"
        else:
            n_err = sum("error" in r for r in rec["results"].values())
            summary = f"{len(rec['results']) - n_err} rendered, {n_err} raised"
        print(f"{name}: {summary}", file=sys.stderr)
    print(f"wrote {len(jobs)} files into {expected}", file=sys.stderr)
    render_snippets()
    render_expressions()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
