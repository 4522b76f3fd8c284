"""How much accuracy ``mnn-run`` keeps on moving faces: the tracking benchmark's scoring.

Each clip (:mod:`mnn_edge.run.track_videos`) goes through :func:`mnn_edge.run.app.run` — the code
behind ``mnn-run``, with its JSON lines — and, as the reference, through the same runner on the
*oracle* crops (the training crop rule on the true landmarks of the same decoded frames). The
difference is what the tracker costs: pose MAE on video minus per-image MAE of the same faces.

A record is matched to a true face when its crop centre lies within half the true crop's side of
the true crop centre (the nearest wins); a true face with no matched record is a miss, a record
with no true face is a false face. A track-id change on the same true face between consecutive
matched frames is an id switch. Cut recovery: frames from a cut until the new face is served.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mnn_edge.errors import MnnEdgeError
from mnn_edge.evaluate.metrics import angle_errors, face_nme
from mnn_edge.frame import network_input
from mnn_edge.geometry import apply_affine
from mnn_edge.run.app import RunConfig, run
from mnn_edge.run.track_videos import Clip, TruthFace, write_clip
from mnn_edge.runtime import Runner, open_runner
from mnn_edge.runtime.chunks import infer_in_chunks


@dataclass(frozen=True)
class Setting:
    """One way of running mnn-run: its command-line flags, parsed by mnn-run's own parser, so
    "defaults" are exactly what a user gets."""

    name: str
    flags: tuple[str, ...] = ()

    def config(self, engine: Path, video: Path, json_out: Path) -> RunConfig:
        from mnn_edge.run.options import run_config

        return run_config(["--engine", str(engine), "--video", str(video), "--json", str(json_out),
                           "--no-display", "--quiet", "--device", "cpu", *self.flags])


def decoded_frames(path: Path) -> list[np.ndarray]:
    """The frames as mnn-run decodes them (the reference must see the same pixels)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    return frames


def oracle(runner: Runner, frames: list[np.ndarray], truth: list[list[TruthFace]]) -> dict:
    """Per-image errors: every true face cropped by the training rule from its true landmarks."""
    boxes, faces = [], []
    for image, on_frame in zip(frames, truth):
        for face in on_frame:
            boxes.append((image, *face.crop()))
            faces.append(face)
    err, nme = [], []
    for start in range(0, len(boxes), 32):
        batch, maps = network_input(boxes[start:start + 32], runner.metadata)
        out = infer_in_chunks(runner, batch)
        for i in range(len(out["pose"])):
            face = faces[start + i]
            err.append(angle_errors(out["pose"][i][:3], face.angles))
            if "landmarks" in out:
                nme.append(face_nme(apply_affine(maps[i], out["landmarks"][i]), face.landmarks)[1])
    return {"mae": float(np.mean(err)) if err else math.nan,
            "mae_per_angle": np.mean(err, axis=0).tolist() if err else None,
            "nme_box": float(np.mean(nme)) if nme else None}


def _offset(record: dict, face: TruthFace) -> float:
    """Distance from the record's crop centre to the face's true crop centre, in true crop sides."""
    centre, side = face.crop()
    x0, y0, x1, y1 = record["box"]
    return float(np.hypot((x0 + x1) / 2 - centre[0], (y0 + y1) / 2 - centre[1])) / side


def _match(records: list[dict], faces: list[TruthFace]) -> dict[int, dict]:
    """index of true face -> its record (nearest crop centre within half the true side)."""
    pairs = []
    for i, face in enumerate(faces):
        for r in records:
            d = _offset(r, face)
            if d <= 0.5:
                pairs.append((d, i, id(r), r))
    taken_f, taken_r, out = set(), set(), {}
    for _, i, rid, r in sorted(pairs, key=lambda p: p[0]):
        if i not in taken_f and rid not in taken_r:
            taken_f.add(i)
            taken_r.add(rid)
            out[i] = r
    return out


