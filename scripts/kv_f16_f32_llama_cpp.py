"""How llama.cpp's own greedy continuations change between an f16 and an f32 KV cache, on the
golden prompts of a model: the reference figures for the "f16 line" of docs/kv_cache.md (is
f16 storage's parting from f32 at near-ties ours, or what any engine does?).

Usage (the peer's Python, from the repository root):
  ~/.cache/ziglama-peer/venv/bin/python scripts/kv_f16_f32_llama_cpp.py \
      models/SmolLM2-135M-Instruct.Q4_1.gguf ziglama-model/tests/data/llama/cases.tsv
  ~/.cache/ziglama-peer/venv/bin/python scripts/kv_f16_f32_llama_cpp.py \
      models/gemma-3-270m-q4_k_m.gguf ziglama-model/tests/data/gemma3/cases.tsv
For each prompt (the committed token ids): greedy decoding of up to 128 tokens with
type_k = type_v = f16 (llama.cpp's default) and with f32, flash attention off, batches of
512; prints where the two part and the f32 run's top-2 logit gap there."""
import sys

import llama_cpp as L
import numpy as np
from llama_cpp import Llama

GGML_TYPE_F32, GGML_TYPE_F16 = 0, 1


def greedy(m, prompt, n=128):
    m.reset()
    m.eval(prompt)
    tokens, gaps = [], []
    for _ in range(n):
        logits = np.ctypeslib.as_array(L.llama_get_logits_ith(m.ctx, -1), shape=(m.n_vocab(),))
        top = np.argsort(-logits)[:2]
        t = int(top[0])
        tokens.append(t)
        gaps.append(float(logits[top[0]] - logits[top[1]]))
        if L.llama_vocab_is_eog(m._model.vocab, t):
            break
        m.eval([t])
    return tokens, gaps


def main(model, tsv):
    runs = {
        t: Llama(model_path=model, n_ctx=2048, n_threads=2, n_batch=512, type_k=t, type_v=t,
                 verbose=False)
        for t in (GGML_TYPE_F16, GGML_TYPE_F32)
    }
    for line in open(tsv):
        name, prompt = line.split("\t")[:2]
        prompt = [int(x) for x in prompt.split(",")]
        a, _ = greedy(runs[GGML_TYPE_F16], prompt)
        b, gaps = greedy(runs[GGML_TYPE_F32], prompt)
        k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
        outcome = f"equal ({len(a)} tokens)" if k is None else \
            f"part at step {k}, f32 top-2 gap {gaps[k]:.3f}"
        print(f"{name:12} {len(prompt):5}  {outcome}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
