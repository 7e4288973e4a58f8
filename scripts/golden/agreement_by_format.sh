#!/usr/bin/env bash
# Which weight formats give llama.cpp's logits bit for bit (developers; needs the llama.cpp peer).
#
#   scripts/golden/agreement_by_format.sh [TYPE ...]     # default: every type below
#
# For each type, SmolLM2 Q4_1 is requantized by llama-quantize (--allow-requantize), llama.cpp
# answers the 15 prompts of tests/data/llama/ on that file (scripts/golden/llama_smollm2.py:
# last-position logits, 128-token greedy continuations), and the ignored test
# `agreement_by_format` (ziglama-model/tests/agreement_by_format.rs) compares ours with them:
# per type, how many prompts' logits are bit-equal and how many continuations are equal. It
# fails if a type listed there as bit-equal is not.
#
# Files go to $ZIGLAMA_AGREEMENT_DIR (default: a temporary folder, removed afterwards; about
# 1.5 GB for every type). Needs $ZIGLAMA_PEER (default ~/.cache/ziglama-peer).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PEER=${ZIGLAMA_PEER:-$HOME/.cache/ziglama-peer}
PY=$PEER/venv/bin/python
QUANTIZE=$PEER/bin/llama-quantize
for f in "$PY" "$QUANTIZE"; do
  [[ -x $f ]] || { echo "error: $f not found; build the peer with /work/shared/tools/setup-peer.sh" >&2; exit 1; }
done

TYPES=("$@")
[[ ${#TYPES[@]} == 0 ]] && TYPES=(Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_M Q4_K_M Q5_K_M Q6_K IQ4_NL IQ4_XS F16 BF16)

SRC=$(python3 "$ROOT/scripts/fetch_models.py" smollm2)
if [[ -n ${ZIGLAMA_AGREEMENT_DIR:-} ]]; then
  WORK=$ZIGLAMA_AGREEMENT_DIR
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
fi

for t in "${TYPES[@]}"; do
  dst=$WORK/smollm2-$t.gguf
  if [[ ! -s $dst ]]; then
    echo "== llama-quantize $t" >&2
    "$QUANTIZE" --allow-requantize "$SRC" "$dst.tmp" "$t" >"$WORK/$t.log" 2>&1 ||
      { tail -20 "$WORK/$t.log" >&2; exit 1; }
    mv "$dst.tmp" "$dst"
  fi
  if [[ ! -s $WORK/golden-$t/cases.tsv ]]; then
    echo "== llama.cpp's answers on $t" >&2
    "$PY" "$ROOT/scripts/golden/llama_smollm2.py" "$dst" "$WORK/golden-$t" >/dev/null
  fi
done

cd "$ROOT"
ZIGLAMA_AGREEMENT_DIR=$WORK ZIGLAMA_AGREEMENT_TYPES=$(IFS=,; echo "${TYPES[*]}") \
  cargo test --release -p ziglama-model --test agreement_by_format -- --ignored --nocapture
