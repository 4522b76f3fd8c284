"""Adaptive batching that can only return a client its own rows.

Requests arrive already checked (:mod:`mnn_edge.serve.requests`) as (N, 3, S, S) arrays. The
batcher waits up to ``max_wait_s`` for more, concatenates at most ``max_rows`` rows, runs the
model once and hands each request back exactly the rows it brought — counted here from the
arrays, never taken from a client's header. A client that has gone (its future cancelled) is
skipped before the merge and ignored after it, so a cancelled request can neither fail nor delay
anyone else's answer. A failure of the model call fails only the requests in that call.

Replaces MLServer's own AdaptiveBatcher, which splits by declared shapes and raised ``KeyError``
in its callback when a client cancelled.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

import numpy as np

Outputs = dict[str, np.ndarray]


class RowBatcher:
    def __init__(self, run: Callable[[np.ndarray], Awaitable[Outputs]], max_rows: int, max_wait_s: float):
        if max_rows < 1 or max_wait_s < 0:
            raise ValueError("max_rows must be >= 1 and max_wait_s >= 0")
        self._run = run
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self._queue: deque[tuple[np.ndarray, asyncio.Future]] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    async def infer(self, batch: np.ndarray) -> Outputs:
        """This request's outputs (its own rows only)."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._loop())
        future: asyncio.Future = loop.create_future()
        self._queue.append((batch, future))
        self._wake.set()
        return await future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for _, future in self._queue:
            if not future.done():
                future.cancel()
        self._queue.clear()

    def _pending_rows(self) -> int:
        return sum(len(b) for b, f in self._queue if not f.done())

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._queue:
                continue
            # a short wait for others to join, unless the batch is already full
            deadline = asyncio.get_running_loop().time() + self.max_wait_s
            while self._pending_rows() < self.max_rows:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                try:
                    await asyncio.wait_for(self._wake.wait(), left)
                    self._wake.clear()
                except asyncio.TimeoutError:
                    break
            await self._run_one_batch()
            if self._queue:
                self._wake.set()

    def _take(self) -> list[tuple[np.ndarray, asyncio.Future]]:
        """Requests for one call: in arrival order, up to max_rows (a larger one alone)."""
        taken, rows = [], 0
        while self._queue:
            batch, future = self._queue[0]
            if future.done():  # cancelled by its client: never merged
                self._queue.popleft()
                continue
            if taken and rows + len(batch) > self.max_rows:
                break
            self._queue.popleft()
            taken.append((batch, future))
            rows += len(batch)
        return taken

    async def _run_one_batch(self) -> None:
        taken = self._take()
        if not taken:
            return
        merged = taken[0][0] if len(taken) == 1 else np.concatenate([b for b, _ in taken])
        try:
            outputs = await self._run(merged)
        except Exception as e:  # noqa: BLE001 - handed to exactly the requests of this call
            for _, future in taken:
                if not future.done():
                    future.set_exception(e)
            return
        start = 0
        for batch, future in taken:
            end = start + len(batch)
            if not future.done():  # a client that left meanwhile simply gets nothing
                future.set_result({k: v[start:end] for k, v in outputs.items()})
            start = end
