#!/usr/bin/env python3
"""Cross-check ziglama's tokenizer against llama.cpp on a long text, for each BPE vocabulary.

Usage (with the peer's Python, after shared/tools/setup-peer.sh, `python3
scripts/fetch_llama_vocab_tests.py` and `cargo build --release --example tokenize`):
    ~/.cache/ziglama-peer/venv/bin/python scripts/golden/tokenizer_vocab_crosscheck.py \
        --text-file FILE [--bin target/release/examples/tokenize] [--vocab-dir DIR] [NAME ...]

For each vocabulary `ggml-vocab-NAME.gguf` (default: the eleven BPE vocabularies of the
conformance test), the text is tokenized by llama.cpp (llama-cpp-python, vocabulary only,
no BOS) and by the `tokenize` example, with and without parsing special tokens, and the two
lists are compared. Prints one line per vocabulary and mode; exits 1 on any difference.
Nothing is written: this checks, on texts too large to commit, what the committed tests
check on small ones.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VOCABS = ["gpt-2", "llama-bpe", "qwen2", "starcoder", "deepseek-llm", "deepseek-coder",
          "falcon", "refact", "mpt", "command-r", "qwen35"]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--text-file", required=True)
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "examples" / "tokenize"))
    models = os.environ.get("ZIGLAMA_MODELS") or str(REPO / "models")
    ap.add_argument("--vocab-dir", default=str(Path(models) / "llama-vocab-tests"))
    ap.add_argument("names", nargs="*", default=VOCABS)
    args = ap.parse_args(argv)
    from llama_cpp import Llama

    text = Path(args.text_file).read_bytes()
    ok = True
    for name in args.names:
        path = str(Path(args.vocab_dir) / f"ggml-vocab-{name}.gguf")
        m = Llama(model_path=path, vocab_only=True, verbose=False)
        for special in (False, True):
            t0 = time.perf_counter()
            theirs = m.tokenize(text, add_bos=False, special=special)
            t_theirs = time.perf_counter() - t0
            cmd = [args.bin, "--model", path, "--text-file", args.text_file, "--no-bos", "--timings"]
            if special:
                cmd.append("--special")
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{name}: {' '.join(cmd)} failed: {proc.stderr.strip()}")
                ok = False
                continue
            ours = json.loads(proc.stdout)["tokens"]
            first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), None)
            if ours == theirs:
                verdict = "equal"
            else:
                ok = False
                verdict = f"DIFFER (first at {first if first is not None else min(len(ours), len(theirs))})"
            mode = "parse_special" if special else "plain"
            print(f"{name:15} {mode:13} {len(theirs):8} tokens  {verdict}  "
                  f"(llama.cpp {len(theirs) / t_theirs:,.0f} tokens/s; ours: {proc.stderr.strip()})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
