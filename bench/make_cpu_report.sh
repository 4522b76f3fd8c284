#!/usr/bin/env bash
# The committed CPU report in one command, from a checkpoint (default: the shipped starter model):
#   1. bench/quantization.py: export + quantize (FP16, INT8 CPU and TensorRT flavours; INT8
#      calibrated on 128 real YTF frames of the training people), accuracy on real faces -- the
#      540 frames of the held-out people of data/real/ytf_keypoints (their annotated
#      landmarks; pose vs the FSA-Net teacher's labels, made here if missing) -- and latency of
#      all eight artifacts interleaved; its table and targets go into bench/README.md,
#   2. mnn-bench --breakdown: end-to-end stages on real frames (the first 32 YTF JPEG files),
#   3. mnn-report: bench/report/REPORT.md, tradeoff.png, machine.json, from the copied results (and the
#      committed tracking benchmark, bench/report/tracking.json).
# Usage: bench/make_cpu_report.sh [CHECKPOINT] [extra bench/quantization.py flags]
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=${1:-mnn_edge/assets/mnn_starter.pt}
shift || true
WORK=bench/results/quantization
REAL=data/real/ytf_keypoints/train
LABELS=runs/data/ytf_teacher.jsonl
[ -f "$LABELS" ] || mnn-data pseudo-label --teacher models/teachers/fsanet --data "$REAL" --out "$LABELS" --no-progress
python bench/quantization.py --checkpoint "$CKPT" --work "$WORK" --batch 1,4 --update-readme \
  --eval-data "$REAL" --eval-format keypoints-csv --eval-subset heldout --eval-pose-labels "$LABELS" \
  --calib-data "$REAL" --calib-format keypoints-csv --calib-subset train --calib-limit 128 "$@"
mnn-bench "$WORK"/export/pose.onnx "$WORK"/export/pose.int8.onnx "$WORK"/export/mnn.onnx "$WORK"/export/mnn.int8.onnx \
  --breakdown --frames "$REAL" --batch 1 --runs 20 --warmup 3 --json bench/results/breakdown.json --force --no-progress
# the inputs are committed beside the report: `mnn-report --results ... --bench ...` remakes it
mkdir -p bench/report
cp bench/results/quantization.json bench/report/results.json
cp bench/results/breakdown.json bench/report/breakdown.json
# mnn-run on moving faces is its own, longer benchmark (~25 min): its committed results are added when present
#   python bench/tracking.py --engine export/pose.int8.onnx export/mnn.int8.onnx --json bench/report/tracking.json
TRACKING=()
[ -f bench/report/tracking.json ] && TRACKING=(--tracking bench/report/tracking.json)
mnn-report --results bench/report/results.json --bench bench/report/breakdown.json "${TRACKING[@]}" --out bench/report --force
