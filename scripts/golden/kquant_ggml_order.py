"""Golden data for ziglama-tensor/tests/kquant_kernels.rs (ggml_order_*): asks libggml-cpu (llama.cpp's CPU
backend built by shared/tools/setup-peer.sh for this machine) for Q4_K/Q6_K products of random
blocks: repacked gemm/gemv, vec_dot, ggml_mul_mat of the plain weights (tiled for 8+ rows), and
the Q8_K quants. Usage (from the repository root):
  for c in "1 2 24 7" "2 1 16 4" "3 5 8 5" "4 2 16 9"; do set -- $c
    ~/.cache/ziglama-peer/venv/bin/python scripts/golden/kquant_ggml_order.py \
      ziglama-tensor/tests/data/kquant_ggml $1 $2 $3 $4; done
(arguments: out dir, seed, super-blocks per row, weight rows (multiple of 8), activation rows)."""
import ctypes, os, sys
import numpy as np
LIB = os.path.expanduser("~/.cache/ziglama-peer/venv/lib/python3.11/site-packages/llama_cpp/lib/")
ctypes.CDLL(LIB + "libggml-base.so", mode=ctypes.RTLD_GLOBAL)
cpu = ctypes.CDLL(LIB + "libggml-cpu.so")
cpu.ggml_cpu_init()
P, I, I64, SZ = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_size_t
cpu.ggml_quantize_mat_q8_K_4x8.argtypes = [P, P, I64]
cpu.quantize_row_q8_K.argtypes = [P, P, I64]
for f in ("ggml_gemv_q4_K_8x8_q8_K", "ggml_gemm_q4_K_8x8_q8_K"):
    getattr(cpu, f).argtypes = [I, P, SZ, P, P, I, I]
for f in ("ggml_vec_dot_q4_K_q8_K", "ggml_vec_dot_q6_K_q8_K"):
    getattr(cpu, f).argtypes = [I, P, SZ, P, SZ, P, SZ, I]

out = sys.argv[1]; seed = int(sys.argv[2]); nb = int(sys.argv[3]); nc = int(sys.argv[4]); nr = int(sys.argv[5])
rng = np.random.default_rng(seed)
n = 256 * nb
ptr = lambda a: a.ctypes.data_as(P)

def f16s(k, scale):
    return (rng.standard_normal(k) * scale).astype(np.float16)

# Q4_K weights: nc rows x nb blocks of 144 bytes.
w = rng.integers(0, 256, size=(nc, nb, 144), dtype=np.uint8)
d = f16s(nc * nb, 1e-3).view(np.uint8).reshape(nc, nb, 2)
dm = f16s(nc * nb, 1e-3).view(np.uint8).reshape(nc, nb, 2)
w[:, :, 0:2] = d; w[:, :, 2:4] = dm

