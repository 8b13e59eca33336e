#!/usr/bin/env bash
# The whole device check on a lent, bare GPU machine (docs/gpu.md), from the repository root, with
# .gpu/bundle.tar.gz carried (scripts/gpu_bundle.py builds it here): set-up, then every part.
# Writes $OUT/setup.json, $OUT/gpu.json, $OUT/gpu_check.log and $OUT/parts.tar.gz (every part's log).
# Extra arguments go to benchmarks/gpu_check.py: a second call on the same warm machine with
# `--only PART,...` runs the parts the first left out, over the same record (kept in /tmp/gpu_check).
set -uo pipefail
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ ! -f /tmp/ae_gpu/setup.json ]; then  # written last, only by a complete set-up
  python3 scripts/gpu_setup.py .gpu/bundle.tar.gz --json "$OUT/setup.json" | tail -3 || exit 2
fi
. /tmp/ae_gpu/env.sh
cp /tmp/ae_gpu/setup.json "$OUT/setup.json"
python3 benchmarks/gpu_check.py --profile gpu --work /tmp/gpu_check --out "$OUT/gpu.json" \
  --setup "$OUT/setup.json" "$@" 2>&1 | tee "$OUT/gpu_check.log"
rc=${PIPESTATUS[0]}
tar -czf "$OUT/parts.tar.gz" -C /tmp/gpu_check parts driver.log 2>/dev/null
exit "$rc"
