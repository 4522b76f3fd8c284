"""Before/after check for refactors: run every command on fixed inputs and digest what it writes.

    python bench/output_digest.py --out runs/digest/before     # on the old commit
    python bench/output_digest.py --out runs/digest/after \
        --report-input runs/digest/before/report_input.json     # on the new one, same report input
    python bench/output_digest.py --compare runs/digest/before runs/digest/after

Each command writes into ``OUT/files``; ``OUT/digest.json`` holds, per file, its SHA-256 and, for
JSON/JSONL, the document with timing-dependent fields (latencies, dates, machine load, elapsed
times) removed; the run's own folder name is replaced by ``<OUT>`` first. ``--compare`` passes
when every file is byte-identical, or (JSON with timings) equal after those fields are removed,
and prints each difference otherwise. Runs on the CPU in about two minutes: the shipped starter,
16 calibration frames, 4 AFLW2000-3D faces, three photos.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

# inputs in their mnn-data fetch places (docs/DATA.md), relative to the repository root it runs in
CALIB = Path("data/real/ytf_keypoints/train")
AFLW = Path("data/samples/aflw2000")
IMAGES = Path("data/samples/300w_pts")

# Keys whose values depend on the clock or the machine, not on the code's arithmetic.
VOLATILE = ("ms", "fps", "p50", "p90", "p99", "mean", "min", "max", "std", "elapsed", "seconds", "time",
            "date", "machine", "load", "throughput", "per_s", "created", "host", "runs", "timing")


def commands(files: Path, report_input: Path) -> list[list[str]]:
    exp = files / "export"
    return [
        ["mnn-export", "--out", str(exp), "--int8", "--fp16", "--calib", str(CALIB), "--calib-format",
         "keypoints-csv", "--calib-subset", "train", "--calib-limit", "16", "--ranges-dir", str(files / "calibration"),
         "--no-progress"],
        ["mnn-info"],
        ["mnn-eval", "--artifact", str(exp / "pose.int8.onnx"), "--data", str(AFLW), "--format", "aflw2000",
         "--json", str(files / "eval_pose_int8.json"), "--no-progress"],
        ["mnn-eval", "--artifact", str(exp / "mnn.onnx"), "--data", str(CALIB), "--format", "keypoints-csv",
         "--subset", "heldout", "--limit", "16", "--json", str(files / "eval_mnn.json"), "--no-progress"],
        ["mnn-bench", str(exp / "pose.onnx"), str(exp / "pose.int8.onnx"), "--runs", "3", "--warmup", "1",
         "--json", str(files / "bench.json"), "--no-progress"],
        ["mnn-run", "--engine", str(exp / "mnn.int8.onnx"), "--images", str(IMAGES), "--no-display",
         "--json", str(files / "run.jsonl"), "--quiet"],
        ["mnn-report", "--results", str(report_input), "--out", str(files / "report")],
    ]


def is_volatile(key: str) -> bool:
    return any(v in key.lower() for v in VOLATILE)


def scrub(value):
    """The document without clock/machine-dependent fields; floats rounded to 6 significant digits."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if not is_volatile(k)}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.6g}")
    return value


def digest_file(path: Path, out: Path) -> dict:
    """SHA-256 (and scrubbed JSON) of the file with this run's own folder name replaced by ``<OUT>``."""
    data = path.read_bytes().replace(str(out).encode(), b"<OUT>")
    entry: dict = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    if path.suffix in (".json", ".jsonl"):
        lines = [data.decode()] if path.suffix == ".json" else data.decode().splitlines()
        entry["scrubbed"] = [scrub(json.loads(s)) for s in lines if s.strip()]
    return entry


def run_all(out: Path, report_input: Path) -> int:
    if out.exists():
        shutil.rmtree(out)
    files = out / "files"
    files.mkdir(parents=True)
    pinned = out / "report_input.json"  # mnn-report's input, kept so the next run can use the same
    shutil.copy(report_input, pinned)
    log = []
    for cmd in commands(files, pinned):
        res = subprocess.run(cmd, capture_output=True, text=True)
        log.append({"cmd": cmd[0], "rc": res.returncode})
        (files / f"{cmd[0]}.{len(log)}.stdout.txt").write_text(res.stdout)
        print(f"{cmd[0]}: exit {res.returncode}", file=sys.stderr)
        if res.returncode != 0:
            print(res.stderr[-2000:], file=sys.stderr)
    write_digest(out, {"commands": log})
    return 0 if all(c["rc"] == 0 for c in log) else 1


def compare(a: Path, b: Path) -> int:
    da = json.loads((a / "digest.json").read_text())
    db = json.loads((b / "digest.json").read_text())
    bad = 0
    if da["commands"] != db["commands"]:
        print(f"exit codes differ: {da['commands']} vs {db['commands']}")
        bad += 1
    for name in sorted(set(da["files"]) | set(db["files"])):
        fa, fb = da["files"].get(name), db["files"].get(name)
        if fa is None or fb is None:
            print(f"{name}: only in {'after' if fa is None else 'before'}")
            bad += 1
        elif fa["sha256"] == fb["sha256"]:
            print(f"{name}: byte-identical")
        elif "scrubbed" in fa and fa["scrubbed"] == fb.get("scrubbed"):
            print(f"{name}: identical apart from timing fields")
        else:
            print(f"{name}: DIFFERS ({fa['bytes']} vs {fb['bytes']} bytes)")
            bad += 1
    print("PASS" if bad == 0 else f"FAIL: {bad} difference(s)")
    return 0 if bad == 0 else 1


def write_digest(out: Path, digest: dict) -> None:
    """``digest`` plus every file the commands wrote (their stdout aside), as OUT/digest.json."""
    files = out / "files"
    digest["files"] = {str(p.relative_to(files)): digest_file(p, out) for p in sorted(files.rglob("*"))
                       if p.is_file() and not p.name.endswith(".stdout.txt")}
    (out / "digest.json").write_text(json.dumps(digest, indent=1, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="folder for this run's outputs and digest.json")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    ap.add_argument("--redigest", type=Path, metavar="OUT", help="digest an earlier run's files again")
    ap.add_argument("--report-input", type=Path, default=Path("bench/report/results.json"),
                    help="mnn-report's results file; for an after-run, the before-run's OUT/report_input.json")
    args = ap.parse_args(argv)
    if args.redigest:  # an earlier run's files digested again, after a change to the digest rules
        write_digest(args.redigest, json.loads((args.redigest / "digest.json").read_text()))
        return 0
    if args.compare:
        return compare(*args.compare)
    if args.out is None:
        ap.error("give --out or --compare")
    return run_all(args.out, args.report_input)


if __name__ == "__main__":
    sys.exit(main())
