#!/usr/bin/env python3
"""Verify the TensorRT path on this machine: build, check against ONNX Runtime, time, report.

Thin entry point; the code is mnn_edge/engine/gpu_check.py. See docs/TENSORRT.md.

    bench/gpu_check --checkpoint mnn_edge/assets/mnn_starter.pt      # export + build + check + time
    bench/gpu_check --export export/ --recipe engines/orin-nano.toml  # artifacts already exported
"""

from mnn_edge.engine.gpu_check import entry

if __name__ == "__main__":
    raise SystemExit(entry())
