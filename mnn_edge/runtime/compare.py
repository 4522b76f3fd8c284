"""The one comparison of two runs' outputs on the same inputs, and the one tolerance table.

Used by export parity (ONNX vs PyTorch), quantization drift (variant vs FP32), the INT8 sensitivity
search and ``bench/gpu_check`` (engine vs ONNX Runtime). Every metric is in the unit a user reads:

- ``pose_deg_mean`` / ``pose_deg_max``: |difference| of yaw, pitch and roll, degrees;
- ``landmark_px_mean`` / ``landmark_px_max``: Euclidean landmark distance, crop pixels;
- ``landmark_nme``: mean per-face landmark distance over the reference's outer-eye-corner distance
  (the landmark scheme's; the reference landmark box size when the scheme has no eye corners);
- ``max_abs``: the largest elementwise difference of each output (bit-level parity).

The reference's names, shapes and dtypes are checked first and a candidate with missing outputs,
other shapes or non-finite values is an error, not a large number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from mnn_edge.artifact import Precision, scheme_for
from mnn_edge.errors import MnnEdgeError

# Export parity, FP32 ONNX vs the PyTorch module, largest elementwise difference per output; export
# parity uses these as floors under a bound that follows float32 arithmetic on the host
# (:func:`float64_parity`).
PARITY_MAX_ABS = {"pose": 1e-4, "pose_proj": 1e-4, "landmarks": 0.05, "visibility": 1e-4, "heatmaps": 1e-5}
# An export may stray from exact (float64) arithmetic this many times as far as the float32 PyTorch
# module itself does on the same inputs. Float32 error depends on the CPU's summation order (the
# soft-argmax sums 65,536 terms per landmark: 0.046 px between ONNX Runtime and PyTorch on an x86
# host, against a fixed 0.05 px), so a bound measured on the host holds on another CPU (Jetson ARM).
FLOAT32_SLACK = 4.0


@dataclass(frozen=True)
class Tolerance:
    pose_deg: float  # mean |d angle|, degrees
    landmark_px: float  # mean landmark distance, crop pixels


# A lower precision against the FP32 reference on the same inputs (gpu_check: engine vs ONNX
# Runtime FP32 on synthetic faces). INT8's are the bounds a deployment can live with; FP32's
# allow for kernel differences between backends.
PRECISION_TOLERANCE = {Precision.FP32: Tolerance(0.05, 0.1), Precision.FP16: Tolerance(0.25, 0.5),
                       Precision.INT8: Tolerance(1.0, 2.0)}


# A quantized artifact this far from its FP32 model on the drift check's noise inputs is broken
# (ranges that clip everything, a wrong table), not imprecise: INT8 of the starter drifts ~0.3 deg.
DRIFT_LIMIT = Tolerance(pose_deg=5.0, landmark_px=8.0)


@dataclass(frozen=True)
class OutputDiff:
    max_abs: dict[str, float]  # output -> largest elementwise |difference|
    pose_deg_mean: float
    pose_deg_max: float
    landmark_px_mean: float | None = None  # None: no landmarks output
    landmark_px_max: float | None = None
    landmark_nme: float | None = None

    def within(self, tol: Tolerance) -> bool:
        ok = self.pose_deg_mean <= tol.pose_deg
        return ok and (self.landmark_px_mean is None or self.landmark_px_mean <= tol.landmark_px)

    def parity_failures(self, max_abs: Mapping[str, float] = PARITY_MAX_ABS) -> list[str]:
        """Outputs whose largest difference exceeds ``max_abs``."""
        return [k for k, v in self.max_abs.items() if v > max_abs[k]]


def check_outputs(reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray], what: str = "") -> None:
    """Same names, shapes and float32 as the reference, all finite; else one clear error."""
    label = f"{what}: " if what else ""
    for name, ref in reference.items():
        got = candidate.get(name)
        if got is None or got.shape != ref.shape or got.dtype != ref.dtype:
            found = None if got is None else (got.shape, str(got.dtype))
            raise MnnEdgeError(f"{label}output '{name}' is {found}, the reference gives {ref.shape} {ref.dtype}")
        if not np.all(np.isfinite(got)):
            raise MnnEdgeError(f"{label}output '{name}' has non-finite values")


def compare_outputs(reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray],
                    what: str = "") -> OutputDiff:
    check_outputs(reference, candidate, what)
    ref = {k: np.asarray(v, np.float64) for k, v in reference.items()}
    got = {k: np.asarray(candidate[k], np.float64) for k in reference}
    max_abs = {k: float(np.max(np.abs(got[k] - ref[k]))) if ref[k].size else 0.0 for k in ref}
    d_ang = np.abs(got["pose"][:, :3] - ref["pose"][:, :3])
    diff = OutputDiff(max_abs, float(d_ang.mean()), float(d_ang.max()))
    if "landmarks" not in ref:
        return diff
    lm_ref, lm = ref["landmarks"][..., :2], got["landmarks"][..., :2]
    dist = np.linalg.norm(lm - lm_ref, axis=-1)  # (N, L)
    eyes = scheme_for(lm_ref.shape[1]).outer_eye_corners
    if eyes is not None:
        norm = np.linalg.norm(lm_ref[:, eyes[0]] - lm_ref[:, eyes[1]], axis=-1)
    else:
        span = lm_ref.max(axis=1) - lm_ref.min(axis=1)
        norm = np.sqrt(span[:, 0] * span[:, 1])
    nme = float(np.mean(dist.mean(axis=1) / np.maximum(norm, 1e-6)))
    return replace(diff, landmark_px_mean=float(dist.mean()), landmark_px_max=float(dist.max()), landmark_nme=nme)


@dataclass(frozen=True)
class Float64Parity:
    """Largest |difference| per output of a candidate and of float32 PyTorch from a float64 reference."""

    error: dict[str, float]  # candidate vs float64
    float32_error: dict[str, float]  # float32 PyTorch vs float64: what float32 arithmetic achieves here
    bound: dict[str, float]

    def failures(self) -> list[str]:
        return [k for k, v in self.error.items() if v > self.bound[k]]

    def line(self, label: str) -> str:
        parts = [f"{k} {v:.2e} from float64 (float32 PyTorch {self.float32_error[k]:.2e}, bound "
                 f"{self.bound[k]:.2e}) {'ok' if v <= self.bound[k] else 'FAIL'}" for k, v in self.error.items()]
        return f"parity {label}: " + "; ".join(parts)


def float64_parity(ref32: Mapping[str, np.ndarray], ref64: Mapping[str, np.ndarray],
                   candidate: Mapping[str, np.ndarray], what: str = "") -> Float64Parity:
    """Export parity with a bound that follows the host's float32 arithmetic: per output,
    max(:data:`PARITY_MAX_ABS`, :data:`FLOAT32_SLACK` x float32 PyTorch's own error against float64)."""
    check_outputs(ref32, candidate, what)

    def largest(a: Mapping[str, np.ndarray]) -> dict[str, float]:
        return {k: float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(ref64[k], np.float64))))
                if np.asarray(ref64[k]).size else 0.0 for k in ref32}

    error, f32 = largest(candidate), largest(ref32)
    bound = {k: max(PARITY_MAX_ABS[k], FLOAT32_SLACK * f32[k]) for k in ref32}
    return Float64Parity(error=error, float32_error=f32, bound=bound)


def format_parity(label: str, diff: OutputDiff, max_abs: Mapping[str, float] = PARITY_MAX_ABS) -> str:
    parts = [f"{k} {v:.2e} (<= {max_abs[k]:g}) {'ok' if v <= max_abs[k] else 'FAIL'}" for k, v in diff.max_abs.items()]
    return f"parity {label}: " + "; ".join(parts)
