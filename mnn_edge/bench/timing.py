"""The one timing core of mnn-edge: warm-up, interleaved repetitions, percentiles, throughput.

Everything in the project that times something calls this module (``mnn-bench``,
``bench/quantization.py``, ``bench/gpu_check``), so every number is measured the same way.

Why interleaved: on a shared, noisy machine (2 cores, other jobs) a slow minute hurts whichever
artifact happens to run during it. Running the cases round by round — A, B, C, then B, C, A, ...
(the start rotates so no case always runs right after another) — spreads the noise over all of
them, and ratios measured side by side stay meaningful even when absolute times drift.

Percentiles use numpy's default (linear interpolation between order statistics, "type 7"), so a
reader can reproduce every figure from the raw samples we store.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from mnn_edge.errors import MnnEdgeError

# perf_counter is monotonic and has the finest resolution Python offers on every platform.
Clock = Callable[[], float]
DEFAULT_CLOCK: Clock = time.perf_counter


@dataclass(frozen=True)
class TimingConfig:
    """How long to measure. Give ``runs`` (a count per case) or ``seconds`` (a wall budget for all)."""

    warmup: int = 10  # untimed calls per case before the first timed round (allocators, caches, JIT)
    runs: int | None = 50  # timed calls per case; ignored when ``seconds`` is set
    seconds: float | None = None  # wall-clock budget for all timed rounds together
    min_runs: int = 5  # with ``seconds``: at least this many timed calls per case, however slow
    max_runs: int = 100_000  # with ``seconds``: stop here even if the budget is not spent

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise MnnEdgeError(f"warm-up must be >= 0, got {self.warmup}")
        if self.seconds is None and (self.runs is None or self.runs < 1):
            raise MnnEdgeError(f"runs must be >= 1, got {self.runs}")
        if self.seconds is not None and not self.seconds > 0:
            raise MnnEdgeError(f"seconds must be > 0, got {self.seconds}")
        if self.min_runs < 1 or self.max_runs < self.min_runs:
            raise MnnEdgeError(f"need 1 <= min_runs <= max_runs, got {self.min_runs}, {self.max_runs}")


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one case's timed calls, in milliseconds."""

    n: int
    mean: float
    std: float
    p50: float
    p90: float
    p99: float
    min: float
    max: float

    def to_dict(self) -> dict[str, float | int]:
        return {"n": self.n, "mean": self.mean, "std": self.std, "p50": self.p50, "p90": self.p90,
                "p99": self.p99, "min": self.min, "max": self.max}

    @classmethod
    def from_dict(cls, d: dict) -> LatencyStats:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


def summarize(samples_ms: Sequence[float]) -> LatencyStats:
    """Mean, population std, p50/p90/p99 (linear interpolation), min and max of ``samples_ms``."""
    x = np.asarray(samples_ms, dtype=np.float64)
    if x.size == 0:
        raise MnnEdgeError("no timed samples to summarise")
    if not np.all(np.isfinite(x)):
        raise MnnEdgeError("timed samples contain NaN or infinity")
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return LatencyStats(n=int(x.size), mean=float(x.mean()), std=float(x.std()), p50=float(p50),
                        p90=float(p90), p99=float(p99), min=float(x.min()), max=float(x.max()))


class StreamingStats:
    """Latency statistics of an endless stream in bounded memory (a camera ``mnn-run`` for days).

    Count, mean, std, min and max are exact; percentiles come from a uniform reservoir of at
    most ``capacity`` samples (Vitter's algorithm R, seeded, so a run is reproducible), exact
    while fewer samples than that have arrived.
    """

    def __init__(self, capacity: int = 4096, seed: int = 0):
        self.capacity = capacity
        self.n = 0
        self._sum = 0.0
        self._sum_sq = 0.0
        self._min = math.inf
        self._max = -math.inf
        self._reservoir = np.empty(capacity, np.float64)
        self._rng = np.random.default_rng(seed)

    def add(self, ms: float) -> None:
        ms = float(ms)
        if self.n < self.capacity:
            self._reservoir[self.n] = ms
        else:
            j = int(self._rng.integers(0, self.n + 1))
            if j < self.capacity:
                self._reservoir[j] = ms
        self.n += 1
        self._sum += ms
        self._sum_sq += ms * ms
        self._min, self._max = min(self._min, ms), max(self._max, ms)

    def summary(self) -> LatencyStats:
        if self.n == 0:
            raise MnnEdgeError("no timed samples to summarise")
        kept = self._reservoir[: min(self.n, self.capacity)]
        p50, p90, p99 = np.percentile(kept, [50, 90, 99])
        mean = self._sum / self.n
        return LatencyStats(n=self.n, mean=mean, std=math.sqrt(max(self._sum_sq / self.n - mean * mean, 0.0)),
                            p50=float(p50), p90=float(p90), p99=float(p99), min=self._min, max=self._max)


