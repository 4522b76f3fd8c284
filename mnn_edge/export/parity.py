"""Parity of an exported artifact against the PyTorch module it came from (Polygraphy-style)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Tolerances, per output, for FP32 exports (issue: pose <= 1e-4, landmarks <= 0.05 px).
FP32_TOLERANCE = {"pose": 1e-4, "pose_proj": 1e-4, "landmarks": 0.05, "visibility": 1e-4, "heatmaps": 1e-5}


@dataclass(frozen=True)
class ParityResult:
    output: str
    max_abs: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs <= self.tolerance


def compare(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray],
            tolerance: dict[str, float]) -> list[ParityResult]:
    """Max absolute difference per shared output name."""
    results = []
    for name, ref in reference.items():
        if name not in candidate:
            raise KeyError(f"candidate is missing output '{name}'")
        got = candidate[name]
        if got.shape != ref.shape:
            raise ValueError(f"output '{name}': shape {got.shape} != reference {ref.shape}")
        diff = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64)))) if ref.size else 0.0
        results.append(ParityResult(name, diff, tolerance[name]))
    return results


def format_results(label: str, results: list[ParityResult]) -> str:
    parts = [f"{r.output} {r.max_abs:.2e} (<= {r.tolerance:g}) {'ok' if r.ok else 'FAIL'}" for r in results]
    return f"parity {label}: " + "; ".join(parts)
