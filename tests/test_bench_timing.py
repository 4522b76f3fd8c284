"""The timing core: percentile maths on known timings, interleaving order, run counts, stage timer."""

from __future__ import annotations

import numpy as np
import pytest

from mnn_edge.bench.timing import (
    Case,
    StageTimer,
    TimingConfig,
    round_order,
    summarize,
    throughput,
    time_cases,
    time_one,
)
from mnn_edge.errors import MnnEdgeError


class FakeClock:
    """A clock that advances only when a fake case 'runs' for its known duration."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def case(self, log: list[str], name: str, durations_ms: list[float]):
        it = iter(durations_ms)

        def fn() -> None:
            log.append(name)
            self.now += next(it) / 1000.0

        return fn


def test_percentiles_on_known_timings() -> None:
    s = summarize(list(range(1, 101)))  # 1..100 ms
    assert s.n == 100
    assert s.mean == pytest.approx(50.5)
    assert s.p50 == pytest.approx(50.5)
    assert s.p90 == pytest.approx(90.1)  # linear: 1 + 0.9 * 99
    assert s.p99 == pytest.approx(99.01)
    assert (s.min, s.max) == (1, 100)
    assert s.std == pytest.approx(np.std(np.arange(1, 101)))


def test_percentiles_single_sample_and_outlier() -> None:
    s = summarize([7.0])
    assert s.p50 == s.p99 == s.min == s.max == 7.0 and s.std == 0.0
    s = summarize([10.0] * 99 + [1000.0])
    assert s.p50 == 10.0 and s.p90 == 10.0  # one outlier leaves the median alone ...
    assert s.p99 == pytest.approx(10.0 + 0.01 * 990.0)  # ... and shows in the tail
    assert s.mean == pytest.approx(19.9)


def test_summarize_rejects_empty_and_nan() -> None:
    with pytest.raises(MnnEdgeError, match="no timed samples"):
        summarize([])
    with pytest.raises(MnnEdgeError, match="NaN"):
        summarize([1.0, float("nan")])


def test_throughput_is_images_per_second() -> None:
    assert throughput(summarize([20.0, 20.0]), batch=4) == pytest.approx(200.0)


def test_round_order_rotates() -> None:
    assert [round_order(3, r) for r in range(4)] == [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 1, 2]]


def test_time_cases_interleaves_and_measures_known_durations() -> None:
    clock, log = FakeClock(), []
    a = clock.case(log, "a", [99.0] * 2 + [10.0, 11.0, 12.0])  # 2 warm-up calls, then 3 timed
    b = clock.case(log, "b", [99.0] * 2 + [20.0, 21.0, 22.0])
    c = clock.case(log, "c", [99.0] * 2 + [30.0, 31.0, 32.0])
    res = time_cases([Case("a", a), Case("b", b, batch=4), Case("c", c)], TimingConfig(warmup=2, runs=3), clock)
    assert log[6:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # timed rounds, start rotates
    assert [r.name for r in res] == ["a", "b", "c"]
    assert res[0].samples_ms == pytest.approx((10.0, 11.0, 12.0))  # warm-up never counted
    assert res[1].stats.p50 == pytest.approx(21.0)
    assert res[1].throughput == pytest.approx(4 * 1000 / 21.0)
    assert res[2].stats.max == pytest.approx(32.0)


def test_time_cases_by_seconds_obeys_budget_and_min_runs() -> None:
    clock, log = FakeClock(), []
    fast = clock.case(log, "fast", [10.0] * 1000)
    res = time_one(fast, TimingConfig(warmup=0, runs=None, seconds=0.095, min_runs=3), clock=clock)
    assert res.stats.n == 10  # 10 ms per call, 95 ms budget: the 10th round starts at 90 ms
    clock2, log2 = FakeClock(), []
    slow = clock2.case(log2, "slow", [500.0] * 10)
    res = time_one(slow, TimingConfig(warmup=0, runs=None, seconds=0.1, min_runs=3), clock=clock2)
    assert res.stats.n == 3  # the budget is gone after one call, but min_runs wins


def test_time_cases_rejects_bad_input() -> None:
    with pytest.raises(MnnEdgeError, match="unique"):
        time_cases([Case("x", lambda: None), Case("x", lambda: None)], TimingConfig(warmup=0, runs=1))
    with pytest.raises(MnnEdgeError, match="nothing to time"):
        time_cases([], TimingConfig())
    with pytest.raises(MnnEdgeError, match="runs must be"):
        TimingConfig(runs=0)
    with pytest.raises(MnnEdgeError, match="seconds"):
        TimingConfig(seconds=-1.0)


def test_real_clock_measures_sleep() -> None:
    import time

    res = time_one(lambda: time.sleep(0.002), TimingConfig(warmup=1, runs=3))
    assert res.stats.min >= 1.9  # sleep never returns early; an upper bound would be flaky here


def test_stage_timer() -> None:
    clock = FakeClock()
    timer = StageTimer(clock=clock)
    for ms in (1.0, 3.0):
        with timer.stage("preprocess"):
            clock.now += ms / 1000.0
    timer.add("infer", 5.0)
    summary = timer.summary()
    assert summary["preprocess"].mean == pytest.approx(2.0)
    assert summary["infer"].n == 1


def test_streaming_stats_match_summarize_then_stay_bounded():
    from mnn_edge.bench.timing import StreamingStats, summarize

    rng = np.random.default_rng(5)
    x = rng.gamma(4.0, 5.0, size=20000)
    small = StreamingStats(capacity=1000)
    for v in x[:800]:
        small.add(v)
    exact = summarize(x[:800])
    got = small.summary()
    for key in ("n", "mean", "std", "p50", "p90", "p99", "min", "max"):
        assert getattr(got, key) == pytest.approx(getattr(exact, key), rel=1e-9)
    for v in x[800:]:
        small.add(v)
    got, exact = small.summary(), summarize(x)
    assert got.n == 20000 and got.mean == pytest.approx(exact.mean) and got.max == exact.max
    assert got.p50 == pytest.approx(exact.p50, rel=0.05) and got.p90 == pytest.approx(exact.p90, rel=0.05)
    assert small._reservoir.nbytes == 1000 * 8  # the memory a camera run keeps, whatever its length


def test_mnn_run_timing_memory_is_flat_over_a_long_run():
    import tracemalloc

    from mnn_edge.frame import STAGES
    from mnn_edge.run.timing import RunTiming

    timing = RunTiming()
    frame = {stage: 1.5 for stage in STAGES}

    def run(frames: int) -> None:
        for i in range(frames):
            timing.add_frame(frame, set(STAGES) if i % 10 == 0 else {"infer"}, 10.0 + i % 7)

    run(5000)  # past every reservoir's capacity
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    run(20000)
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert grown < 20_000, f"{grown} bytes for 20000 frames"  # a list per stage grew ~8 bytes/frame/stage
    assert timing.frame.n == 25000 and timing.to_dict()["frame"]["p50"] > 10.0
