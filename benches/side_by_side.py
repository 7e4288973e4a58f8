#!/usr/bin/env python3
"""ziglama's `bench` example against llama.cpp's `llama-bench`, alternately, in one run.

    python3 benches/side_by_side.py                       # every model, 1 and 2 threads
    python3 benches/side_by_side.py --models smollm2 -t 2 -p 512 -n 128 -r 3 --rounds 2
    python3 benches/side_by_side.py --models /path/to/any.gguf --json

For every model and thread count, and for each of `--rounds` rounds, it runs our bench and
llama-bench on the same file with the same -p/-n/-t/-r, one after the other (alternating
which goes first from round to round, so a change in the machine's load hits both sides
alike), and prints one markdown table: tokens per second of pp and tg on each side (mean
and standard deviation over the -r repetitions; with several rounds, the per-round means
are averaged), the ratio ours / llama.cpp, load time and peak resident memory. The load
average before and after the run and the kernel set our bench used are printed too.

Models are named by label or path:

    smollm2               models/SmolLM2-135M-Instruct.Q4_1.gguf (scripts/fetch_models.py)
    gemma3                models/gemma-3-270m-q4_k_m.gguf
    smollm2-Q4_0, smollm2-Q8_0, smollm2-Q4_K_M, ...   SmolLM2 requantized by llama-quantize
                          --allow-requantize, kept in $ZIGLAMA_REQUANTIZED_DIR (the folder
                          scripts/golden/check_requantized.sh uses when it is set; default
                          <models>/requantized), made on first use when the peer is installed

How each side is measured:
- ours: `bench --json` (examples/bench.rs), built with `cargo build --release --example
  bench` unless --ours names a binary; load time is the bench's own (file open to ready);
- llama.cpp: `llama-bench -o json` from the peer ($ZIGLAMA_PEER, default
  ~/.cache/ziglama-peer, built by shared/tools/setup-peer.sh); its load time (which
  llama-bench does not report) is measured with the peer's Python bindings as the time of
  llama_model_load_from_file + llama_init_from_model with the same context size and threads;
- peak resident memory of both: the child process's maximum RSS as the kernel reports it
  to wait4() (the same measure for both sides).

Without the peer the script runs our side only. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER = Path(os.environ.get("ZIGLAMA_PEER", Path.home() / ".cache" / "ziglama-peer"))
LLAMA_BENCH = PEER / "bin" / "llama-bench"
LLAMA_QUANTIZE = PEER / "bin" / "llama-quantize"
PEER_PY = PEER / "venv" / "bin" / "python"

DEFAULT_MODELS = ["smollm2", "gemma3", "smollm2-Q4_0", "smollm2-Q8_0", "smollm2-Q4_K_M"]

LOAD_SNIPPET = r"""
import sys, time, llama_cpp as L
QUIET = L.llama_log_callback(lambda level, text, data: None)
L.llama_log_set(QUIET, None)
L.llama_backend_init()
path, n_ctx, threads = sys.argv[1].encode(), int(sys.argv[2]), int(sys.argv[3])
t = time.perf_counter()
m = L.llama_model_load_from_file(path, L.llama_model_default_params())
cp = L.llama_context_default_params()
cp.n_ctx, cp.n_threads, cp.n_threads_batch = n_ctx, threads, threads
ctx = L.llama_init_from_model(m, cp)
dt = time.perf_counter() - t
assert m and ctx
print(dt)
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def models_dir() -> Path:
    return Path(os.environ.get("ZIGLAMA_MODELS", ROOT / "models"))


def requantized_dir() -> Path:
    d = os.environ.get("ZIGLAMA_REQUANTIZED_DIR")
    return Path(d) if d else models_dir() / "requantized"


def fetch(name: str) -> Path:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fetch_models.py"), name],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    return Path(out[-1])


