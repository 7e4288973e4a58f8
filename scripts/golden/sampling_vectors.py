#!/usr/bin/env python3
"""Golden vectors for ziglama's sampler catalogue, answered by llama.cpp's samplers.

Run with the peer's Python (llama-cpp-python and numpy):
    ~/.cache/ziglama-peer/venv/bin/python scripts/golden/sampling_vectors.py \
        --smollm2 smol.npy --gemma3 gemma.npy --out ziglama-infer/tests/data/sampling
where smol.npy / gemma.npy are last-position logits of the prompt "The capital of France is"
(`peer.py logits --model M --text "The capital of France is" --out X.npy`).

Writes into --out:
  smollm2.f32, gemma3.f32   the real-model logits, raw little-endian float32
  vectors.json              one entry per case: the logits source, the chain (same JSON words
                            as peer.py's `sample`, plus "dry" and "logit_bias"), the tokens
                            accepted before the first step, and per step the selected id, the
                            candidates left after the whole chain (at most KEEP, by descending
                            logit, then id), their count and how many have a finite logit, the
                            "probes" (the candidates for every token named in the history, the
                            accepts and the biases, where penalties and biases show) and the
                            token accepted after the step. "dry_breakers" lists, for SmolLM2,
                            the tokens whose text contains a breaker ("\n", ":"): the
                            single-token breakers llama.cpp derives from those strings.

Random logits are not stored: `splitmix:SEED:N` sources are regenerated bit for bit by the
tests from the same formula (splitmix64 counter stream, 24-bit uniforms, float32 products):
    u_j = (splitmix64(seed + (3*i + j + 1) * 0x9E3779B97F4A7C15) >> 40) * 2^-24,  j = 0, 1, 2
    logit_i = ((24 * u_0) * u_1) * u_2 - 6          (every operation rounded to float32)
Each step applies the chain to a fresh copy of the same logits, then calls accept on the chain
with the selected token (or, for chains without a selector, with the step's `accept` token),
so stateful samplers (penalties, DRY, Mirostat's mu, the RNGs) carry their state forward.
"""
import argparse, ctypes, json, os
import numpy as np
import llama_cpp as L

KEEP = 48
VOCAB = {}  # name -> the llama_cpp model whose vocabulary DRY's breaker strings are read with


def single_char_breaker_tokens(m, breakers):
    """The tokens whose text contains one of the (one-character) breakers: for such breakers
    llama.cpp's DRY makes exactly these single-token breakers (no partial matches exist)."""
    import llama_cpp as L
    assert all(len(b.encode()) == 1 for b in breakers)
    buf = ctypes.create_string_buffer(256)
    out = []
    for t in range(m.n_vocab()):
        n = L.llama_token_to_piece(m._model.vocab, t, buf, 256, 0, True)
        piece = bytes(buf[:n])
        if any(b.encode() in piece for b in breakers):
            out.append(t)
    return out
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix_logits(seed, n):
    with np.errstate(over="ignore"):
        idx = np.arange(3 * n, dtype=np.uint64) + np.uint64(1)
        z = np.uint64(seed) + idx * GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = ((z >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24)).reshape(n, 3)
    x = np.float32(24.0) * u[:, 0]
    x = x * u[:, 1]
    x = x * u[:, 2]
    return (x - np.float32(6.0)).astype(np.float32)


def make_sampler(k, v, n_vocab):
    if k == "top_k": return L.llama_sampler_init_top_k(int(v))
    if k == "top_p": return L.llama_sampler_init_top_p(float(v[0]), int(v[1]))
    if k == "min_p": return L.llama_sampler_init_min_p(float(v[0]), int(v[1]))
    if k == "typical": return L.llama_sampler_init_typical(float(v[0]), int(v[1]))
    if k == "temp": return L.llama_sampler_init_temp(float(v))
    if k == "temp_ext": return L.llama_sampler_init_temp_ext(float(v[0]), float(v[1]), float(v[2]))
    if k == "xtc": return L.llama_sampler_init_xtc(float(v[0]), float(v[1]), int(v[2]), int(v[3]))
    if k == "top_n_sigma": return L.llama_sampler_init_top_n_sigma(float(v))
    if k == "penalties": return L.llama_sampler_init_penalties(n_vocab, int(v[0]), float(v[1]), float(v[2]), float(v[3]))
    if k == "mirostat": return L.llama_sampler_init_mirostat(n_vocab, int(v[0]), float(v[1]), float(v[2]), int(v[3]))
    if k == "mirostat_v2": return L.llama_sampler_init_mirostat_v2(int(v[0]), float(v[1]), float(v[2]))
    if k == "dist": return L.llama_sampler_init_dist(int(v))
    if k == "greedy": return L.llama_sampler_init_greedy()
    if k == "dry":  # [multiplier, base, allowed_length, penalty_last_n], no sequence breakers
        return L.llama_sampler_init_dry(None, float(v[0]), float(v[1]), int(v[2]), int(v[3]), None, 0)
    if k == "dry_breakers":  # [multiplier, base, allowed_length, penalty_last_n, [breakers]], SmolLM2's vocab
        strs = [b.encode() for b in v[4]]
        arr = (ctypes.c_char_p * len(strs))(*strs)
        return L.llama_sampler_init_dry(VOCAB["smollm2"]._model.vocab, float(v[0]), float(v[1]), int(v[2]), int(v[3]),
                                        arr, len(strs))
    if k == "logit_bias":  # [[token, bias], ...]
        arr = (L.llama_logit_bias * len(v))()
        for i, (t, b) in enumerate(v):
            arr[i].token, arr[i].bias = int(t), float(b)
        return L.llama_sampler_init_logit_bias(n_vocab, len(v), arr)
    raise SystemExit(f"unknown sampler {k}")


