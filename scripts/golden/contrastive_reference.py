#!/usr/bin/env python3
"""Reference picks of contrastive search (Su et al. 2022) on a synthetic recording.

Writes ziglama-infer/tests/data/generator/contrastive_synthetic.json: a 64-dim recording
(the initial context of hidden states, then per step the top-k candidate probabilities and
hidden states; the context grows by the candidate picked at alpha 0.6, as a run of the
search would), and for several penalty_alpha the
scores and the pick computed here with numpy, in float64, as Hugging Face's
`_ranking_fast` computes them:

    score(v) = (1 - alpha) * p(v) - alpha * max_j cos(h_v, h_j)

Some candidates are near copies of context states (what a repeating model produces), so
the penalty changes the pick. Run from the repository root:

    python3 scripts/golden/contrastive_reference.py
"""

import json
import os

import numpy as np

DIM = 64
K = 5
STEPS = 8
ALPHAS = [0.0, 0.3, 0.5, 0.6, 0.9]


def scores(probs, cands, context, alpha):
    cn = cands / np.linalg.norm(cands, axis=1, keepdims=True)
    xn = context / np.linalg.norm(context, axis=1, keepdims=True)
    penalty = (cn @ xn.T).max(axis=1)
    return (1.0 - alpha) * probs - alpha * penalty


def f32(a):
    """float32 values as the shortest decimals that read back as them."""
    return [float(np.format_float_positional(x, unique=True)) for x in np.asarray(a, np.float32).ravel()]


def main():
    rng = np.random.RandomState(20220213)
    context = rng.standard_normal((6, DIM)).astype(np.float32)
    context0 = f32(context)
    steps = []
    for step in range(STEPS):
        logits = rng.standard_normal(K) * 2.0
        probs = np.sort(np.exp(logits) / np.exp(logits).sum() * rng.uniform(0.5, 1.0))[::-1]
        probs = np.array([round(float(p), 6) for p in probs])
        cands = rng.standard_normal((K, DIM)).astype(np.float32)
        # The most probable candidate nearly repeats a context state on most steps.
        if step % 3 != 2:
            j = rng.randint(len(context))
            cands[0] = context[j] + 0.1 * rng.standard_normal(DIM).astype(np.float32)
        cases = []
        for alpha in ALPHAS:
            # penalty_alpha is an f32 in ziglama: score with the same value.
            s = scores(probs.astype(np.float64), cands.astype(np.float64),
                       context.astype(np.float64), float(np.float32(alpha)))
            pick = int(np.argmax(s))
            top2 = np.sort(s)[::-1]
            assert top2[0] - top2[1] > 1e-6, "a near-tie: choose another seed"
            cases.append({"alpha": alpha, "scores": s.tolist(), "pick": pick})
        steps.append({
            "probs": probs.tolist(),
            "candidates": f32(cands),
            "cases": cases,
        })
        # The run continues with the pick at alpha 0.6.
        chosen = next(c["pick"] for c in cases if c["alpha"] == 0.6)
        context = np.vstack([context, cands[chosen:chosen + 1]])
    out = {"dim": DIM, "k": K, "context": context0, "grow_alpha": 0.6, "steps": steps}
    path = os.path.join("ziglama-infer", "tests", "data", "generator", "contrastive_synthetic.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    picks = [[c["pick"] for c in s["cases"]] for s in steps]
    print(path, "picks per step (alphas", ALPHAS, "):", picks)


if __name__ == "__main__":
    main()
