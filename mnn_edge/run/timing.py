"""Per-stage latency of mnn-run, accumulated over the run in bounded memory with the project's
timing core (:class:`mnn_edge.bench.timing.StreamingStats`: a camera run of days stays flat), and
the smoothed FPS shown on the overlay."""

from __future__ import annotations

from mnn_edge.bench.timing import StreamingStats
from mnn_edge.frame import STAGES


class FpsMeter:
    """Frames per second from whole-loop frame times, smoothed exponentially so the number reads
    steadily on screen (about the last ``1 / alpha`` frames)."""

    def __init__(self, alpha: float = 0.1):
        self.alpha = alpha
        self.value: float | None = None

    def update(self, frame_seconds: float) -> float | None:
        if frame_seconds <= 0:
            return self.value
        fps = 1.0 / frame_seconds
        self.value = fps if self.value is None else self.alpha * fps + (1 - self.alpha) * self.value
        return self.value


class RunTiming:
    """Per-frame stage latencies (ms); a stage that did not run on a frame (the detector between
    detections, drawing when nothing is shown) is not counted for that frame."""

    def __init__(self) -> None:
        self.stages = {stage: StreamingStats() for stage in STAGES}
        self.frame = StreamingStats()

    def add_frame(self, latency_ms: dict[str, float], ran: set[str], total_ms: float) -> None:
        for stage in STAGES:
            if stage in ran:
                self.stages[stage].add(latency_ms[stage])
        self.frame.add(total_ms)

    def table(self) -> str:
        """A plain-text table: per stage frames counted, mean, p50, p90, p99, max in ms; then the whole
        frame, and its tail as p99 / p50 (a detector inline in the loop shows up there)."""
        rows = [f"{'stage':<12}{'frames':>8}{'mean ms':>10}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}"]
        for stage, stats in self.stages.items():
            if not stats.n:
                rows.append(f"{stage:<12}{0:>8}{'-':>10}{'-':>9}{'-':>9}{'-':>9}{'-':>9}")
                continue
            s = stats.summary()
            rows.append(f"{stage:<12}{s.n:>8}{s.mean:>10.2f}{s.p50:>9.2f}{s.p90:>9.2f}{s.p99:>9.2f}{s.max:>9.2f}")
        if self.frame.n:
            s = self.frame.summary()
            fps = 1000.0 / s.mean if s.mean > 0 else float("inf")
            rows.append(f"{'whole frame':<12}{s.n:>8}{s.mean:>10.2f}{s.p50:>9.2f}{s.p90:>9.2f}{s.p99:>9.2f}"
                        f"{s.max:>9.2f}   ({fps:.1f} FPS)")
            if s.p50 > 0:
                rows.append(f"frame-time tail: p99 = {s.p99 / s.p50:.2f} x p50")
        return "\n".join(rows)

    def to_dict(self) -> dict:
        out = {stage: stats.summary().to_dict() for stage, stats in self.stages.items() if stats.n}
        if self.frame.n:
            out["frame"] = self.frame.summary().to_dict()
        return out
