"""mnn-serve's request isolation without a server: every request checked on its own, and a merged
batch that can only hand each client its own rows — whatever other clients send or do."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from mnn_edge.serve.batching import RowBatcher
from mnn_edge.serve.requests import InputRule, RequestError, check_array, check_header

RULE = InputRule("image", 8, max_rows=4)


def _crops(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("names, shape, dtype, fault", [
    (["image"], [2, 3, 8, 8], "FP32", None),
    ([], [], "", "expected exactly one input 'image', got none"),
    (["image", "image"], [1, 3, 8, 8], "FP32", "got 'image', 'image'"),
    (["img"], [1, 3, 8, 8], "FP32", "got 'img'"),
    (["image"], [1, 3, 8, 8], "UINT8", "must be FP32, got UINT8"),
    (["image"], [1, 3, 16, 16], "FP32", r"shape \(N, 3, 8, 8\), got \[1, 3, 16, 16\]"),
    (["image"], [3, 8, 8], "FP32", "must have shape"),
    (["image"], [0, 3, 8, 8], "FP32", "batch must be 1..4 crops per request, got 0"),
    (["image"], [-1, 3, 8, 8], "FP32", "got -1"),
    (["image"], [5, 3, 8, 8], "FP32", "got 5"),
])
def test_headers_are_checked_before_the_data(names, shape, dtype, fault):
    if fault is None:
        assert check_header(RULE, names, shape, dtype) == 2
    else:
        with pytest.raises(RequestError, match=fault):
            check_header(RULE, names, shape, dtype)


def test_carried_data_must_match_the_declared_shape_and_be_an_image():
    one = _crops(1, 0)
    np.testing.assert_array_equal(check_array(RULE, 1, one.reshape(-1)), one)
    with pytest.raises(RequestError, match=r"declares shape \[2, 3, 8, 8\] \(384 values\) but carries 192"):
        check_array(RULE, 2, one.reshape(-1))  # the lying header that shifted other clients' rows
    for bad, fault in ((np.nan, "NaN or infinite"), (np.inf, "NaN or infinite"), (3e38, "beyond")):
        x = one.copy()
        x[0, 1, 2, 3] = bad
        with pytest.raises(RequestError, match=fault):
            check_array(RULE, 1, x.reshape(-1))


class _Model:
    """Row i of the output is the sum of input row i: each client can check its own answer."""

    def __init__(self, delay: float = 0.0, fail_on: int | None = None):
        self.calls: list[int] = []
        self.delay, self.fail_on = delay, fail_on

    async def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        self.calls.append(len(batch))
        await asyncio.sleep(self.delay)
        if self.fail_on is not None and len(self.calls) == self.fail_on:
            raise RuntimeError("engine failed")
        return {"pose": batch.reshape(len(batch), -1).sum(axis=1, keepdims=True)}


def _own(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1).sum(axis=1, keepdims=True)


def test_merged_requests_each_get_their_own_rows():
    async def main():
        model = _Model(delay=0.01)
        batcher = RowBatcher(model, max_rows=8, max_wait_s=0.02)
        inputs = [_crops(1 + k % 3, k) for k in range(12)]
        outs = await asyncio.gather(*(batcher.infer(x) for x in inputs))
        await batcher.close()
        return model, inputs, outs

    model, inputs, outs = asyncio.run(main())
    for x, out in zip(inputs, outs):
        np.testing.assert_allclose(out["pose"], _own(x), rtol=1e-6)
    assert len(model.calls) < 12 and max(model.calls) <= 8  # merged, within the limit


def test_a_cancelled_client_disturbs_nobody():
    async def main():
        model = _Model(delay=0.02)
        batcher = RowBatcher(model, max_rows=8, max_wait_s=0.01)
        inputs = [_crops(1, k) for k in range(6)]
        tasks = [asyncio.ensure_future(batcher.infer(x)) for x in inputs]
        await asyncio.sleep(0)
        tasks[2].cancel()  # gone before the merge
        await asyncio.sleep(0.015)
        tasks[4].cancel()  # gone while its batch runs
        results = await asyncio.gather(*tasks, return_exceptions=True)
        later = await batcher.infer(inputs[0])  # the batcher still serves
        await batcher.close()
        return inputs, results, later

    inputs, results, later = asyncio.run(main())
    for k in (0, 1, 3, 5):
        np.testing.assert_allclose(results[k]["pose"], _own(inputs[k]), rtol=1e-6)
    assert isinstance(results[2], asyncio.CancelledError) and isinstance(results[4], asyncio.CancelledError)
    np.testing.assert_allclose(later["pose"], _own(inputs[0]), rtol=1e-6)


def test_a_failed_call_fails_only_its_own_requests():
    async def main():
        model = _Model(fail_on=1)
        batcher = RowBatcher(model, max_rows=2, max_wait_s=0.01)
        inputs = [_crops(1, k) for k in range(4)]
        results = await asyncio.gather(*(batcher.infer(x) for x in inputs), return_exceptions=True)
        await batcher.close()
        return model, inputs, results

    model, inputs, results = asyncio.run(main())
    assert model.calls == [2, 2]
    assert all(isinstance(r, RuntimeError) for r in results[:2])
    for k in (2, 3):
        np.testing.assert_allclose(results[k]["pose"], _own(inputs[k]), rtol=1e-6)


def test_every_model_call_is_at_most_the_merge_size():
    """A 20-crop request runs as calls of at most 8 crops (ONNX Runtime keeps the memory its largest
    call grew), within an engine profile's own limits, and the outputs come back in order."""
    from mnn_edge.artifact import ModelKind, ModelMetadata
    from mnn_edge.runtime.base import InputSpec, Runner
    from mnn_edge.runtime.chunks import infer_in_chunks

    class Rows(Runner):
        backend = "fake"

        def __init__(self, max_batch=None, min_batch=1):
            super().__init__("fake.onnx")
            self.metadata = ModelMetadata(kind=ModelKind.POSE, num_landmarks=68, outputs=("pose",))
            self.input_spec = InputSpec("image", (None, 3, 8, 8), np.dtype(np.float32), max_batch=max_batch,
                                        min_batch=min_batch)
            self.calls: list[int] = []

        def _infer(self, batch):
            self.calls.append(len(batch))
            return {"pose": batch[:, 0, 0, :1].copy()}

    x = _crops(20, 1)
    for runner, max_rows, calls in ((Rows(), 8, [8, 8, 4]), (Rows(max_batch=4), 8, [4] * 5),
                                    (Rows(min_batch=6), 8, [8, 8, 6]), (Rows(), None, [20])):
        out = infer_in_chunks(runner, x, max_rows)
        assert runner.calls == calls
        np.testing.assert_array_equal(out["pose"], x[:, 0, 0, :1])
