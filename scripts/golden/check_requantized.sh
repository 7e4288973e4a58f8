#!/usr/bin/env bash
# Full check of ziglama's dequantization against llama.cpp on SmolLM2 requantized to every
# type llama-quantize makes (run by developers; CI has no llama.cpp and runs the compact
# check, tests/dequantize_requantized.rs, on the committed rows instead).
#
#   scripts/golden/check_requantized.sh            # regenerate, compare with the committed data
#                                                 # (ggml's hashes) and with ziglama's
#   scripts/golden/check_requantized.sh --update   # regenerate the committed data
#
# Needs the llama.cpp peer (/work/shared/tools/setup-peer.sh; $ZIGLAMA_PEER, default
# ~/.cache/ziglama-peer) and about 2.5 GB of disk under $ZIGLAMA_REQUANTIZED_DIR (default: a
# temporary folder, removed afterwards; set it to keep the files between runs).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PEER=${ZIGLAMA_PEER:-$HOME/.cache/ziglama-peer}
PY=$PEER/venv/bin/python
QUANTIZE=$PEER/bin/llama-quantize
DATA=$ROOT/tests/data/requantized

# label : llama-quantize arguments (before SRC DST TYPE) : TYPE
LABELS=(
  "Q4_0::Q4_0" "Q4_1::Q4_1" "Q5_0::Q5_0" "Q5_1::Q5_1" "Q8_0::Q8_0"
  "Q2_K::Q2_K" "Q3_K_M::Q3_K_M" "Q4_K_M::Q4_K_M" "Q5_K_M::Q5_K_M" "Q6_K::Q6_K"
  "IQ4_NL::IQ4_NL" "IQ4_XS::IQ4_XS" "F16::F16" "BF16::BF16" "F32::F32"
  # SmolLM2's rows of 576 are no multiple of 256, so the plain Q2_K mix holds no Q2_K
  # tensor at all; --pure makes every ffn_down (rows of 1536) Q2_K.
  "Q2_K-pure:--pure:Q2_K"
)

update=0
if [[ ${1:-} == --update ]]; then update=1; fi

for f in "$PY" "$QUANTIZE"; do
  [[ -x $f ]] || { echo "error: $f not found; build the peer with /work/shared/tools/setup-peer.sh" >&2; exit 1; }
done

SRC=$(python3 "$ROOT/scripts/fetch_models.py" smollm2)

if [[ -n ${ZIGLAMA_REQUANTIZED_DIR:-} ]]; then
  WORK=$ZIGLAMA_REQUANTIZED_DIR
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
fi
OUT=$WORK/golden
[[ $update == 1 ]] && OUT=$DATA
mkdir -p "$OUT"

for entry in "${LABELS[@]}"; do
  IFS=: read -r label opts type <<<"$entry"
  dst=$WORK/smollm2-$label.gguf
  if [[ ! -s $dst ]]; then
    echo "== llama-quantize $opts $type -> $dst" >&2
    # shellcheck disable=SC2086
    "$QUANTIZE" --allow-requantize $opts "$SRC" "$dst.tmp" "$type" 2 >"$WORK/$label.log" 2>&1 ||
      { tail -20 "$WORK/$label.log" >&2; exit 1; }
    mv "$dst.tmp" "$dst"
  fi
  "$PY" "$ROOT/scripts/golden/requantized_rows.py" "$dst" "$OUT" "$label"
done

if [[ $update == 1 ]]; then
  echo "updated $DATA" >&2
  exit 0
fi

status=0
for entry in "${LABELS[@]}"; do
  IFS=: read -r label _ _ <<<"$entry"
  for kind in hashes rows; do
    if ! diff -q <(grep -v '^#' "$DATA/$label.$kind.tsv") <(grep -v '^#' "$OUT/$label.$kind.tsv") >/dev/null; then
      echo "DIFFERS: llama.cpp's $label.$kind.tsv is not the committed one (llama.cpp changed?)" >&2
      status=1
    fi
  done
done
[[ $status == 0 ]] && echo "llama.cpp reproduces the committed data for all ${#LABELS[@]} files" >&2

echo "== ziglama: every tensor of every requantized file against ggml's hashes" >&2
cd "$ROOT"
ZIGLAMA_REQUANTIZED_DIR=$WORK cargo test --test dequantize_requantized -- --ignored --nocapture || status=1
exit $status
