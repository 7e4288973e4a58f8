"""Golden data for ziglama-nn's GELU table test (activation.rs, `gelu_table_is_ggml_s`): asks
libggml-cpu (llama.cpp's CPU backend built by shared/tools/setup-peer.sh for this machine) for
its f16 GELU lookup table, `ggml_table_gelu_f16`, filled by `ggml_cpu_init`, and prints the
FNV-1a 64-bit hash of its 65,536 entries (little-endian bytes) and the entries the test spells out.
Usage: ~/.cache/ziglama-peer/venv/bin/python scripts/golden/gelu_table.py"""
import ctypes, os

LIB = os.path.expanduser("~/.cache/ziglama-peer/venv/lib/python3.11/site-packages/llama_cpp/lib/")
ctypes.CDLL(LIB + "libggml-base.so", mode=ctypes.RTLD_GLOBAL)
cpu = ctypes.CDLL(LIB + "libggml-cpu.so")
cpu.ggml_cpu_init()
table = bytes((ctypes.c_uint16 * 65536).in_dll(cpu, "ggml_table_gelu_f16"))
h = 0xCBF29CE484222325
for b in table:
    h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
entry = lambda i: int.from_bytes(table[2 * i:2 * i + 2], "little")
print(f"fnv1a64 {h:#018x}")
for i in (0x3C00, 0xBFFF, 0x4000):
    print(f"entry {i:#06x}: {entry(i):#06x}")
