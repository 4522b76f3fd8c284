#!/usr/bin/env bash
# The committed CPU report in one command, from a checkpoint (default: the shipped starter model):
#   export + quantize (FP16, INT8 CPU and TensorRT flavours) -> held-out synthetic faces ->
#   accuracy + interleaved latency (bench/quantization.py, table written into bench/README.md) ->
#   bench/report/REPORT.md, tradeoff.png, machine.json, results.json (mnn-report).
# Usage: bench/make_cpu_report.sh [CHECKPOINT] [extra bench/quantization.py flags]
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=${1:-mnn_edge/assets/mnn_starter.pt}
shift || true
python bench/quantization.py --checkpoint "$CKPT" --batch 1,4 --update-readme "$@"
# the inputs are committed beside the report: `mnn-report --results bench/report/results.json` remakes it
mkdir -p bench/report
cp bench/results/quantization.json bench/report/results.json
mnn-report --results bench/report/results.json --out bench/report --force