def score_records(clip: Clip, records: list[dict]) -> dict:
    """Accuracy and track quality of one run's JSON lines against the clip's truth."""
    by_frame: dict[int, list[dict]] = {}
    for r in records:
        if r.get("face") is not None:
            by_frame.setdefault(r["frame"], []).append(r)
    err, nme, centre_err = [], [], []
    misses = false_faces = id_switches = 0
    last_id: dict[int, int] = {}  # true face key -> track id of its last matched record
    recover: list[int] = []
    waiting: dict[int, int] = {}  # true key -> cut frame, until served
    cut_set = set(clip.cuts)
    for f, faces in enumerate(clip.truth):
        if f in cut_set:
            for face in faces:
                waiting[face.key] = f
        recs = by_frame.get(f, [])
        matched = _match(recs, faces)
        false_faces += len(recs) - len(matched)
        for i, face in enumerate(faces):
            r = matched.get(i)
            if r is None:
                misses += 1
                continue
            if face.key in waiting:
                recover.append(f - waiting.pop(face.key))
            err.append(angle_errors([r["yaw"], r["pitch"], r["roll"]], face.angles))
            centre_err.append(_offset(r, face))
            if r.get("landmarks") is not None:
                nme.append(face_nme(np.asarray(r["landmarks"], dtype=np.float64), face.landmarks)[1])
            if face.key in last_id and last_id[face.key] != r["track_id"]:
                id_switches += 1
            last_id[face.key] = r["track_id"]
    recover += [len(clip.truth) - f for f in waiting.values()]  # never served
    n = sum(len(faces) for faces in clip.truth)
    return {"faces": n, "mae": float(np.mean(err)) if err else math.nan,
            "mae_per_angle": np.mean(err, axis=0).tolist() if err else None,
            "nme_box": float(np.mean(nme)) if nme else None,
            "misses": misses, "false_faces": false_faces, "id_switches": id_switches,
            "recovery_max": max(recover) if recover else 0,
            "centre_err_p95": float(np.percentile(centre_err, 95)) if centre_err else math.nan,
            "centre_err_max": float(np.max(centre_err)) if centre_err else math.nan}


