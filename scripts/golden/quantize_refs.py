#!/usr/bin/env python3
"""ggml's reference quantization of synthetic inputs and of SmolLM2's token embeddings.

    ~/.cache/ziglama-peer/venv/bin/python scripts/golden/quantize_refs.py [OUTDIR]

OUTDIR defaults to tests/data/quantize/. Writes:

inputs.tsv     the synthetic f32 inputs (edge cases), one per line:
               case  n  values (f32 bit patterns, 8 hex digits each, concatenated)
synthetic.tsv  for each type and case: type  case  n_per_row  sha256(bytes)  bytes (hex)
smollm2_token_embd.tsv
               SmolLM2's token_embd rows (Q8_0, dequantized by ggml) for the token ids in
               the header, concatenated and cut into rows of 2304 values (4 tokens; a
               multiple of 256, so the k-quants apply): for each type and row, the sha256 of
               its quantization. The test regenerates the input from the model itself and
               first checks its sha256 (also in the header).

The reference quantizer is the one llama-quantize uses for a model without an importance
matrix: `ggml_quantize_chunk(type, src, dst, 0, nrows, n_per_row, NULL)`. ggml_quantize_chunk
does not take the activation types Q8_1 and Q8_K; for them it is `from_float_ref` from
`ggml_get_type_traits(type)` (for Q8_K, whose traits list none, the exported
`quantize_row_q8_K_ref`). For those two, the header also says whether the CPU backend's own
(SIMD) activation quantizer, which ggml's matmul uses, gives the same bytes on this machine. For the weight types, this script also checks that
`from_float_ref` gives the same bytes as ggml_quantize_chunk and says so in the header.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ggml_ref  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q8_K", "Q4_K", "Q6_K", "F16", "BF16"]
ACTIVATION_TYPES = {"Q8_1", "Q8_K"}
EMBD_ROW = 2304
TOKEN_IDS = list(range(16)) + [16 + k * 1021 for k in range(48)]


def synthetic_cases() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(20261127)
    n = 256
    cases: list[tuple[str, np.ndarray]] = []

    def add(name: str, x) -> None:
        x = np.asarray(x, dtype=np.float32)
        assert x.ndim == 1 and len(x) % 256 == 0, name
        cases.append((name, x))

    add("zeros", np.zeros(n))
    add("const_one", np.ones(n))
    add("const_neg", np.full(n, -2.5))
    x = rng.standard_normal(n) * 0.01
    x[77] = 1000.0
    add("outlier_pos", x)
    x = rng.standard_normal(n) * 0.01
    x[200] = -1000.0
    add("outlier_neg", x)
    add("tiny_1e-20", rng.standard_normal(n) * 1e-20)
    add("small_1e-6", rng.standard_normal(n) * 1e-6)
    add("alternating", np.array([(1 if i % 2 == 0 else -1) * (1 + i % 7) for i in range(n)]))
    # Q8_0 / Q8_1 / Q8_K: amax 127 makes the scale 1, so k + 0.5 lands exactly on a tie.
    add("ties_amax127", np.array([127.0 if i % 32 == 0 else (-127.0 if i % 32 == 1 else ((i * 37) % 254 - 127) + 0.5) for i in range(n)]))
    # Q4_0: the signed max -8 makes the scale 1; Q4_1: min -8 and max 7 make the scale 1.
    add("ties_amax8", np.array([-8.0 if i % 32 == 0 else (7.0 if i % 32 == 1 else ((i * 5) % 15 - 8) + 0.5) for i in range(n)]))
    # Q5_0: signed max -16 makes the scale 1.
    add("ties_amax16", np.array([-16.0 if i % 32 == 0 else ((i * 7) % 31 - 16) + 0.5 for i in range(n)]))
    add("randn_1024", rng.standard_normal(1024))
    add("ramp", np.linspace(-1.0, 1.0, n))
    add("mixed_scales", rng.standard_normal(n) * np.repeat(10.0 ** np.arange(-4, 4), 32))
    add("uniform_pos", rng.uniform(0.0, 1.0, n))
    add("uniform_neg", rng.uniform(-1.0, 0.0, n))
    x = rng.standard_normal(n) * 100.0
    x[:6] = [65504.0, 65519.0, 65520.0, -65520.0, 70000.0, 1e-8]
    add("f16_range", x)
    x = np.zeros(n)
    x[1::2] = -0.0
    x[5] = 0.25
    x[100] = -0.125
    add("signed_zeros", x)
    x = np.zeros(n)
    x[150] = 1e-3
    add("one_nonzero", x)
    add("randn_1e4", rng.standard_normal(n) * 1e4)
    # Exact midpoints between neighbouring bf16 values and f16 values (ties to even).
    base = np.array([1.0, 1.0 + 2.0**-7, -3.0, 0.15625, 1024.0, 1e-3], dtype=np.float32)
    mids = []
    for b in base:
        ub = int(np.float32(b).view(np.uint32))
        mids += [np.uint32(ub + 0x8000).view(np.float32), np.uint32(ub + 0x18000).view(np.float32)]
        f16 = np.float16(b)
        up = np.float16(np.uint16(int(f16.view(np.uint16)) + 1).view(np.float16))
        mids += [np.float32((np.float64(f16) + np.float64(up)) / 2)]
    x = np.resize(np.array(mids, dtype=np.float32), n) * np.repeat([1.0, -1.0], n // 2).astype(np.float32)
    add("rounding_midpoints", x)
    return cases


def reference(type_name: str, x: np.ndarray, n_per_row: int) -> tuple[bytes, str | None]:
    """ggml's bytes and, for weight types, a note if from_float_ref disagrees."""
    tid = ggml_ref.TYPE_IDS[type_name]
    if type_name in ACTIVATION_TYPES:
        return b"".join(ggml_ref.from_float_ref(tid, x[i : i + n_per_row]) for i in range(0, len(x), n_per_row)), None
    chunk = ggml_ref.quantize_chunk(tid, x, n_per_row)
    note = None
    if ggml_ref.traits(tid).from_float_ref:
        ref = b"".join(ggml_ref.from_float_ref(tid, x[i : i + n_per_row]) for i in range(0, len(x), n_per_row))
        if ref != chunk:
            note = f"{type_name}: from_float_ref differs from ggml_quantize_chunk"
    return chunk, note


