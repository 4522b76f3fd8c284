"""``mnn-run``: head pose on a camera, a video or images, with overlays and JSON output."""

from __future__ import annotations

import sys

from mnn_edge.cli_util import EXIT_INTERRUPTED, EXIT_TERMINATED, run_cli
from mnn_edge.run.app import run, stream_output_path
from mnn_edge.run.options import run_config


def main(argv: list[str] | None = None) -> int:
    cfg = run_config(sys.argv[1:] if argv is None else argv)
    summary = run(cfg)
    print(summary.timing.table())
    ends = ("terminated (SIGTERM)" if summary.terminated else "interrupted") if summary.interrupted else \
        ("stopped (q)" if summary.stopped_by_user else "done")
    inline = summary.detector_runs - summary.detector_background
    print(f"{ends}: {summary.frames} frame(s), {summary.faces} face(s), {summary.frames_without_face} frame(s) "
          f"without a face; detector ran {summary.detector_runs} time(s): {inline} inline (the detect row "
          f"above), {summary.detector_background} in the background")
    n = len(cfg.sources)
    outputs = [(stream_output_path(cfg.output, k, n), "annotated output") for k in range(n)] if cfg.output else []
    for path, what in (*outputs, (cfg.json, "JSON lines"), (cfg.timing_json, "timing JSON")):
        if path is not None and path.exists():
            print(f"{what}: {path}")
    if len(summary.streams) > 1:
        print(summary.stream_table())
    problems = [*summary.stream_errors, summary.output_failed]
    for problem in filter(None, problems):
        print(f"error: {problem}", file=sys.stderr)
    if any(problems):  # a failed stream fails the run, even when the others finished
        return 1
    if summary.frames == 0 and not summary.interrupted:
        where = " or ".join(s.describe() for s in cfg.sources)
        print(f"error: no frame could be read from {where} (unreadable images, or not a video)", file=sys.stderr)
        return 1
    if summary.interrupted:
        return EXIT_TERMINATED if summary.terminated else EXIT_INTERRUPTED
    return 0


def entry() -> None:
    sys.exit(run_cli(main))
