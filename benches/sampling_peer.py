#!/usr/bin/env python3
"""llama.cpp's side of the sampling bench: its default sampler chain, timed per token.

Run with the peer's Python (llama-cpp-python):
    ~/.cache/ziglama-peer/venv/bin/python benches/sampling_peer.py [--iters 2000] [--repeats 5]

For each real model (Gemma 3, 262,144 tokens; SmolLM2, 49,152) it evaluates the prompt
"The capital of France is", checks that the context's last logits are bit for bit the ones
committed in ziglama-infer/tests/data/sampling/<model>.f32 (the input of `cargo bench --bench
sampling`), builds llama.cpp's default chain exactly as common/sampling.cpp does with the
default common_params_sampling (penalties 64/1/0/0, DRY 0, top-n-sigma -1, top-k 40,
typical 1, top-p 0.95, min-p 0.05, XTC 0/0.1, temp-ext 0.8/0/1, dist), and times
`llama_sampler_sample(chain, ctx, -1)`: candidate fill from the logits, chain, accept, the
same work as one `chain.sample(logits)` + `chain.accept(token)` in ziglama. Prints one JSON
line per model and chain with the per-token time of each repeat (microseconds, ctypes call
overhead of about a microsecond included). The second chain is common/sampling.cpp's for
mirostat = 2 (temperature 0.8, Mirostat 2 with tau 5, eta 0.1), timed over iters / 10 calls.
"""
import argparse, ctypes, json, os, time
import numpy as np
import llama_cpp as L

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {"gemma3": "models/gemma-3-270m-q4_k_m.gguf", "smollm2": "models/SmolLM2-135M-Instruct.Q4_1.gguf"}


def default_chain(n_vocab, seed):
    ch = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
    for s in (L.llama_sampler_init_penalties(n_vocab, 64, 1.0, 0.0, 0.0),
              L.llama_sampler_init_dry(None, 0.0, 1.75, 2, 64, None, 0),
              L.llama_sampler_init_top_n_sigma(-1.0),
              L.llama_sampler_init_top_k(40),
              L.llama_sampler_init_typical(1.0, 0),
              L.llama_sampler_init_top_p(0.95, 0),
              L.llama_sampler_init_min_p(0.05, 0),
              L.llama_sampler_init_xtc(0.0, 0.1, 0, seed),
              L.llama_sampler_init_temp_ext(0.8, 0.0, 1.0),
              L.llama_sampler_init_dist(seed)):
        L.llama_sampler_chain_add(ch, s)
    return ch


def mirostat_v2_chain(seed):
    """common/sampling.cpp with mirostat = 2: temperature, then Mirostat 2 (tau 5, eta 0.1)."""
    ch = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
    L.llama_sampler_chain_add(ch, L.llama_sampler_init_temp(0.8))
    L.llama_sampler_chain_add(ch, L.llama_sampler_init_mirostat_v2(seed, 5.0, 0.1))
    return ch


def time_chain(chain, ctx, iters, repeats):
    for _ in range(200):
        L.llama_sampler_sample(chain, ctx, -1)
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(iters):
            L.llama_sampler_sample(chain, ctx, -1)
        runs.append(round((time.perf_counter_ns() - t0) / iters / 1000.0, 2))
    L.llama_sampler_free(chain)
    return runs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", default="gemma3,smollm2")
    a = ap.parse_args()
    from llama_cpp import Llama
    for name in a.models.split(","):
        m = Llama(model_path=os.path.join(ROOT, MODELS[name]), n_ctx=256, n_threads=2, verbose=False)
        m.eval(m.tokenize(b"The capital of France is", add_bos=m._model.add_bos_token()))
        n = m.n_vocab()
        got = np.ctypeslib.as_array(L.llama_get_logits_ith(m.ctx, -1), shape=(n,))
        want = np.fromfile(os.path.join(ROOT, "ziglama-infer/tests/data/sampling", name + ".f32"), dtype="<f4")
        same = bool(np.array_equal(got, want))
        for chain_name, chain, iters in (("default", default_chain(n, 1234), a.iters),
                                         ("mirostat_v2", mirostat_v2_chain(1234), max(1, a.iters // 10))):
            runs = time_chain(chain, m.ctx, iters, a.repeats)
            print(json.dumps({"model": name, "chain": chain_name, "n_vocab": n,
                              "logits_match_committed": same, "us_per_token": runs,
                              "best_us": min(runs), "load": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
