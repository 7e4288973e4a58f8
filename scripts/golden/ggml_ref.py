"""ggml's own reference conversions, called through ctypes from the llama.cpp peer.

Used by the golden-data scripts in this folder. Needs the peer's Python (which has the
`llama_cpp` package, shipping libggml-base.so, plus `gguf` and `numpy`):

    ~/.cache/ziglama-peer/venv/bin/python scripts/golden/<script>.py ...

(`$ZIGLAMA_PEER` overrides ~/.cache/ziglama-peer; /work/shared/tools/setup-peer.sh builds it.)

Only public ggml entry points are used:
- `ggml_get_type_traits(type)` -> struct with `to_float` and `from_float_ref`,
- `ggml_quantize_chunk(type, src, dst, start, nrows, n_per_row, imatrix)`,
- `ggml_row_size(type, n)`.
The struct layout mirrors ggml.h's public `struct ggml_type_traits`.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from pathlib import Path

import numpy as np

# GGUF / ggml type ids (ggml.h `enum ggml_type`).
TYPE_IDS = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q8_1": 9,
    "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "Q8_K": 15,
    "IQ4_NL": 20, "IQ4_XS": 23, "BF16": 30,
}
TYPE_NAMES = {v: k for k, v in TYPE_IDS.items()}

_TO_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
_FROM_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


class TypeTraits(ctypes.Structure):
    """ggml.h `struct ggml_type_traits` (public API)."""

    _fields_ = [
        ("type_name", ctypes.c_char_p),
        ("blck_size", ctypes.c_int64),
        ("blck_size_interleave", ctypes.c_int64),
        ("type_size", ctypes.c_size_t),
        ("is_quantized", ctypes.c_bool),
        ("to_float", ctypes.c_void_p),
        ("from_float_ref", ctypes.c_void_p),
    ]


def _load() -> ctypes.CDLL:
    import llama_cpp  # noqa: F401  (only to find the shipped libraries)

    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    path = lib_dir / "libggml-base.so"
    if not path.exists():
        raise SystemExit(f"{path} not found: is this the peer's Python with llama_cpp?")
    lib = ctypes.CDLL(str(path))
    lib.ggml_get_type_traits.restype = ctypes.POINTER(TypeTraits)
    lib.ggml_get_type_traits.argtypes = [ctypes.c_int]
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [
        ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
        ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
    ]
    lib.ggml_row_size.restype = ctypes.c_size_t
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    lib.ggml_quantize_requires_imatrix.restype = ctypes.c_bool
    lib.ggml_quantize_requires_imatrix.argtypes = [ctypes.c_int]
    return lib


LIB = _load()


def traits(type_id: int) -> TypeTraits:
    return LIB.ggml_get_type_traits(type_id).contents


def row_size(type_id: int, n: int) -> int:
    return LIB.ggml_row_size(type_id, n)


def to_float(type_id: int, raw: bytes | np.ndarray, n: int) -> np.ndarray:
    """Dequantize `n` elements of type `type_id` from `raw` with ggml's `to_float`."""
    buf = np.frombuffer(bytes(raw) if not isinstance(raw, np.ndarray) else raw.tobytes(), dtype=np.uint8)
    if len(buf) != row_size(type_id, n):
        raise ValueError(f"{TYPE_NAMES.get(type_id)}: {len(buf)} bytes for {n} elements")
    if type_id == TYPE_IDS["F32"]:
        # ggml has no to_float for F32 (it is the identity).
        return buf.view("<f4").copy()
    t = traits(type_id)
    if not t.to_float:
        raise ValueError(f"ggml has no to_float for type {type_id}")
    out = np.empty(n, dtype="<f4")
    buf = np.ascontiguousarray(buf)
    _TO_FLOAT(t.to_float)(buf.ctypes.data, out.ctypes.data, n)
    return out


# Reference quantizers that ggml exports from libggml-base but does not list as a type's
# from_float_ref (Q8_K is no storage type, so its type_traits entry has none).
_REF_SYMBOLS = {TYPE_IDS["Q8_K"]: "quantize_row_q8_K_ref"}

# The CPU backend's own activation quantizers (SIMD where this CPU has it), which ggml's matmul
# uses on activations; for comparison with the references only.
_CPU_SYMBOLS = {
    TYPE_IDS["Q8_0"]: "quantize_row_q8_0",
    TYPE_IDS["Q8_1"]: "quantize_row_q8_1",
    TYPE_IDS["Q8_K"]: "quantize_row_q8_K",
}


def _call_from_float(fn, type_id: int, x: np.ndarray) -> bytes:
    x = np.ascontiguousarray(x, dtype="<f4")
    out = np.zeros(row_size(type_id, len(x)), dtype=np.uint8)
    fn(x.ctypes.data, out.ctypes.data, len(x))
    return out.tobytes()


def from_float_ref(type_id: int, x: np.ndarray) -> bytes:
    """Quantize `x` with ggml's `from_float_ref` (the plain C reference quantizer), or the
    exported `quantize_row_*_ref` where the type traits list none (Q8_K)."""
    t = traits(type_id)
    if t.from_float_ref:
        return _call_from_float(_FROM_FLOAT(t.from_float_ref), type_id, x)
    if type_id in _REF_SYMBOLS:
        fn = getattr(LIB, _REF_SYMBOLS[type_id])
        fn.restype = None
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        return _call_from_float(fn, type_id, x)
    raise ValueError(f"ggml has no from_float_ref for type {type_id}")


def cpu_from_float(type_id: int, x: np.ndarray) -> bytes:
    """Quantize `x` with the CPU backend's activation quantizer (libggml-cpu)."""
    import llama_cpp

    cpu = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-cpu.so"))
    fn = getattr(cpu, _CPU_SYMBOLS[type_id])
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    return _call_from_float(fn, type_id, x)


def quantize_chunk(type_id: int, x: np.ndarray, n_per_row: int) -> bytes:
    """Quantize rows of `n_per_row` with `ggml_quantize_chunk` and no importance matrix,
    as llama-quantize does for a model without an imatrix."""
    x = np.ascontiguousarray(x, dtype="<f4")
    assert len(x) % n_per_row == 0
    nrows = len(x) // n_per_row
    out = np.zeros(row_size(type_id, n_per_row) * nrows, dtype=np.uint8)
    n = LIB.ggml_quantize_chunk(type_id, x.ctypes.data, out.ctypes.data, 0, nrows, n_per_row, None)
    assert n == len(out), (n, len(out))
    return out.tobytes()


def sha256_f32(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, dtype="<f4").tobytes()).hexdigest()


def hex_f32(values: np.ndarray) -> str:
    """Comma-separated f32 bit patterns (8 hex digits each), for readable diffs."""
    return ",".join(f"{int(b):08x}" for b in np.ascontiguousarray(values, dtype="<f4").view("<u4"))


def peer_dir() -> Path:
    return Path(os.environ.get("ZIGLAMA_PEER", Path.home() / ".cache" / "ziglama-peer"))