def run_setting(engine: Path, video: Path, setting: Setting) -> tuple[list[dict], dict]:
    """mnn-run on ``video`` with ``setting``: its JSON records and its timing summary."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.jsonl"
        summary = run(setting.config(engine, video, out))
        records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    frame = summary.timing.frame.summary()
    timing = {"fps": 1000.0 / frame.mean if frame.mean > 0 else math.nan, "p50_ms": frame.p50,
              "p99_ms": frame.p99, "detector_runs": summary.detector_runs, "frames": summary.frames}
    return records, timing


def evaluate_clip(clip: Clip, engine: Path, settings: list[Setting], workdir: Path) -> dict:
    """Every setting on one clip, and the per-image reference of the same faces."""
    video = workdir / f"{clip.name}.avi"
    write_clip(clip, video)
    frames = decoded_frames(video)
    with open_runner(engine, device="cpu") as runner:
        ref = oracle(runner, frames, clip.truth)
    results = {}
    for s in settings:
        records, timing = run_setting(engine, video, s)
        results[s.name] = {**score_records(clip, records), **timing}
    return {"clip": clip.name, "frames": len(clip.frames), "per_image": ref, "settings": results}


def time_detector(frames: list[np.ndarray], sides: tuple[int, ...] = (320, 480, 640), rounds: int = 3) -> dict:
    """CenterFace alone (one thread, as mnn-run runs it) per --det-max-side: median ms per frame,
    the sides taking turns frame by frame so drift hits them alike."""
    import time

    from mnn_edge.run.detect import CenterFaceDetector

    detectors = {side: CenterFaceDetector(max_side=side) for side in sides}
    times: dict[int, list[float]] = {side: [] for side in sides}
    for _ in range(rounds):
        for image in frames:
            for side, det in detectors.items():
                t0 = time.perf_counter()
                det.detect(image)
                times[side].append((time.perf_counter() - t0) * 1000.0)
    return {side: float(np.median(t)) for side, t in times.items()}


def detector_found(samples, max_sides: tuple[int, ...] = (320, 640),
                   face_sides: tuple[int, ...] = (30, 40, 60, 120, 180), seed: int = 0) -> dict:
    """Per ``--det-max-side``, the share of real faces CenterFace finds per landmark-box side (px)."""
    from mnn_edge.run.detect import CenterFaceDetector
    from mnn_edge.run.track_videos import background, load_photos, still_face

    photos = load_photos(samples)
    bg = background(np.random.default_rng(seed))
    out = {}
    for max_side in max_sides:
        det = CenterFaceDetector(max_side=max_side)
        found = {}
        for side in face_sides:
            hits = 0
            for photo in photos:
                frame, truth = still_face(photo, side, bg)
                centre, crop_side = truth.crop()
                hits += any(np.hypot(*((d.box[:2] + d.box[2:]) / 2 - centre)) <= crop_side / 2
                            for d in det.detect(frame))
            found[side] = hits / len(photos)
        out[max_side] = found
    return out


def detector_crop_fit(samples, groups: list[str], max_side: int = 320, seed: int = 0) -> dict:
    """Fit the detection -> crop model (:mod:`mnn_edge.run.det_crop`) on real faces pasted into
    640x480 frames at the sizes a tracked face has (80-200 px landmark box), random positions and
    in-plane turns up to 35 degrees; fitted on half of the people (``groups``: each sample's
    person), its errors measured on the other half against the box rule's, then refitted on
    everyone. Returns the asset's document."""
    from mnn_edge.run import det_crop
    from mnn_edge.run.detect import CenterFaceDetector
    from mnn_edge.run.track_videos import FACE_SIDE, HEIGHT, WIDTH, background, load_photos, paste_face

    photos = load_photos(samples)
    rng = np.random.default_rng(seed)
    bg = background(rng)
    det = CenterFaceDetector(max_side=max_side)
    if len(groups) != len(samples):
        raise MnnEdgeError(f"{len(groups)} groups for {len(samples)} samples")
    people = sorted(set(groups))
    rows = []  # (person index, box, keypoints, true centre, true side)
    for group, photo in zip(groups, photos):
        for side in (80, 110, 150, 200):
            at = np.array([WIDTH / 2 + rng.uniform(-60, 60), HEIGHT / 2 + rng.uniform(-40, 40)])
            frame, truth = paste_face(photo, bg, at, side / FACE_SIDE, float(rng.uniform(-35, 35)))
            centre, crop_side = truth.crop()
            near = [d for d in det.detect(frame) if d.keypoints is not None
                    and np.hypot(*((d.box[:2] + d.box[2:]) / 2 - centre)) <= crop_side / 2]
            if near:
                rows.append((people.index(group), near[0].box, near[0].keypoints,
                             centre, crop_side))
    if len(rows) < 50:
        raise MnnEdgeError(f"the detector found only {len(rows)} of the calibration faces; need at least 50")
    person = np.array([r[0] for r in rows])
    boxes, kps, centres, sides = (np.stack([np.asarray(r[i], dtype=np.float64) for r in rows]) for i in range(1, 5))
    fit_half, test_half = person % 2 == 0, person % 2 == 1
    coef = det_crop.fit_model(boxes[fit_half], kps[fit_half], centres[fit_half], sides[fit_half])

    def errors(crop) -> dict:
        got = [crop(b, k) for b, k in zip(boxes[test_half], kps[test_half])]
        centre_err = [np.linalg.norm(c - t) / s for (c, _), t, s in zip(got, centres[test_half], sides[test_half])]
        side_err = [abs(math.log(g / s)) for (_, g), s in zip(got, sides[test_half])]
        return {"centre_median": float(np.median(centre_err)), "centre_p90": float(np.percentile(centre_err, 90)),
                "log_side_median": float(np.median(side_err)), "log_side_p90": float(np.percentile(side_err, 90))}

    return {
        "what": "CenterFace box + 5 keypoints -> training-rule crop: rows (dx, dy, log side ratio) over features "
                "(1, keypoints rel. to box centre / box side (x, y) x 5, box width / side, box height / side)",
        "made_by": "python bench/tracking.py --calibrate --write",
        "det_max_side": max_side,
        "faces": len(rows),
        "people": len(people),
        "errors_on_held_out_half": {"box_rule": errors(lambda b, k: det_crop.box_rule(b)),
                                    "keypoints": errors(lambda b, k: det_crop.apply_model(coef, b, k))},
        "coefficients": det_crop.fit_model(boxes, kps, centres, sides).round(5).tolist(),
    }


SETTINGS = {  # name -> mnn-run flags; "defaults" is what a user gets with none
    "defaults": (),
    "every frame": ("--redetect-every", "1"),
    "every frame, 640": ("--redetect-every", "1", "--det-max-side", "640"),
    "det 640": ("--det-max-side", "640"),
    "inline": ("--inline-detect",),
    "every 5": ("--redetect-every", "5"),
    "every 30": ("--redetect-every", "30"),
}


def settings(names: list[str] | None = None) -> list[Setting]:
    return [Setting(n, SETTINGS[n]) for n in (names or list(SETTINGS))]