def resolve_model(label: str) -> Path:
    """A model label or path -> the GGUF file, fetched or requantized when missing."""
    if label in ("smollm2", "gemma3"):
        return fetch(label)
    if label.startswith("smollm2-"):
        qtype = label.split("-", 1)[1]
        dst = requantized_dir() / f"smollm2-{qtype}.gguf"
        if not dst.exists():
            if not LLAMA_QUANTIZE.exists():
                raise SystemExit(f"{dst} is missing and there is no {LLAMA_QUANTIZE} to make it")
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_suffix(".gguf.tmp")
            log(f"== llama-quantize --allow-requantize {qtype} -> {dst}")
            subprocess.run(
                [str(LLAMA_QUANTIZE), "--allow-requantize", str(fetch("smollm2")), str(tmp), qtype, "2"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            tmp.rename(dst)
        return dst
    p = Path(label)
    if not p.exists():
        raise SystemExit(f"no such model: {label}")
    return p


def run_child(cmd: list[str], env: dict | None = None) -> tuple[str, float]:
    """Runs `cmd` to completion; returns (stdout, peak resident memory in MiB)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, rusage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    p.stdout.close()
    p.stderr.close()
    if p.returncode != 0:
        sys.stderr.write(err.decode(errors="replace"))
        raise RuntimeError(f"{Path(cmd[0]).name} failed with exit code {p.returncode}")
    return out.decode(), rusage.ru_maxrss / 1024.0


def ours(binary: Path, model: Path, a, threads: int) -> dict:
    out, rss = run_child([str(binary), "--model", str(model), "-p", str(a.p), "-n", str(a.n),
                          "-t", str(threads), "-r", str(a.r), "--json"])
    j = json.loads(out.strip().splitlines()[-1])
    return {"pp": j["pp_tok_s"], "pp_std": j["pp_std"], "tg": j["tg_tok_s"], "tg_std": j["tg_std"],
            "load_s": j["load_s"], "rss": rss, "kernels": j.get("kernels", "?")}


def llama(model: Path, a, threads: int) -> dict:
    out, rss = run_child([str(LLAMA_BENCH), "-m", str(model), "-p", str(a.p), "-n", str(a.n),
                          "-t", str(threads), "-r", str(a.r), "-o", "json"])
    r = {"pp": 0.0, "pp_std": 0.0, "tg": 0.0, "tg_std": 0.0, "rss": rss}
    for row in json.loads(out):
        key = "pp" if row["n_gen"] == 0 else "tg"
        r[key], r[key + "_std"] = row["avg_ts"], row["stddev_ts"]
    load, _ = run_child([str(PEER_PY), "-c", LOAD_SNIPPET, str(model), str(a.p + a.n), str(threads)])
    r["load_s"] = float(load.strip().splitlines()[-1])
    return r


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def merge(rounds: list[dict]) -> dict:
    """Averages per-round figures (standard deviations too: they describe one round's spread)."""
    out = {}
    for k, v in rounds[0].items():
        out[k] = mean([r[k] for r in rounds]) if isinstance(v, (int, float)) else v
    if len(rounds) > 1:
        out["pp_rounds"] = [r["pp"] for r in rounds]
        out["tg_rounds"] = [r["tg"] for r in rounds]
    return out


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated labels or paths")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-t", default="1,2", help="comma-separated thread counts")
    ap.add_argument("-r", type=int, default=3, help="repetitions inside each bench run")
    ap.add_argument("--rounds", type=int, default=1, help="alternated runs of each side")
    ap.add_argument("--ours", type=Path, help="our bench binary (default: build it with cargo)")
    ap.add_argument("--no-peer", action="store_true", help="run our side only")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON too")
    a = ap.parse_args()

    binary = a.ours
    if binary is None:
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        if not target.is_absolute():
            target = ROOT / target
        log("== cargo build --release --example bench")
        subprocess.run(["cargo", "build", "--release", "--example", "bench"], cwd=ROOT, check=True)
        binary = target / "release" / "examples" / "bench"
    peer = not a.no_peer and LLAMA_BENCH.exists()
    if not peer and not a.no_peer:
        log(f"no llama-bench at {LLAMA_BENCH}: running our side only")
    threads = [int(t) for t in a.t.split(",") if t]

    load_before = loadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for label in a.models.split(","):
        model = resolve_model(label)
        for t in threads:
            o_rounds, l_rounds = [], []
            for rnd in range(a.rounds):
                order = ["ours", "llama"] if rnd % 2 == 0 else ["llama", "ours"]
                for side in order:
                    try:
                        if side == "ours":
                            log(f"== ours   {model.name} t={t} round {rnd + 1}")
                            o_rounds.append(ours(binary, model, a, t))
                        elif peer:
                            log(f"== llama  {model.name} t={t} round {rnd + 1}")
                            l_rounds.append(llama(model, a, t))
                    except RuntimeError as e:
                        log(f"   {side} failed: {e}")
            if not o_rounds:
                o_rounds = [{"pp": 0.0, "pp_std": 0.0, "tg": 0.0, "tg_std": 0.0, "load_s": 0.0,
                             "rss": 0.0, "kernels": "failed"}]
            rows.append({"model": model.name, "label": label, "threads": t,
                         "ours": merge(o_rounds), "llama": merge(l_rounds) if l_rounds else None})
    load_after = loadavg()

    kernels = next((r["ours"]["kernels"] for r in rows if r["ours"]["kernels"] != "failed"), "?")
    print(f"\n{started}, load average before {load_before}, after {load_after}; "
          f"ours: kernels {kernels}; -p {a.p} -n {a.n} -r {a.r}, {a.rounds} round(s)\n")
    print("| model | threads | test | ours t/s | llama.cpp t/s | ratio |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        o, l = row["ours"], row["llama"]
        for test, n in (("pp", a.p), ("tg", a.n)):
            if n == 0:
                continue
            lt = f"{l[test]:.1f} ± {l[test + '_std']:.1f}" if l else "-"
            print(f"| {row['label']} | {row['threads']} | {test}{n} | {o[test]:.1f} ± {o[test + '_std']:.1f} "
                  f"| {lt} | {ratio(o[test], l[test]) if l else '-'} |")
    print("\n| model | threads | load s ours | load s llama.cpp | ratio | peak RSS MiB ours | llama.cpp | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        o, l = row["ours"], row["llama"]
        if l:
            print(f"| {row['label']} | {row['threads']} | {o['load_s']:.3f} | {l['load_s']:.3f} | "
                  f"{ratio(o['load_s'], l['load_s'])} | {o['rss']:.0f} | {l['rss']:.0f} | {ratio(o['rss'], l['rss'])} |")
        else:
            print(f"| {row['label']} | {row['threads']} | {o['load_s']:.3f} | - | - | {o['rss']:.0f} | - | - |")
    if a.json:
        print(json.dumps({"started": started, "load_before": load_before, "load_after": load_after,
                          "p": a.p, "n": a.n, "r": a.r, "rounds": a.rounds, "rows": rows}))


if __name__ == "__main__":
    if shutil.which("cargo") is None and "--ours" not in sys.argv:
        log("warning: cargo not found; pass --ours BINARY")
    main()
