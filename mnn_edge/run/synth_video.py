"""Short videos of synthetic faces (mnn_edge.data.synth) for mnn-run's tests, demos and screenshot.

Each face keeps its look (the renderer is re-seeded every frame) while its pose follows a smooth
path: it slides sideways and turns its head, so tracking and the overlay can be seen at work
without any real person's image.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mnn_edge.data.synth import render_face
from mnn_edge.errors import MnnEdgeError


def face_path(frame: int, frames: int, size: int, phase: float = 0.0) -> np.ndarray:
    """Pose (yaw, pitch, roll, tx, ty, tz) of one face at ``frame``: a slow slide and head turn."""
    u = frame / max(frames - 1, 1)
    yaw = 50.0 * np.sin(2 * np.pi * (u + phase))
    pitch = 12.0 * np.sin(4 * np.pi * (u + phase))
    roll = 8.0 * np.cos(2 * np.pi * (u + phase))
    tx = size * (0.42 + 0.16 * u)
    return np.array([yaw, pitch, roll, tx, size * 0.55, size * 0.3])


def render_frame(frame: int, frames: int, faces: int = 1, size: int = 256, seed: int = 0) -> np.ndarray:
    """(size, faces * size, 3) BGR frame: ``faces`` synthetic faces side by side."""
    tiles = []
    for k in range(faces):
        rng = np.random.default_rng(seed + 1000 * k)  # same look on every frame
        rgb, _ = render_face(rng, size, deform=False, occlude=False,
                             pose=face_path(frame, frames, size, phase=0.37 * k))
        tiles.append(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return np.hstack(tiles)


def write_video(path: Path, frames: int, faces: int = 1, size: int = 256, seed: int = 0, fps: float = 10.0,
                path_frames: int | None = None) -> Path:
    """An .avi (MJPG, decodable by every OpenCV build) or .mp4 of ``frames`` synthetic frames: the
    first ``frames`` of a path ``path_frames`` long (default: the whole path, a full head turn; a
    longer path is slower motion, as a tracker sees at a camera's frame rate)."""
    path = Path(path)
    fourcc = {".avi": "MJPG", ".mp4": "mp4v"}.get(path.suffix.lower())
    if fourcc is None:
        raise MnnEdgeError(f"synthetic video must be .avi or .mp4, got {path.name}")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (faces * size, size))
    if not writer.isOpened():
        raise MnnEdgeError(f"OpenCV cannot write {path}")
    try:
        for i in range(frames):
            writer.write(render_frame(i, path_frames or frames, faces, size, seed))
    finally:
        writer.release()
    return path


def write_frames(folder: Path, frames: int, faces: int = 1, size: int = 256, seed: int = 0) -> list[Path]:
    """The same frames as :func:`write_video`, as ``frame_000000.png`` ... in ``folder`` (lossless)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(frames):
        p = folder / f"frame_{i:06d}.png"
        cv2.imwrite(str(p), render_frame(i, frames, faces, size, seed))
        paths.append(p)
    return paths


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m mnn_edge.run.synth_video", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("out", type=Path, help="a .avi/.mp4 video, or a folder for PNG frames")
    p.add_argument("--frames", type=int, default=30, help="number of frames")
    p.add_argument("--faces", type=int, default=1, help="faces side by side in each frame")
    p.add_argument("--size", type=int, default=256, help="side of each face's tile in px")
    p.add_argument("--seed", type=int, default=0, help="seed of the faces' looks")
    p.add_argument("--fps", type=float, default=10.0, help="frame rate of a video")
    a = p.parse_args(argv)
    if a.out.suffix.lower() in (".avi", ".mp4"):
        write_video(a.out, a.frames, a.faces, a.size, a.seed, a.fps)
    else:
        write_frames(a.out, a.frames, a.faces, a.size, a.seed)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    from mnn_edge.cli_util import run_cli

    raise SystemExit(run_cli(main))
