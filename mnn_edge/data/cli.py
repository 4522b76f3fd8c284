"""``mnn-data``: data-set tools. Subcommands: ``synth`` (render synthetic faces with exact labels),
``preview`` (a PNG contact sheet of synthetic faces), ``cofw`` (unpack COFW's official .mat),
``pseudo-label`` (teacher pose labels for real faces), ``profile`` (real faces re-rendered at large poses),
``fetch`` (the external data and teacher models, hash-checked, into their repository places)."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from mnn_edge.cli_util import run_cli
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import PathRole, check_distinct, claim_outputs


@dataclass(frozen=True)
class SynthConfig:
    out: Path  # output folder (created)
    n: int  # number of faces
    seed: int  # data-set seed; face i uses default_rng([seed, i])
    size: int  # square image side in pixels
    workers: int  # processes; results do not depend on it
    force: bool  # overwrite existing synth_* files
    progress: bool  # show a progress bar


def _synth(cfg: SynthConfig) -> int:
    from mnn_edge.data.synth import check_image_size, write_synthetic

    check_image_size(cfg.size)
    if cfg.out.is_dir() and not cfg.force and any(cfg.out.glob("synth_*.jpg")):
        raise MnnEdgeError(f"{cfg.out} already holds synthetic faces; use --force to overwrite them")
    t0 = time.perf_counter()
    with claim_outputs((cfg.out, "synthetic data folder")):
        paths = write_synthetic(cfg.out, cfg.n, cfg.seed, image_size=cfg.size, workers=cfg.workers,
                                progress=cfg.progress)
    dt = time.perf_counter() - t0
    print(f"wrote {len(paths)} faces (.jpg + .mat) to {cfg.out} in {dt:.1f} s "
          f"({60 * len(paths) / max(dt, 1e-9):.0f} faces/min, {cfg.workers} worker(s))")
    return 0


def _preview(args: argparse.Namespace) -> int:
    from mnn_edge.data.synth.preview import check_sheet, write_contact_sheet

    check_sheet(args.n, args.size, args.cols)  # before the claim creates --out's folder
    with claim_outputs((args.out, "contact sheet")):
        path = write_contact_sheet(args.out, n=args.n, seed=args.seed, image_size=args.size, cols=args.cols,
                                   landmarks=args.landmarks)
    print(f"wrote {path} ({args.n} faces, seed {args.seed})")
    return 0


def _teacher_files(folder: Path) -> list[PathRole]:
    """The teacher folder and the model files in it (FSA-Net's .onnx, the Face Landmarker's .task and
    mesh): none may be written."""
    models = sorted(f for pattern in ("*.onnx", "*.task", "*.obj") for f in folder.glob(pattern))
    return [(folder, "teacher folder"), *((f, "teacher model") for f in models)]


def _cofw(args: argparse.Namespace) -> int:
    from mnn_edge.data.readers.cofw_mat import convert_cofw, skips_text

    check_distinct([(args.mat, ".mat file")], [(args.out, "--out")], output_folders_named=True)
    with claim_outputs((args.out, "COFW output folder")):
        written, skipped = convert_cofw(args.mat, args.out, force=args.force, progress=not args.no_progress)
    note = f"; skipped {skips_text(skipped)}" if skipped else ""
    print(f"wrote {written} faces (.png + .pts) to {args.out}{note}; read them with --format cofw")
    return 0


def _pseudo_label(args: argparse.Namespace) -> int:
    from mnn_edge.data.readers.pose_labels import partial_path
    from mnn_edge.data.teacher.pseudo_label import pseudo_label

    teachers = [role for folder in args.teacher for role in _teacher_files(folder)]
    check_distinct([*teachers, (args.data, "dataset folder")],
                   [(args.out, "--out"), (partial_path(args.out), "--out's partial file")])
    with claim_outputs((args.out, "teacher labels")):  # two labellers would interleave one partial file
        made, resumed, unread = pseudo_label(args.teacher, args.data, args.format, args.out, margin=args.margin,
                                             force=args.force, progress=not args.no_progress)
    note = f" ({resumed} kept from a stopped run)" if resumed else ""
    note += f"; no face found in {unread} (no label for them)" if unread else ""
    print(f"wrote {args.out}: teacher pose labels for {made + resumed} faces{note}; train or evaluate with "
          f"--pose-labels {args.out}")
    return 0


def _profile(args: argparse.Namespace) -> int:
    from mnn_edge.data.profile.dataset import ProfileConfig, partial_folder, write_profiles

    cfg = ProfileConfig(data=args.data, format=args.format, out=args.out, mesh_model=args.mesh, teacher=args.teacher,
                        pose_labels=args.pose_labels, subset=args.subset, per_face=args.per_face, seed=args.seed,
                        max_yaw=args.max_yaw, max_pitch=args.max_pitch, depth_scale=args.depth_scale,
                        limit=args.limit, workers=args.workers, force=args.force, progress=not args.no_progress)
    # --force replaces the whole --out folder once the new one is complete: no input may be inside it.
    check_distinct([(args.data, "dataset folder"), (args.pose_labels, "pose labels file"), (args.mesh, "mesh folder"),
                    *_teacher_files(args.teacher)],
                   [(args.out, "--out"), (partial_folder(args.out), "--out's partial folder")],
                   output_folders_named=True, outputs_replaced=True)
    with claim_outputs((args.out, "profiled faces folder"), (partial_folder(args.out), "profiled faces folder")):
        summary = write_profiles(cfg)
    dropped = {k: v for k, v in summary["outcomes"].items() if k not in ("written", "kept")}
    note = "; dropped " + ", ".join(f"{v} {k}" for k, v in dropped.items()) if dropped else ""
    print(f"wrote {summary['renders']} profiled faces of {summary['sources']} photos to {args.out}{note}; "
          f"read them with --format synthetic")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from mnn_edge.data import fetch

    if args.list:
        if args.names or args.from_dir:
            raise MnnEdgeError("--list takes no NAME and no --from")
        print(fetch.listing(args.root))
        return 0
    if not args.names:
        raise MnnEdgeError(f"name what to fetch: {', '.join(fetch.SOURCES)} or all (--list describes them)")
    names = list(fetch.SOURCES) if "all" in args.names else list(dict.fromkeys(args.names))
    unknown = [n for n in names if n not in fetch.SOURCES]
    if unknown:
        raise MnnEdgeError(f"unknown source {', '.join(unknown)}; choose from {', '.join(fetch.SOURCES)} or all")
    by_hand = []
    for name in names:
        source = fetch.SOURCES[name]
        try:
            print(fetch.fetch(source, args.root, args.from_dir, args.force))
        except fetch.ByHand as e:  # say how, then go on with the others
            print(e)
            by_hand.append(name)
    if by_hand:
        raise MnnEdgeError(f"{', '.join(by_hand)} must be fetched by hand (how: above), then with --from DIR")
    return 0


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(prog="mnn-data", description="Data-set tools for MNN.", formatter_class=fmt)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = sub.add_parser(
        "synth", formatter_class=fmt,
        help="render synthetic faces with exact pose/landmark/visibility labels",
        description="Render synthetic 3D heads at random yaw [-90, 90], pitch and roll [-45, 45] with "
                    "exact labels, written as NAME.jpg + NAME.mat in AFLW2000-3D's layout (plus "
                    "visibility, pose_mnn, shape_3d). Deterministic for a seed, whatever --workers.")
    s.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    s.add_argument("--n", type=int, required=True, help="number of faces to render")
    s.add_argument("--seed", type=int, default=0, help="data-set seed (face i uses rng([seed, i]))")
    s.add_argument("--size", type=int, default=256, help="image side in pixels")
    s.add_argument("--workers", type=int, default=1, help="worker processes")
    s.add_argument("--force", action="store_true", help="overwrite synth_* files already in --out")
    s.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p = sub.add_parser("preview", formatter_class=fmt, help="write a PNG contact sheet of synthetic faces",
                       description="Render faces 0..N-1 of a synthetic data set into one PNG grid.")
    p.add_argument("--out", type=Path, required=True, help="PNG file to write")
    p.add_argument("--n", type=int, default=16, help="number of faces")
    p.add_argument("--seed", type=int, default=0, help="data-set seed")
    p.add_argument("--size", type=int, default=128, help="tile side in pixels")
    p.add_argument("--cols", type=int, default=4, help="tiles per row")
    p.add_argument("--landmarks", action="store_true", help="draw landmarks (green visible, red occluded)")
    c = sub.add_parser(
        "cofw", formatter_class=fmt, help="unpack COFW's official .mat (images inside) into .png + .pts files",
        description="Convert COFW_train_color.mat / COFW_test_color.mat (MATLAB v7.3 needs h5py: "
                    "pip install 'mnn-edge[data]') into cofw_{train,test}_NNNN.png + .pts (29 points, 1-based, "
                    "third column = occluded), the per-image form that --format cofw reads.")
    c.add_argument("--mat", type=Path, required=True, help="COFW_train_color.mat or COFW_test_color.mat")
    c.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    c.add_argument("--force", action="store_true", help="overwrite cofw_* files already in --out")
    c.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    from mnn_edge.data.sample import FORMATS
    from mnn_edge.data.teacher.fsanet import TEACHER_MARGIN

    t = sub.add_parser(
        "pseudo-label", formatter_class=fmt, help="label head pose on real faces with a teacher model (training only)",
        description="Run a pose teacher (the FSA-Net ONNX models in --teacher, MediaPipe's Face Landmarker, or "
                    "both combined) on every face of --data and write its yaw/pitch/roll as a JSON Lines labels "
                    "file with its provenance (teacher files' SHA-256, crop, rule). FSA-Net crops each face from "
                    "its 68 landmarks; the Face Landmarker reads the mesh nearest them (faces it cannot find get "
                    "no label, counted). A stopped run resumes from OUT.partial; "
                    "the labels reach OUT only when every face is done. mnn-train and mnn-eval read them with "
                    "--pose-labels; they are marked as teacher labels, never as true ones.")
    t.add_argument("--teacher", type=Path, required=True, action="append",
                   help="teacher folder: FSA-Net ONNX models, or MediaPipe's face_landmarker.task; give both "
                        "(FSA-Net first or second) to combine them by the rule in docs/DATA_PROFILE.md")
    t.add_argument("--data", type=Path, required=True, help="dataset folder (faces with landmarks)")
    t.add_argument("--format", choices=FORMATS, default="keypoints-csv", help="reader of --data")
    t.add_argument("--out", type=Path, required=True, help="labels file to write (.jsonl)")
    t.add_argument("--margin", type=float, default=TEACHER_MARGIN,
                   help="teacher crop: each side of the landmark box widened by this fraction of its size")
    t.add_argument("--force", action="store_true", help="overwrite an existing --out")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    from mnn_edge.data.profile.dataset import DEPTH_SCALE, REREAD_BOUND_DEG

    f = sub.add_parser(
        "profile", formatter_class=fmt,
        help="re-render real faces at large yaw/pitch with exact labels (training data)",
        description="Face profiling (300W-LP's method): each face of --data is meshed in 3D by MediaPipe's Face "
                    "Landmarker, turned to --per-face drawn poses (|yaw| 20..--max-yaw, pitch within --max-pitch, "
                    "roll kept) and re-rendered with its own texture; the 68 landmarks move as projected 3D points "
                    "and the pose label is the source's label composed with the exact rotation applied. A render "
                    "is dropped (and counted) when a landmark leaves the picture or the FSA-Net teacher re-reads it "
                    f"more than {REREAD_BOUND_DEG:g} degrees off. Written as NAME.jpg + NAME.mat (--format "
                    "synthetic) into OUT.partial, renamed to OUT when complete; a stopped run resumes. Needs the "
                    "optional MediaPipe extra (pip install --no-deps 'mediapipe==1.2.3' absl-py flatbuffers).")
    f.add_argument("--data", type=Path, required=True, help="dataset folder of real faces with 68 landmarks")
    f.add_argument("--format", choices=FORMATS, default="keypoints-csv", help="reader of --data")
    f.add_argument("--subset", choices=("train", "heldout"), default=None,
                   help="one side of the person-disjoint split (keypoints-csv)")
    f.add_argument("--pose-labels", type=Path, default=None,
                   help="source poses from mnn-data pseudo-label (real frames have none of their own)")
    f.add_argument("--out", type=Path, required=True, help="output folder (must not exist unless --force)")
    f.add_argument("--mesh", type=Path, required=True,
                   help="folder with MediaPipe's face_landmarker.task and canonical_face_model.obj")
    f.add_argument("--teacher", type=Path, required=True, help="FSA-Net teacher folder that re-reads every render")
    f.add_argument("--per-face", type=int, default=2, help="renders per source face")
    f.add_argument("--seed", type=int, default=0, help="draws of face i use rng([seed, i])")
    f.add_argument("--max-yaw", type=float, default=75.0, help="largest |yaw| of a render, degrees")
    f.add_argument("--max-pitch", type=float, default=40.0, help="largest |pitch| of a render, degrees")
    f.add_argument("--depth-scale", type=float, default=DEPTH_SCALE,
                   help="multiplies the mesh's depth (MediaPipe's is too flat; calibrated in docs/DATA_PROFILE.md)")
    f.add_argument("--limit", type=int, default=None, help="profile only the first N usable faces")
    f.add_argument("--workers", type=int, default=1, help="worker processes (results do not depend on it)")
    f.add_argument("--force", action="store_true", help="replace an existing --out when the new one is complete")
    f.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    g = sub.add_parser(
        "fetch", formatter_class=fmt, help="get the external data and teacher models into their repository places",
        description="Copy (--from DIR) or download an external input the pipeline names into its git-ignored "
                    "repository-relative folder (data/..., models/...), checking every file's SHA-256 in a "
                    "temporary folder that is renamed into place only when all match. Sources whose licence or "
                    "missing address rules out a download say how to get them by hand. See docs/DATA.md.")
    g.add_argument("names", nargs="*", metavar="NAME", help="what to fetch (see --list), or all")
    g.add_argument("--from", dest="from_dir", type=Path, default=None, metavar="DIR",
                   help="copy from this folder instead of downloading: the entry's own folder, or a mirror "
                        "laid out like the development mirror (data/real/..., models/fsanet, ...)")
    g.add_argument("--list", action="store_true", help="list every source: size, destination, present, licence")
    g.add_argument("--root", type=Path, default=Path("."), help="repository root the destinations are under")
    g.add_argument("--force", action="store_true", help="replace a destination that holds other files")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "synth":
        return _synth(SynthConfig(out=args.out, n=args.n, seed=args.seed, size=args.size, workers=args.workers,
                                  force=args.force, progress=not args.no_progress))
    if args.command == "preview":
        return _preview(args)
    if args.command == "cofw":
        return _cofw(args)
    if args.command == "pseudo-label":
        return _pseudo_label(args)
    if args.command == "profile":
        return _profile(args)
    if args.command == "fetch":
        return _fetch(args)
    raise MnnEdgeError(f"unknown command {args.command}")


def entry() -> int:
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(entry())
