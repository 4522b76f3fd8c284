"""The face detector off the frame path: one worker thread, at most one frame in flight.

While faces are tracked, a periodic re-detection is handed to this worker and the frame loop goes
on serving the tracks; the detections are merged a few frames later, when they are ready (see
:class:`mnn_edge.run.track.Tracker`). So one frame in ``redetect_every`` no longer pays the
detector's latency inline, and the frame-time tail stays flat. ONNX Runtime releases the GIL
while it runs, so the detector's single intra-op thread really works beside the model's.

One frame in flight, never a queue: if the worker is still busy, a new request is simply not
made (the next due frame asks again), so a slow detector can delay re-detection but never
builds up memory or stale work.
"""

from __future__ import annotations

import threading

import numpy as np

from mnn_edge.run.detect import Detection, Detector


class DetectorWorker:
    def __init__(self, detector: Detector):
        self.detector = detector
        self._cond = threading.Condition()
        self._job: tuple[int, np.ndarray] | None = None
        self._result: tuple[int, list[Detection]] | None = None
        self._error: BaseException | None = None
        self._busy = False
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="mnn-detector", daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        """No frame waiting or being detected (a finished result may still wait to be polled)."""
        with self._cond:
            return self._job is None and not self._busy

    def submit(self, frame_no: int, image_bgr: np.ndarray) -> bool:
        """Start detecting on a copy of ``image_bgr``; False (nothing started) while busy."""
        with self._cond:
            if self._stop or self._job is not None or self._busy or self._result is not None:
                return False
            self._job = (frame_no, image_bgr.copy())  # the source may reuse its frame buffer
            self._cond.notify()
            return True

    def poll(self) -> tuple[int, list[Detection]] | None:
        """The finished (frame number, detections), once; None while none is ready.

        A detector failure is raised here, in the frame loop, not lost in the thread."""
        with self._cond:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            result, self._result = self._result, None
            return result

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until the frame in flight is done; its result stays for :meth:`poll`."""
        with self._cond:
            return self._cond.wait_for(lambda: self._job is None and not self._busy, timeout)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._job is not None or self._stop)
                if self._stop:
                    return
                frame_no, image = self._job
                self._job, self._busy = None, True
            try:
                dets, error = self.detector.detect(image), None
            except BaseException as e:  # handed to the frame loop by poll()
                dets, error = [], e
            with self._cond:
                self._busy = False
                if error is not None:
                    self._error = error
                else:
                    self._result = (frame_no, dets)
                self._cond.notify_all()
