#!/usr/bin/env python3
"""Golden data for the `llama` architecture tests (ziglama-model/tests/llama_*.rs), from llama.cpp.

For each prompt below, llama.cpp (through the peer oracle, ../../shared/tools/peer.py) gives:
  - the prompt tokens (BOS as the model says, special tokens parsed),
  - the last prompt position's logits, written as little-endian f32 to <name>.f32,
  - the greedy continuation of up to 128 tokens (stopping at an end-of-generation token),
    decoding one token per step, and at every step the gap between the top-2 logits.
Everything but the logits goes to cases.json (for people) and cases.tsv (for the Rust tests,
which have no JSON parser): one line per prompt, tab-separated: name, prompt tokens, greedy
tokens, top-2 gaps (comma-separated each).

Run with the peer's Python:
    ~/.cache/ziglama-peer/venv/bin/python scripts/golden/llama_smollm2.py MODEL.gguf OUT_DIR
"""
import json, os, sys

sys.path.insert(0, os.environ.get("ZIGLAMA_PEER_TOOLS", "/work/shared/tools"))
import numpy as np  # noqa: E402
import llama_cpp as L  # noqa: E402
import peer  # noqa: E402

N_GEN = 128

PROMPTS = [
    ("hello", "Hello, my name is"),
    ("capital", "The capital of France is"),
    ("story", "Once upon a time, in a small village by the sea, there lived"),
    ("science", "Photosynthesis is the process by which plants"),
    ("code_py", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"),
    ("code_rust", "fn main() {\n    let v: Vec<u32> = (1..=10).collect();\n"),
    ("french", "La tour Eiffel est un monument situé à Paris. Elle a été construite"),
    ("german", "Die Hauptstadt von Deutschland ist Berlin. Die Stadt ist bekannt für"),
    ("spanish", "Había una vez un niño que vivía en las montañas y"),
    ("chat_simple", "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"),
    ("chat_math", "<|im_start|>user\nWhat is 12 times 7? Explain step by step.<|im_end|>\n<|im_start|>assistant\n"),
    ("chat_poem", "<|im_start|>user\nWrite a short poem about the ocean.<|im_end|>\n<|im_start|>assistant\n"),
    ("list", "Here are five tips for staying healthy:\n1."),
    ("numbers", "1, 2, 3, 5, 8, 13, 21,"),
    ("json", "{\"name\": \"Alice\", \"age\": 30, \"city\":"),
]


def main():
    record(sys.argv[1], sys.argv[2], PROMPTS)


def record(model_path, out_dir, prompts):
    """Writes <name>.f32, cases.json and cases.tsv for `prompts` ((name, text) pairs)."""
    os.makedirs(out_dir, exist_ok=True)
    m = peer.load(model_path)
    add_bos = m._model.add_bos_token()
    cases = []
    for name, text in prompts:
        m.reset()
        ids = m.tokenize(text.encode(), add_bos=add_bos, special=True)
        m.eval(ids)
        logits = peer.last_logits(m)
        logits.astype("<f4").tofile(os.path.join(out_dir, name + ".f32"))
        gen, gaps = [], []
        cur = logits
        for _ in range(N_GEN):
            top = np.argsort(-cur)[:2]
            t = int(top[0])
            gen.append(t)
            gaps.append(round(float(cur[top[0]] - cur[top[1]]), 5))
            if L.llama_vocab_is_eog(m._model.vocab, t):
                break
            m.eval([t])
            cur = peer.last_logits(m)
        cases.append({"name": name, "text": text, "prompt_tokens": ids,
                      "top1": int(np.argmax(logits)), "greedy": gen, "top2_gap": gaps,
                      "greedy_text": m.detokenize(gen).decode("utf-8", "replace")})
        print(name, len(ids), len(gen), min(gaps), file=sys.stderr)
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump({"model": os.path.basename(model_path), "n_gen": N_GEN, "cases": cases}, f, indent=1)
    write_tsv(cases, os.path.join(out_dir, "cases.tsv"))


def write_tsv(cases, path):
    with open(path, "w") as f:
        for c in cases:
            f.write("\t".join([c["name"], ",".join(map(str, c["prompt_tokens"])),
                               ",".join(map(str, c["greedy"])),
                               ",".join(repr(g) for g in c["top2_gap"])]) + "\n")


if __name__ == "__main__":
    main()
