"""How mnn-run takes frames from its sources: one stream inline, several on their own threads.

A single source is read in the frame loop's own thread, one frame when the loop asks (nothing
else can be stalled by it, and a camera's driver keeps only its newest frame). With several
sources each is decoded on its own thread into a small bounded buffer, so a slow or dead stream
never holds up the others, and memory stays bounded however long the input:

- a live source (camera) keeps only its newest frame: when the loop is slower than the camera,
  the older waiting frame is dropped and counted (inference always sees the present);
- a file source (video, images) keeps up to :data:`FILE_DEPTH` frames and its decoder waits for
  room: every frame is processed, none dropped (a file has no present to fall behind).

A source that fails (a camera gone, a damaged video) ends its own stream: the reader records the
message and reports itself finished; the loop carries on with the others.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mnn_edge.errors import MnnEdgeError
from mnn_edge.run.sources import Frame

LIVE_DEPTH = 1  # a camera: only the newest frame waits
FILE_DEPTH = 2  # a video or image folder: a little read-ahead, then the decoder waits
POLL_S = 0.1  # the loop re-checks this often while waiting (Ctrl-C and a dead stream stay prompt)
JOIN_S = 5.0  # how long closing waits for a reader thread stuck in its source


@dataclass
class FedFrame:
    frame: Frame
    decode_ms: float  # time to read and decode this frame


def failure_message(error: Exception) -> str:
    """A source failure in one line: our own errors already say what to do; others get their type."""
    return str(error) if isinstance(error, MnnEdgeError) else f"{type(error).__name__}: {error}"


class InlineReader:
    """The one stream of a single-source run, read in the caller's thread by :meth:`take`."""

    def __init__(self, source: Iterable[Frame]):
        self._frames: Iterator[Frame] = iter(source)
        self.finished = False
        self.error: str | None = None  # why the source stopped early, if it did
        self.dropped = 0  # never drops: the loop reads at its own pace

    @property
    def ready(self) -> bool:
        return True  # take() blocks until the source delivers

    def take(self) -> FedFrame | None:
        if self.finished:
            return None
        t0 = time.perf_counter()
        try:
            frame = next(self._frames, None)
        except Exception as e:  # the stream ends; outputs so far are kept (Ctrl-C still propagates)
            frame, self.error = None, failure_message(e)
        if frame is None:
            self.finished = True
            return None
        return FedFrame(frame, (time.perf_counter() - t0) * 1000.0)

    def close(self) -> None:
        self.finished = True


class ThreadedReader:
    """One source decoded on its own thread into a bounded buffer (see the module docstring).

    ``wake`` is shared by all the readers of a run, so the loop can wait for whichever stream
    delivers first."""

    def __init__(self, source: Iterable[Frame], wake: threading.Condition, live: bool, name: str = "source"):
        self.source = source
        self._wake = wake
        self.live = live
        self.depth = LIVE_DEPTH if live else FILE_DEPTH
        self._buffer: collections.deque[FedFrame] = collections.deque()
        self._ended = False  # the source has nothing more (or failed)
        self._stop = False
        self.error: str | None = None
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=f"mnn-read {name}", daemon=True)
        self._thread.start()

    @property
    def ready(self) -> bool:
        """A frame is waiting, or the stream has ended (call with ``wake`` held or accept a race)."""
        return bool(self._buffer) or self._ended

    @property
    def finished(self) -> bool:
        """Ended and every frame it delivered has been taken."""
        with self._wake:
            return self._ended and not self._buffer

    def take(self) -> FedFrame | None:
        """The oldest waiting frame, or None: never blocks."""
        with self._wake:
            if not self._buffer:
                return None
            fed = self._buffer.popleft()
            self._wake.notify_all()  # a file decoder may be waiting for room
            return fed

    def close(self) -> None:
        with self._wake:
            self._stop = True
            self._buffer.clear()
            self._wake.notify_all()
        self._thread.join(JOIN_S)
        if self._thread.is_alive():
            print(f"warning: {self._thread.name} did not stop within {JOIN_S:.0f} s (a source stuck "
                  "in a read); leaving it behind", file=sys.stderr)

    @property
    def stuck(self) -> bool:
        """The thread outlived :meth:`close`: its source must not be released under it."""
        return self._thread.is_alive()

    def _run(self) -> None:
        frames = iter(self.source)
        try:
            while True:
                t0 = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                fed = FedFrame(frame, (time.perf_counter() - t0) * 1000.0)
                with self._wake:
                    if not self.live:  # a file: wait for room rather than lose a frame
                        self._wake.wait_for(lambda: self._stop or len(self._buffer) < self.depth)
                    if self._stop:
                        return
                    if len(self._buffer) >= self.depth:  # a camera: the oldest waiting frame goes
                        self._buffer.popleft()
                        self.dropped += 1
                    self._buffer.append(fed)
                    self._wake.notify_all()
        except Exception as e:  # this stream ends; the others go on
            self.error = failure_message(e)
        finally:
            with self._wake:
                self._ended = True
                self._wake.notify_all()


def gather(readers: list[InlineReader | ThreadedReader], wake: threading.Condition) -> list[tuple[int, FedFrame]]:
    """Wait until some stream has a frame or has ended, then take one frame from each stream that
    has one: (position in ``readers``, frame). Empty when the streams that were waited on ended."""
    with wake:
        while not any(r.ready for r in readers):
            wake.wait(POLL_S)  # a timeout, so Ctrl-C is seen even if no thread ever notifies
    taken = [(i, r.take()) for i, r in enumerate(readers)]
    return [(i, fed) for i, fed in taken if fed is not None]