def token_embd_rows() -> tuple[np.ndarray, str]:
    from gguf import GGUFReader

    model = ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not model.exists():
        raise SystemExit(f"{model} missing: run python3 scripts/fetch_models.py smollm2")
    t = next(t for t in GGUFReader(model).tensors if t.name == "token_embd.weight")
    tid = int(t.tensor_type)
    ne0 = int(t.shape[0])
    raw = np.ascontiguousarray(t.data).reshape(-1).view(np.uint8)
    rb = ggml_ref.row_size(tid, ne0)
    rows = [ggml_ref.to_float(tid, raw[i * rb : (i + 1) * rb].tobytes(), ne0) for i in TOKEN_IDS]
    return np.concatenate(rows), f"{ggml_ref.TYPE_NAMES[tid]} rows of {ne0}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", nargs="?", type=Path, default=ROOT / "tests" / "data" / "quantize")
    args = ap.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    notes: set[str] = set()

    cases = synthetic_cases()
    lines = ["# synthetic f32 inputs; generated by scripts/golden/quantize_refs.py", "# case\tn\tvalues (f32 bits, 8 hex digits each)"]
    for name, x in cases:
        lines.append(f"{name}\t{len(x)}\t" + "".join(f"{int(b):08x}" for b in x.view(np.uint32)))
    (args.outdir / "inputs.tsv").write_text("\n".join(lines) + "\n")

    out = []
    for ty in TYPES:
        for name, x in cases:
            b, note = reference(ty, x, len(x))
            if note:
                notes.add(note)
            out.append(f"{ty}\t{name}\t{len(x)}\t{hashlib.sha256(b).hexdigest()}\t{b.hex()}")
    agree = "; ".join(sorted(notes)) or "from_float_ref agrees with ggml_quantize_chunk for every weight type on these inputs"
    cpu_notes = []
    for ty in ["Q8_0", "Q8_1", "Q8_K"]:
        tid = ggml_ref.TYPE_IDS[ty]
        differ = [name for name, x in cases if ggml_ref.cpu_from_float(tid, x) != reference(ty, x, len(x))[0]]
        cpu_notes.append(f"{ty}: " + (", ".join(differ) if differ else "none"))
    head = [
        "# ggml reference quantization of inputs.tsv: ggml_quantize_chunk (no imatrix), "
        "from_float_ref for Q8_1 and Q8_K; generated by scripts/golden/quantize_refs.py",
        f"# {agree}",
        "# cases where the CPU backend's activation quantizer (quantize_row_q8_0/q8_1/q8_K of "
        "libggml-cpu, SIMD on the machine that generated this) differs from the reference: "
        + "; ".join(cpu_notes),
        "# type\tcase\tn_per_row\tsha256(bytes)\tbytes (hex)",
    ]
    (args.outdir / "synthetic.tsv").write_text("\n".join(head + out) + "\n")

    x, what = token_embd_rows()
    in_sha = ggml_ref.sha256_f32(x)
    out = []
    for ty in TYPES:
        for r in range(len(x) // EMBD_ROW):
            b, note = reference(ty, x[r * EMBD_ROW : (r + 1) * EMBD_ROW], EMBD_ROW)
            if note:
                notes.add(note)
            out.append(f"{ty}\t{r}\t{EMBD_ROW}\t{hashlib.sha256(b).hexdigest()}")
    head = [
        "# ggml reference quantization of SmolLM2-135M-Instruct.Q4_1.gguf token_embd.weight "
        f"({what}) dequantized by ggml, rows concatenated and cut into rows of {EMBD_ROW}; "
        "generated by scripts/golden/quantize_refs.py",
        "# token_ids\t" + ",".join(str(i) for i in TOKEN_IDS),
        f"# input_sha256\t{in_sha}",
        "# type\trow\tn_per_row\tsha256(bytes)",
    ]
    (args.outdir / "smollm2_token_embd.tsv").write_text("\n".join(head + out) + "\n")
    for n in sorted(notes):
        print("note:", n, file=sys.stderr)
    print(f"wrote {args.outdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
