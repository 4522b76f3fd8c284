"""The tracking benchmark's numbers as Markdown: what ``bench/tracking.py`` prints and what
``mnn-report --tracking`` puts in the report, from the same JSON document
(``{"machine": {...}, "engines": {ARTIFACT: [clip row, ...]}}``, rows from
:func:`mnn_edge.run.track_eval.evaluate_clip`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from mnn_edge.errors import MnnEdgeError

_SETTING_KEYS = ("mae", "nme_box", "misses", "faces", "false_faces", "id_switches", "recovery_max", "fps",
                 "p50_ms", "p99_ms", "detector_runs")


def _cell(v, fmt: str = "{:.2f}") -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else fmt.format(v)


def markdown(engine: str, rows: list[dict], heading: str = "###") -> str:
    """One table per artifact: a row per clip and setting."""
    lines = [f"{heading} {engine}", "",
             "| clip | setting | pose MAE video | per image | Δ | NME box % video | per image | misses | false "
             "| id switches | cut → served (frames, max) | FPS | p50 ms | p99 ms | p99/p50 | detector runs |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        ref = row["per_image"]
        for name, r in row["settings"].items():
            nme = None if r["nme_box"] is None else 100 * r["nme_box"]
            ref_nme = None if ref["nme_box"] is None else 100 * ref["nme_box"]
            lines.append(f"| {row['clip']} | {name} | {_cell(r['mae'])} | {_cell(ref['mae'])} | "
                         f"{_cell(r['mae'] - ref['mae'], '{:+.2f}')} | {_cell(nme)} | {_cell(ref_nme)} | "
                         f"{r['misses']}/{r['faces']} | {r['false_faces']} | {r['id_switches']} | "
                         f"{r['recovery_max']} | "
                         f"{_cell(r['fps'], '{:.1f}')} | {_cell(r['p50_ms'], '{:.1f}')} | "
                         f"{_cell(r['p99_ms'], '{:.1f}')} | {_cell(r['p99_ms'] / r['p50_ms'])} | "
                         f"{r['detector_runs']} |")
    return "\n".join(lines)


def load_tracking(path: Path) -> dict:
    """A tracking benchmark document, checked enough that rendering it cannot fail half-way."""
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise MnnEdgeError(f"tracking results not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MnnEdgeError(f"{path}: not a tracking benchmark JSON document ({e})") from e
    engines = doc.get("engines") if isinstance(doc, dict) else None
    if not isinstance(engines, dict) or not engines:
        raise MnnEdgeError(f"{path}: no 'engines' results; make it with python bench/tracking.py --json FILE")
    for engine, rows in engines.items():
        for row in rows if isinstance(rows, list) else [None]:
            ok = (isinstance(row, dict) and isinstance(row.get("per_image"), dict)
                  and {"mae", "nme_box"} <= set(row["per_image"]) and isinstance(row.get("settings"), dict)
                  and all(isinstance(r, dict) and set(_SETTING_KEYS) <= set(r) for r in row["settings"].values()))
            if not ok:
                raise MnnEdgeError(f"{path}: the results of {engine} are not tracking benchmark rows "
                                   f"(a clip, per_image and settings with {', '.join(_SETTING_KEYS)})")
    return doc