def num(x):
    """A float for JSON: non-finite values as the strings "inf", "-inf", "nan"."""
    x = float(x)
    return x if np.isfinite(x) else ("nan" if np.isnan(x) else ("inf" if x > 0 else "-inf"))


def run_case(logits, case):
    n = len(logits)
    tmpl = np.zeros(n, dtype=[("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
    tmpl["id"] = np.arange(n, dtype=np.int32)
    tmpl["logit"] = logits
    chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
    for step in case["chain"]:
        (k, v), = step.items()
        L.llama_sampler_chain_add(chain, make_sampler(k, v, n))
    for t in case.get("history", []):
        L.llama_sampler_accept(chain, int(t))
    arr = (L.llama_token_data * n)()
    probes = sorted(set(case.get("history", []) + case.get("accept", []) +
                        [t for st in case["chain"] for t, _ in st.get("logit_bias", [])]))
    steps = []
    for s in range(case.get("steps", 1)):
        ctypes.memmove(arr, tmpl.ctypes.data, tmpl.nbytes)
        cur = L.llama_token_data_array(data=arr, size=n, selected=-1, sorted=False)
        L.llama_sampler_apply(chain, ctypes.byref(cur))
        left = [(cur.data[j].id, cur.data[j].logit, cur.data[j].p) for j in range(cur.size)]
        sel = int(cur.data[cur.selected].id) if cur.selected >= 0 else None
        left.sort(key=lambda r: (-r[1], r[0]))
        acc = sel if sel is not None else case.get("accept", [0] * 64)[s]
        by_id = {r[0]: r for r in left}
        probe = [[int(t), num(by_id[t][1]), num(by_id[t][2])] for t in probes if t in by_id]
        n_finite = sum(1 for r in left if np.isfinite(r[1]))
        steps.append({"selected": sel, "n_candidates": len(left), "n_finite": n_finite,
                      "accepted_after": acc, "probes": probe,
                      "candidates": [[int(i), num(l), num(p)] for i, l, p in left[:KEEP]]})
        L.llama_sampler_accept(chain, int(acc))
    L.llama_sampler_free(chain)
    return steps


def cases():
    """The chains: every llama.cpp sampler, several parameter sets each."""
    one = [
        [{"greedy": None}],
        [{"dist": 42}],
        [{"temp": 0.8}, {"dist": 7}],
        [{"temp": 0.0}, {"dist": 7}],
        [{"temp": 1.5}],
        [{"top_k": 40}],
        [{"top_k": 1}],
        [{"top_k": 0}, {"top_k": 300}],
        [{"top_k": 1000000}],
        [{"top_p": [0.95, 1]}],
        [{"top_p": [0.5, 1]}],
        [{"top_p": [0.9, 60]}],
        [{"top_k": 100}, {"top_p": [0.8, 1]}],
        [{"min_p": [0.05, 1]}],
        [{"min_p": [0.2, 5]}],
        [{"min_p": [0.9, 3]}],
        [{"top_k": 64}, {"min_p": [0.1, 1]}],
        [{"typical": [0.9, 1]}],
        [{"top_k": 200}, {"typical": [0.5, 3]}],
        [{"temp_ext": [0.8, 0.5, 1.0]}],
        [{"top_k": 50}, {"temp_ext": [1.2, 0.3, 2.0]}],
        [{"temp_ext": [0.7, 0.0, 1.0]}],
        [{"top_n_sigma": 1.0}],
        [{"top_n_sigma": 2.5}],
        [{"top_k": 40}, {"xtc": [1.0, 0.05, 1, 7]}],
        [{"top_k": 40}, {"temp": 2.0}, {"xtc": [0.99, 0.02, 2, 11]}],
        [{"penalties": [64, 1.1, 0.0, 0.0]}],
        [{"penalties": [8, 1.3, 0.5, 0.3]}],
        [{"logit_bias": [[0, 5.0], [17, -3.5], [1000, 30.0], [5, "-inf"]]}],
        [{"top_k": 40}, {"top_p": [0.95, 1]}, {"min_p": [0.05, 1]}, {"temp_ext": [0.8, 0.0, 1.0]}, {"dist": 1234}],
    ]
    out = [{"chain": c} for c in one]
    hist = [2, 5, 9, 2, 2, 11, 5, 40, 2, 9]
    out += [
        {"chain": [{"penalties": [64, 1.1, 0.0, 0.0]}], "history": hist},
        {"chain": [{"penalties": [4, 1.25, 0.4, 0.6]}], "history": hist, "steps": 4,
         "accept": [7, 2, 7, 13]},
        {"chain": [{"dry": [0.8, 1.75, 2, 64]}], "history": [1, 2, 3, 4, 1, 2, 3, 9, 1, 2], "steps": 3,
         "accept": [3, 4, 1]},
        {"chain": [{"dry": [1.5, 2.0, 1, 16]}], "history": [7, 8, 7, 8, 7, 8, 3, 7], "steps": 2,
         "accept": [8, 7]},
        {"chain": [{"dist": 42}], "steps": 6},
        {"chain": [{"top_k": 40}, {"temp": 1.5}, {"xtc": [0.5, 0.05, 1, 3]}, {"dist": 5}], "steps": 6},
        {"chain": [{"temp": 0.9}, {"mirostat": [42, 5.0, 0.1, 100]}], "steps": 6},
        {"chain": [{"temp": 1.0}, {"mirostat": [3, 3.0, 0.5, 100]}], "steps": 6},
        {"chain": [{"temp": 0.9}, {"mirostat_v2": [42, 5.0, 0.1]}], "steps": 6},
        {"chain": [{"temp": 1.2}, {"mirostat_v2": [9, 3.0, 0.4]}], "steps": 6},
        {"chain": [{"penalties": [64, 1.0, 0.0, 0.0]}, {"dry": [0.0, 1.75, 2, 64]},
                   {"top_n_sigma": -1.0}, {"top_k": 40}, {"typical": [1.0, 0]},
                   {"top_p": [0.95, 0]}, {"min_p": [0.05, 0]}, {"xtc": [0.0, 0.1, 0, 0]},
                   {"temp_ext": [0.8, 0.0, 1.0]}, {"dist": 2024}], "steps": 5},
    ]
    return out


def breaker_cases(nl, colon):
    """DRY with llama.cpp's breaker strings "\n" and ":" (SmolLM2's vocabulary), histories in
    which a breaker limits the repeat or is itself the token that would extend one."""
    b = ["\n", ":"]
    return [
        {"chain": [{"dry_breakers": [0.8, 1.75, 2, 64, b]}], "history": [1, 2, 3, 4, nl, 1, 2, 3, 9, 1, 2, 3],
         "steps": 3, "accept": [4, 1, 2]},
        {"chain": [{"dry_breakers": [1.0, 2.0, 1, 32, b]}], "history": [5, 6, 7, 5, 6, colon, 5, 6],
         "steps": 2, "accept": [7, 5]},
        {"chain": [{"dry_breakers": [1.0, 2.0, 1, 32, b]}], "history": [5, nl, 8, 5, 8, 5], "steps": 2,
         "accept": [nl, 5]},
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smollm2", required=True)
    ap.add_argument("--gemma3", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    L.llama_backend_init()
    sources = {"splitmix:1:49152": splitmix_logits(1, 49152),
               "splitmix:2:262144": splitmix_logits(2, 262144)}
    for name, path in (("smollm2", a.smollm2), ("gemma3", a.gemma3)):
        lg = np.load(path).astype("<f4").reshape(-1)
        lg.tofile(os.path.join(a.out, name + ".f32"))
        sources["file:" + name + ".f32"] = lg
    from llama_cpp import Llama
    smol = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    m = Llama(model_path=smol, vocab_only=True, verbose=False)
    VOCAB["smollm2"] = m
    nl, colon = m.tokenize(b"\n", add_bos=False)[0], m.tokenize(b":", add_bos=False)[0]
    out = []
    for src, lg in sources.items():
        for c in cases():
            out.append({"logits": src, **c, "steps": run_case(lg, c)})
        if len(lg) == m.n_vocab():
            for c in breaker_cases(nl, colon):
                out.append({"logits": src, **c, "steps": run_case(lg, c)})
    breakers = {"smollm2": {"strings": ["\n", ":"], "tokens": single_char_breaker_tokens(m, ["\n", ":"])}}
    # a few values of the generator, so a test can check its own copy before anything else
    check = {k: [float(x) for x in v[:4]] for k, v in sources.items() if k.startswith("splitmix")}
    with open(os.path.join(a.out, "vectors.json"), "w") as f:
        json.dump({"generator_check": check, "dry_breakers": breakers, "cases": out}, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
