"""The benchmark JSON schema: round trip, validation errors, ratios against a baseline."""

from __future__ import annotations

import copy
import json

import pytest

from mnn_edge.bench.schema import (
    SCHEMA_VERSION,
    BenchRun,
    Breakdown,
    load_run,
    record_from_timing,
    validate,
    with_ratios,
    write_run,
)
from mnn_edge.bench.timing import CaseTiming, summarize
from mnn_edge.errors import MnnEdgeError


def fake_timing(name: str, ms: list[float], batch: int = 1) -> CaseTiming:
    return CaseTiming(name, batch, tuple(ms), summarize(ms))


def fake_run() -> BenchRun:
    recs = [record_from_timing(fake_timing("pose.fp32", [10.0, 12.0]), artifact="x/pose.onnx", model="pose",
                               precision="fp32", backend="onnxruntime", size_bytes=100),
            record_from_timing(fake_timing("pose.int8", [4.0, 5.0]), artifact="x/pose.int8.onnx", model="pose",
                               precision="int8", flavour="cpu", backend="onnxruntime", size_bytes=30,
                               breakdown=Breakdown({"preprocess": summarize([1.0]), "h2d": None}, "h2d folded")),
            record_from_timing(fake_timing("pose.int8", [16.0, 20.0], batch=4), artifact="x/pose.int8.onnx",
                               model="pose", precision="int8", flavour="cpu", backend="onnxruntime", size_bytes=30)]
    return BenchRun(tuple(with_ratios(recs, "pose.fp32")), machine={"cpu": "test"}, config={"runs": 2},
                    baseline="pose.fp32")


def test_round_trip_through_json(tmp_path) -> None:
    run = fake_run()
    path = tmp_path / "b.json"
    write_run(run, path)
    d = json.loads(path.read_text())
    assert d["schema"] == SCHEMA_VERSION
    assert set(d["records"][0]) == {"name", "artifact", "model", "precision", "flavour", "backend", "device", "batch",
                                    "size_bytes", "latency_ms", "throughput_ips", "ratio_to_baseline", "breakdown"}
    assert set(d["records"][0]["latency_ms"]) == {"n", "mean", "std", "p50", "p90", "p99", "min", "max"}
    back = load_run(path)
    assert back.records == run.records
    assert back.records[1].breakdown.stages["h2d"] is None


def test_ratios_use_same_batch_baseline() -> None:
    recs = fake_run().records
    assert recs[0].ratio_to_baseline == {"p50": 1.0, "mean": 1.0}
    assert recs[1].ratio_to_baseline["p50"] == pytest.approx(4.5 / 11.0)
    assert recs[2].ratio_to_baseline is None  # no fp32 at batch 4
    with pytest.raises(MnnEdgeError, match="baseline 'nope'"):
        with_ratios(list(recs), "nope")


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(schema="other/9"), "schema is"),
    (lambda d: d.pop("machine"), "'machine'"),
    (lambda d: d["records"][0].pop("latency_ms"), "'latency_ms'"),
    (lambda d: d["records"][0]["latency_ms"].pop("p99"), "lacks p99"),
    (lambda d: d["records"][0].update(backend="openvino"), "unknown backend"),
    (lambda d: d["records"][0].update(batch=0), "batch must be"),
    (lambda d: d["records"][0].update(batch="1"), "'batch'"),
    (lambda d: d["records"][0]["latency_ms"].update(p50=float("nan")), "not times: p50=nan"),
    (lambda d: d["records"][0]["latency_ms"].update(max=float("inf")), "not times: max=inf"),
    (lambda d: d["records"][0]["latency_ms"].update(mean=-3.0), "not times: mean=-3.0"),
])
def test_validate_names_the_problem(mutate, message) -> None:
    d = copy.deepcopy(fake_run().to_dict())
    mutate(d)
    with pytest.raises(MnnEdgeError, match=message):
        validate(d)


def test_load_run_errors(tmp_path) -> None:
    with pytest.raises(MnnEdgeError, match="not found"):
        load_run(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(MnnEdgeError, match="not valid JSON"):
        load_run(bad)


def test_breakdown_stages_are_mnn_runs_network_part_with_infer_split() -> None:
    # Declared once in mnn_edge.frame beside mnn-run's stages; a record's breakdown keys must not move.
    from mnn_edge.frame import BREAKDOWN_STAGES, STAGES

    assert BREAKDOWN_STAGES == ("preprocess", "h2d", "infer", "d2h", "postprocess")
    assert {s for s in BREAKDOWN_STAGES if s in STAGES} == {"preprocess", "infer", "postprocess"}