def repack(rows):  # 8 rows x nb blocks -> nb blocks of block_q4_Kx8 (1136 bytes)
    outb = []
    for b in range(nb):
        blk = [rows[j, b] for j in range(8)]
        o = np.zeros(16 + 16 + 96 + 1024, dtype=np.uint8)
        for j in range(8):
            o[2*j:2*j+2] = blk[j][0:2]; o[16+2*j:16+2*j+2] = blk[j][2:4]
        qs = [blk[j][16:144] for j in range(8)]
        for i in range(128):   # 8-byte chunks
            src, off = i % 8, (i // 8) * 8
            o[128 + 8*i:128 + 8*i + 8] = qs[src][off:off+8]
        sc = [blk[j][4:16].astype(np.int32) for j in range(8)]
        def put(base, s, m):
            for j in range(4):
                o[32 + base + j] = (s[j] & 63) + ((s[j+4] & 48) << 2)
                o[32 + base + 4 + j] = (m[j] & 63) + ((m[j+4] & 48) << 2)
                o[32 + base + 8 + j] = (s[j+4] & 15) + ((m[j+4] & 15) << 4)
        for i in range(4):
            put(i*12, [sc[j][i] & 63 for j in range(8)], [sc[j][i+4] & 63 for j in range(8)])
        for i in range(4):
            put(48 + i*12, [((sc[j][i] & 192) >> 2) | (sc[j][i+8] & 15) for j in range(8)],
                [((sc[j][i+4] & 192) >> 2) | ((sc[j][i+8] & 240) >> 4) for j in range(8)])
        outb.append(o)
    return np.concatenate(outb)

packed = np.concatenate([repack(w[8*g:8*g+8]) for g in range(nc // 8)])
x = (rng.standard_normal((nr, n)) * np.exp(rng.standard_normal((nr, 1)))).astype(np.float32)
# ties of +-amax in some rows
if nr > 2:
    x[1, 5] = -np.abs(x[1]).max(); x[1, 200] = -x[1, 5]
xq = np.zeros((nr, nb, 292), dtype=np.uint8)
for r in range(nr):
    cpu.quantize_row_q8_K(ptr(x[r]), ptr(xq[r]), n)
g4 = nr - nr % 4
xq4 = np.zeros((g4 // 4, nb, 16 + 1024 + 128), dtype=np.uint8)
for g in range(g4 // 4):
    xs = np.ascontiguousarray(x[4*g:4*g+4])
    cpu.ggml_quantize_mat_q8_K_4x8(ptr(xs), ptr(xq4[g]), n)
s_gemm = np.zeros((g4, nc), dtype=np.float32)
for g in range(g4 // 4):
    cpu.ggml_gemm_q4_K_8x8_q8_K(n, ptr(s_gemm[4*g:]), nc, ptr(packed), ptr(xq4[g]), 4, nc)
s_gemv = np.zeros((nr, nc), dtype=np.float32)
for r in range(nr):
    cpu.ggml_gemv_q4_K_8x8_q8_K(n, ptr(s_gemv[r]), nc, ptr(packed), ptr(xq[r]), 1, nc)
s_vd = np.zeros((nr, nc), dtype=np.float32)
for r in range(nr):
    for c in range(nc):
        cpu.ggml_vec_dot_q4_K_q8_K(n, ptr(s_vd[r, c:]), 0, ptr(w[c]), 0, ptr(xq[r]), 0, 1)
# Q6_K
w6 = rng.integers(0, 256, size=(nc, nb, 210), dtype=np.uint8)
w6[:, :, 208:210] = f16s(nc * nb, 1e-3).view(np.uint8).reshape(nc, nb, 2)
s6 = np.zeros((nr, nc), dtype=np.float32)
for r in range(nr):
    for c in range(nc):
        cpu.ggml_vec_dot_q6_K_q8_K(n, ptr(s6[r, c:]), 0, ptr(w6[c]), 0, ptr(xq[r]), 0, 1)
# ggml_mul_mat through a graph, plain (not repacked) weights: ggml_vec_dot_* for fewer than
# 8 activation rows, the tiled k-quant path (ggml-cpu/tiled) for 8 or more.
class InitParams(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", P), ("no_alloc", ctypes.c_bool)]
base = ctypes.CDLL(LIB + "libggml-base.so")
base.ggml_init.argtypes = [InitParams]; base.ggml_init.restype = P
base.ggml_new_tensor_2d.argtypes = [P, I, I64, I64]; base.ggml_new_tensor_2d.restype = P
base.ggml_get_data.argtypes = [P]; base.ggml_get_data.restype = P
for f in ("ggml_mul_mat", "ggml_new_graph"):
    getattr(base, f).restype = P
base.ggml_mul_mat.argtypes = [P, P, P]; base.ggml_new_graph.argtypes = [P]
base.ggml_build_forward_expand.argtypes = [P, P]; base.ggml_free.argtypes = [P]
cpu.ggml_graph_compute_with_ctx.argtypes = [P, P, I]

def mul_mat(wb, wtype):
    ctx = base.ggml_init(InitParams(64 << 20, None, False))
    a = base.ggml_new_tensor_2d(ctx, wtype, n, nc)
    b = base.ggml_new_tensor_2d(ctx, 0, n, nr)
    ctypes.memmove(base.ggml_get_data(a), wb.ctypes.data, wb.nbytes)
    ctypes.memmove(base.ggml_get_data(b), x.ctypes.data, x.nbytes)
    c = base.ggml_mul_mat(ctx, a, b)
    g = base.ggml_new_graph(ctx)
    base.ggml_build_forward_expand(g, c)
    cpu.ggml_graph_compute_with_ctx(ctx, g, 2)
    res = np.zeros((nr, nc), dtype=np.float32)
    ctypes.memmove(res.ctypes.data, base.ggml_get_data(c), res.nbytes)
    base.ggml_free(ctx)
    return res

mm4 = mul_mat(np.ascontiguousarray(w), 12)
mm6 = mul_mat(np.ascontiguousarray(w6), 14)
os.makedirs(out, exist_ok=True)
hdr = np.array([nb, nc, nr], dtype=np.uint32)
with open(os.path.join(out, f"case{seed}.bin"), "wb") as f:
    for a in (hdr, w, w6, x, xq, s_gemm, s_gemv, s_vd, s6, mm4, mm6):
        f.write(a.tobytes())
print("ok", nb, nc, nr, s_gemm.shape, "gemm-vs-gemv rows0..4 equal:", np.array_equal(s_gemm, s_gemv[:g4]),
      "gemv==vecdot:", np.array_equal(s_gemv, s_vd))
# q8 of mat vs row: compare quants (layout: d[4], qs interleaved 8 bytes, bsums)
for g in range(g4 // 4):
    for b in range(nb):
        blk = xq4[g, b]
        d4 = blk[:16].view(np.float32)
        qs = blk[16:16+1024].reshape(128, 8)  # chunk i: row i%4, offset (i//4)*8
        for r in range(4):
            row = xq[4*g + r, b]
            dr = row[:4].view(np.float32)[0]
            qr = row[4:260].view(np.int8)
            qm = np.concatenate([qs[i] for i in range(r, 128, 4)]).view(np.int8)
            if dr != d4[r] or not np.array_equal(qr, qm):
                print("mat/row differ: group", g, "block", b, "row", r, dr, d4[r], np.array_equal(qr, -qm))

# Q5_K: ggml_vec_dot_q5_K_q8_K on random blocks against the same activation blocks
# (file q5k_case{seed}.bin: nb, nc, nr (u32), Q5_K weights, Q8_K activations, outputs [row][col]).
cpu.ggml_vec_dot_q5_K_q8_K.argtypes = [I, P, SZ, P, SZ, P, SZ, I]
w5 = rng.integers(0, 256, size=(nc, nb, 176), dtype=np.uint8)
w5[:, :, 0:2] = f16s(nc * nb, 1e-3).view(np.uint8).reshape(nc, nb, 2)
w5[:, :, 2:4] = f16s(nc * nb, 1e-3).view(np.uint8).reshape(nc, nb, 2)
s5 = np.zeros((nr, nc), dtype=np.float32)
for r in range(nr):
    for c in range(nc):
        cpu.ggml_vec_dot_q5_K_q8_K(n, ptr(s5[r, c:]), 0, ptr(w5[c]), 0, ptr(xq[r]), 0, 1)
with open(os.path.join(out, f"q5k_case{seed}.bin"), "wb") as f:
    for a in (hdr, w5, xq, s5):
        f.write(a.tobytes())
