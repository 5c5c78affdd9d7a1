#!/usr/bin/env bash
# The GPU check (docs/gpu_check.md): scripts/gpu_check.py on CUDA, then the targeted pytest files with CUDA
# visible. Run from the folder that holds nextads_lib/, scripts/ and tests/ (CODE, default: this script's
# parent folder). Missing Python packages come as wheels in $WHEELS (default .whl beside CODE's parent), or as
# .tar.xz bundles there of wheels already unpacked (xz takes the wheels from 58 to 38 MiB, so av, decord and
# diffusers fit in one call), and plain package folders in $CODE/site (pyiqa, trimmed of its sample images);
# logs go to $OUT. TESTS (pytest paths or node ids) and TESTS_K (its -k expression) narrow the pytest run.
#
#   OUT=/tmp/out [SECTIONS=wan,hf,vq] [TESTS=... TESTS_K=...] bash scripts/gpu_check.sh
#   DEVICE=cpu ... bash scripts/gpu_check.sh      # the dry run of the same command here
set -u -o pipefail
CODE=$(cd "$(dirname "$0")/.." && pwd)
WHEELS=${WHEELS:-$CODE/../.whl}
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
cd "$CODE" || exit 1
for b in "$WHEELS"/*.tar.xz; do
  [ -e "$b" ] || continue
  mkdir -p /tmp/site && tar xJf "$b" -C /tmp/site || exit 1
done
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$WHEELS"/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$CODE/site:$CODE PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; } 2>&1 | tee "$OUT/nvidia_smi.txt"
t0=$(date +%s)
timeout "${CHECK_TIMEOUT:-240}" python3 scripts/gpu_check.py --device "${DEVICE:-cuda}" --out "$OUT" --sections "${SECTIONS:-wan,hf,vq}" 2>&1 \
  | grep -v "it/s]$" | tee "$OUT/gpu_check_stdout.log"
rc_check=$?
echo "gpu_check.py rc=$rc_check in $(( $(date +%s) - t0 )) s"
t0=$(date +%s)
# test_tiny_ti2v_per_slot... and test_tiny_i2v_first_last_frame narrate through Piper (piper-tts and its voice,
# ~110 MB, not carried); gpu_check.py measures the same renders with narration off.
TESTS=${TESTS:-tests/test_producer_wan.py tests/test_hf_backend.py tests/test_vbench.py}
TESTS_K=${TESTS_K:-(test_producer_wan and not ti2v_per_slot and not i2v_first_last) or test_hf_backend or networks}
# shellcheck disable=SC2086  # TESTS is a list of paths
NEXTADS_VQ_DEVICE=${DEVICE:-cuda} timeout "${TEST_TIMEOUT:-180}" python3 -m pytest -q -p no:cacheprovider -o addopts="" \
  $TESTS -k "$TESTS_K" \
  --junitxml="$OUT/pytest.xml" -rA 2>&1 | tail -40 | tee "$OUT/pytest.log"
rc_test=$?
echo "pytest rc=$rc_test in $(( $(date +%s) - t0 )) s"
exit $(( rc_check || rc_test ))
