"""``mnn-data profile``: a folder of profiled faces, written resumably and atomically.

Every source face with a pose label is read by the Face Landmarker (its mesh), turned to
``per_face`` drawn targets (:mod:`mnn_edge.data.profile.poses`) and re-rendered
(:mod:`mnn_edge.data.profile.render`). A render is kept when all 68 landmarks stay in the picture
and the FSA-Net teacher, re-reading it, agrees with its label within :data:`REREAD_BOUND_DEG` on
every angle (a render that folded or smeared reads as something else); everything dropped is
counted by reason.

Output: ``prof_<index>_<k>.jpg`` + ``.mat`` in the synthetic layout (``--format synthetic`` reads
it: exact ``pose_mnn``, projected 3D landmarks, visibility) in ``OUT.partial/``, renamed to
``OUT`` with ``profile.json`` (settings, counts) only when every face is done. A stopped run
resumes from ``OUT.partial``: a face whose ``.mat`` exists is not rendered again (draws are
seeded per face, so the result does not depend on where it stopped or on ``workers``).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from mnn_edge.data.readers import load_image_rgb, read_dataset
from mnn_edge.data.sample import FaceSample
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import atomic_path, make_folder, write_text_atomic
from mnn_edge.geometry import fit_translation_scale
from mnn_edge.meanface import mean_face

REREAD_BOUND_DEG = 20.0
MESH_OFF_FACE = 0.25  # the mesh centre may sit this fraction of the landmark box away from its centre
DEPTH_SCALE = 1.3  # the Face Landmarker's depth is too flat; chosen by teacher re-reads (docs/DATA_PROFILE.md)
JPEG_QUALITY = 95
SUMMARY = "profile.json"


@dataclass(frozen=True)
class ProfileConfig:
    data: Path
    format: str
    out: Path
    mesh_model: Path  # folder with face_landmarker.task and canonical_face_model.obj
    teacher: Path  # FSA-Net folder: re-reads every render
    pose_labels: Path | None = None  # source poses (teacher labels); None = the dataset's own
    subset: str | None = None
    per_face: int = 2
    seed: int = 0
    max_yaw: float = 75.0
    max_pitch: float = 40.0
    depth_scale: float = DEPTH_SCALE
    limit: int | None = None
    workers: int = 1
    force: bool = False
    progress: bool = True

    def check(self) -> None:
        if not 1 <= self.per_face <= 64:
            raise MnnEdgeError(f"--per-face must be 1..64, got {self.per_face}")
        if not 20.0 <= self.max_yaw <= 89.0:
            raise MnnEdgeError(f"--max-yaw must be 20..89 degrees, got {self.max_yaw}")
        if not 0.0 <= self.max_pitch <= 60.0:
            raise MnnEdgeError(f"--max-pitch must be 0..60 degrees, got {self.max_pitch}")
        if not 0.5 <= self.depth_scale <= 3.0:
            raise MnnEdgeError(f"--depth-scale must be 0.5..3, got {self.depth_scale}")
        if self.workers < 1:
            raise MnnEdgeError(f"--workers must be at least 1, got {self.workers}")


def render_name(index: int, k: int) -> str:
    return f"prof_{index:06d}_{k:02d}"


def partial_folder(out: Path) -> Path:
    if not out.name or out.name == "..":  # --out . or ..: name the folder itself, not ".partial"
        out = Path(os.path.abspath(out))
    return out.with_name(out.name + ".partial")


class _Worker:
    """What one process holds: the Face Landmarker, the mesh topology, the re-reading teacher."""

    def __init__(self, cfg: ProfileConfig) -> None:
        from mnn_edge.data.profile.landmarker import FaceLandmarker
        from mnn_edge.data.profile.topology import load_topology
        from mnn_edge.data.teacher.fsanet import load_teacher

        self.cfg = cfg
        self.landmarker = FaceLandmarker(cfg.mesh_model)
        self.topology = load_topology(cfg.mesh_model / "canonical_face_model.obj")
        self.teacher = load_teacher(cfg.teacher)
        self.mean_face = mean_face()

    def profile(self, index: int, sample: FaceSample, folder: Path) -> list[str]:
        """Render one source face ``per_face`` times; returns one outcome per render."""
        from mnn_edge.data.profile.landmarker import mesh_pixels
        from mnn_edge.data.profile.poses import draw_target, rotation_between
        from mnn_edge.data.profile.render import render_profile

        cfg = self.cfg
        names = [render_name(index, k) for k in range(cfg.per_face)]
        if all((folder / f"{n}.mat").is_file() for n in names):
            return ["kept"] * cfg.per_face
        image = load_image_rgb(sample.image_path)
        box_min, box_max = sample.landmarks.min(axis=0), sample.landmarks.max(axis=0)
        reading = self.landmarker.read(image, near=tuple((box_min + box_max) / 2))
        if reading is None:
            return ["no face found"] * cfg.per_face
        h, w = image.shape[:2]
        mesh = mesh_pixels(reading.points, w, h, cfg.depth_scale)
        # With several faces in the photo the nearest mesh must be the labelled face's.
        if np.abs(mesh[:, :2].mean(axis=0) - (box_min + box_max) / 2).max() > MESH_OFF_FACE * (box_max - box_min).max():
            return ["mesh off the labelled face"] * cfg.per_face
        rng = np.random.default_rng([cfg.seed, index])
        outcomes = []
        for name in names:
            target = draw_target(rng, sample.angles, cfg.max_yaw, cfg.max_pitch)
            if (folder / f"{name}.mat").is_file():
                outcomes.append("kept")
                continue
            out = render_profile(image, mesh, self.topology, sample.landmarks,
                                 rotation_between(sample.angles, target))
            if not out.in_frame:
                outcomes.append("left the frame")
                continue
            reread = self.teacher.predict(out.image, out.landmarks)
            if np.abs(reread - target).max() > REREAD_BOUND_DEG:
                outcomes.append("teacher disagrees")
                continue
            pose = fit_translation_scale(self.mean_face, tuple(target), out.landmarks)
            _write(folder / name, out, pose)
            outcomes.append("written")
        return outcomes


def _write(stem: Path, out, pose: np.ndarray) -> None:
    from mnn_edge.data.synth import SynthLabels, mat_bytes

    ok, enc = cv2.imencode(".jpg", cv2.cvtColor(out.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise MnnEdgeError(f"JPEG encoding failed for {stem.name}")
    labels = SynthLabels(landmarks=out.landmarks, depth=out.depth, visibility=out.visibility, pose=pose,
                         shape_3d=np.zeros((len(out.landmarks), 3)), jpeg_quality=JPEG_QUALITY)
    with atomic_path(stem.with_suffix(".jpg")) as tmp:
        tmp.write_bytes(enc.tobytes())
    with atomic_path(stem.with_suffix(".mat")) as tmp:  # the .mat last: it marks the render as done
        tmp.write_bytes(mat_bytes(labels))


_WORKER: _Worker | None = None


def _init_worker(cfg: ProfileConfig) -> None:
    global _WORKER
    cv2.setNumThreads(1)
    _WORKER = _Worker(cfg)


def _job(folder: Path, item: tuple[int, FaceSample]) -> list[str]:
    assert _WORKER is not None
    return _WORKER.profile(item[0], item[1], folder)


def read_sources(cfg: ProfileConfig) -> list[FaceSample]:
    samples = read_dataset(cfg.data, cfg.format, limit=cfg.limit, progress=cfg.progress, subset=cfg.subset,
                           pose_labels=cfg.pose_labels)
    usable = [s for s in samples if s.angles is not None and s.landmarks is not None and len(s.landmarks) == 68]
    if not usable:
        raise MnnEdgeError(f"no face under {cfg.data} has both a pose label and 68 landmarks "
                           "(give --pose-labels from mnn-data pseudo-label for real frames)")
    return usable


def write_profiles(cfg: ProfileConfig) -> dict:
    """Profile every usable face; returns the summary also written to ``OUT/profile.json``."""
    from tqdm import tqdm

    cfg.check()
    if cfg.out.exists() and not cfg.force:
        raise MnnEdgeError(f"{cfg.out} already exists; pass --force to replace it")
    sources = read_sources(cfg)
    folder = make_folder(partial_folder(cfg.out))
    counts: Counter = Counter()
    bar = tqdm(total=len(sources) * cfg.per_face, desc="profile", unit="render", disable=not cfg.progress)
    items = list(enumerate(sources))
    try:
        if cfg.workers == 1:
            _init_worker(cfg)
            results = (_job(folder, it) for it in items)
            for outcomes in results:
                counts.update(outcomes)
                bar.update(len(outcomes))
        else:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(cfg.workers, initializer=_init_worker, initargs=(cfg,)) as pool:
                for outcomes in pool.imap(partial(_job, folder), items, chunksize=4):
                    counts.update(outcomes)
                    bar.update(len(outcomes))
    finally:
        bar.close()
        if _WORKER is not None:
            _WORKER.landmarker.close()
    made = counts["written"] + counts["kept"]
    if made == 0:
        raise MnnEdgeError(f"no render of the {len(sources)} faces was kept ({dict(counts)}); nothing written")
    summary = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()
                            if k not in ("force", "progress", "workers")},
               "rereading_bound_deg": REREAD_BOUND_DEG, "sources": len(sources), "renders": made,
               "outcomes": dict(sorted(counts.items()))}
    write_text_atomic(folder / SUMMARY, json.dumps(summary, indent=2) + "\n")
    if cfg.out.exists():  # --force: the old folder goes only now that the new one is complete
        import shutil

        shutil.rmtree(cfg.out)
    os.replace(folder, cfg.out)
    return summary