def throughput(stats: LatencyStats, batch: int) -> float:
    """Images per second at the mean latency: ``batch`` images every ``stats.mean`` ms."""
    return batch * 1000.0 / stats.mean if stats.mean > 0 else math.inf


@dataclass(frozen=True)
class Case:
    """One thing to time: a zero-argument callable (inputs bound in advance), and its batch size."""

    name: str
    fn: Callable[[], object]
    batch: int = 1


@dataclass(frozen=True)
class CaseTiming:
    name: str
    batch: int
    samples_ms: tuple[float, ...]  # in the order they were measured
    stats: LatencyStats

    @property
    def throughput(self) -> float:
        return throughput(self.stats, self.batch)


def round_order(n_cases: int, round_index: int) -> list[int]:
    """Case indices for one round: 0..n-1 rotated by the round number (round 1 of 3: 1, 2, 0)."""
    start = round_index % n_cases if n_cases else 0
    return [(start + i) % n_cases for i in range(n_cases)]


def _elapsed_ms(fn: Callable[[], object], clock: Clock) -> float:
    t0 = clock()
    fn()
    return (clock() - t0) * 1000.0


def time_cases(cases: Sequence[Case], cfg: TimingConfig = TimingConfig(), clock: Clock = DEFAULT_CLOCK,
               progress: bool = False) -> list[CaseTiming]:
    """Warm each case up, then time them interleaved round by round; one result per case, in input order.

    With ``cfg.runs`` every case gets exactly that many timed calls. With ``cfg.seconds`` rounds
    continue until the budget is spent (and every case has ``min_runs``), capped at ``max_runs``.
    ``clock`` returns seconds; tests pass a fake one to make timings known.
    """
    if not cases:
        raise MnnEdgeError("nothing to time")
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise MnnEdgeError(f"case names must be unique, got {names}")
    for r in range(cfg.warmup):
        for i in round_order(len(cases), r):
            cases[i].fn()
    samples: list[list[float]] = [[] for _ in cases]
    bar = _progress_bar(cfg, len(cases), progress)
    start = clock()
    r = 0
    while _more_rounds(cfg, r, clock() - start):
        for i in round_order(len(cases), r):
            samples[i].append(_elapsed_ms(cases[i].fn, clock))
        r += 1
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return [CaseTiming(c.name, c.batch, tuple(s), summarize(s)) for c, s in zip(cases, samples)]


def time_one(fn: Callable[[], object], cfg: TimingConfig = TimingConfig(), batch: int = 1,
             clock: Clock = DEFAULT_CLOCK) -> CaseTiming:
    """Time a single callable (same warm-up and statistics as :func:`time_cases`)."""
    return time_cases([Case("case", fn, batch)], cfg, clock)[0]


def _more_rounds(cfg: TimingConfig, done: int, elapsed_s: float) -> bool:
    if cfg.seconds is None:
        return done < cfg.runs
    if done < cfg.min_runs:
        return True
    return done < cfg.max_runs and elapsed_s < cfg.seconds


def _progress_bar(cfg: TimingConfig, n_cases: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    total = cfg.runs if cfg.seconds is None else None
    return tqdm(total=total, desc=f"timing {n_cases} case(s)", unit="round", leave=False)


@dataclass
class StageTimer:
    """Per-stage wall times over repeated runs (preprocess / h2d / infer / d2h / postprocess).

    ``with timer.stage("infer"): ...`` records one sample; a backend that measures a stage itself
    (e.g. with CUDA events) hands it over with :meth:`add`.
    """

    clock: Clock = DEFAULT_CLOCK
    samples_ms: dict[str, list[float]] = field(default_factory=dict)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = self.clock()
        try:
            yield
        finally:
            self.add(name, (self.clock() - t0) * 1000.0)

    def add(self, name: str, ms: float) -> None:
        self.samples_ms.setdefault(name, []).append(float(ms))

    def summary(self) -> dict[str, LatencyStats]:
        return {name: summarize(s) for name, s in self.samples_ms.items()}
