"""The accuracy-vs-speed scatter (``tradeoff.png``) with the Pareto front marked.

Read right by a person, not only drawn: each panel's accuracy axis spans at least the tolerance a
lower precision is allowed against FP32 on each side, with that band shaded as "no loss", so a
difference of a hundredth of a degree does not fill the plot and look like a trade-off; artifacts
timed off the backend they are made for (the TensorRT-flavour INT8 files on ONNX Runtime) are left
out and named in a note; points that coincide share one label.
"""

from __future__ import annotations

from pathlib import Path

from mnn_edge.fileio import atomic_path
from mnn_edge.report.quantization import INT8_MAX_MAE_INCREASE, INT8_MAX_NME_INCREASE
from mnn_edge.report.rows import ReportRow

COLOURS = {"fp32": "#1f77b4", "fp16": "#2ca02c", "int8 (cpu)": "#d62728", "int8 (trt)": "#ff7f0e"}
MARKERS = {"pose": "o", "full": "s"}


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (higher x = faster, lower y = more accurate).

    Sorted by x descending: a point is on the front when its y is below every faster point's.
    Returned in order of increasing x, ready to draw as a line.
    """
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], points[i][1]))
    front, best_y = [], float("inf")
    for i in order:
        if points[i][1] < best_y:
            front.append(i)
            best_y = points[i][1]
    return sorted(front, key=lambda i: points[i][0])


def _label(row: ReportRow, all_rows: list[ReportRow]) -> str:
    """The row's label without the backend/device when every point shares them (the title says so)."""
    if len({(r.backend, r.device) for r in all_rows}) == 1:
        return f"{'enc' if row.model == 'pose' else 'full'} {row.precision_label}"
    return row.label


def off_target(row: ReportRow) -> bool:
    """A TensorRT-flavour INT8 file timed on another backend: its speed says nothing of its use."""
    return row.flavour == "trt" and row.backend != "tensorrt"


def label_groups(pts: list[tuple[float, float]], near: tuple[float, float]) -> list[list[int]]:
    """Indices of points within ``near`` (dx, dy) of a group's first point, in order: one label each."""
    groups: list[list[int]] = []
    for i, (x, y) in enumerate(pts):
        for g in groups:
            x0, y0 = pts[g[0]]
            if abs(x - x0) <= near[0] and abs(y - y0) <= near[1]:
                g.append(i)
                break
        else:
            groups.append([i])
    return groups


LABEL_LEVELS = (10, -14, 24, -28, 38, -42)  # points above (+) / below (-) a marker
CHAR_PT = 5.2  # width of one 9-point character, points


def label_offsets(starts: list[float], lengths: list[int]) -> list[int]:
    """A vertical offset per label (x ``starts`` in points, text ``lengths`` in characters): the first
    level where it overlaps no label already placed at that level, so neighbours stay readable."""
    placed: dict[int, list[tuple[float, float]]] = {lv: [] for lv in LABEL_LEVELS}
    out = [LABEL_LEVELS[0]] * len(starts)
    for i in sorted(range(len(starts)), key=lambda k: starts[k]):
        span = (starts[i], starts[i] + 6 + lengths[i] * CHAR_PT)
        out[i] = next((lv for lv in LABEL_LEVELS
                       if all(span[1] < a or span[0] > b for a, b in placed[lv])), LABEL_LEVELS[-1])
        placed[out[i]].append(span)
    return out


def accuracy_limits(values: list[float], reference: float | None, tolerance: float) -> tuple[float, float]:
    """y limits spanning every value and at least ``tolerance`` on each side of the FP32 reference."""
    centre = reference if reference is not None else sum(values) / len(values)
    lo, hi = min(min(values), centre - tolerance), max(max(values), centre + tolerance)
    pad = 0.15 * (hi - lo)
    return lo - pad, hi + pad


def _panel(ax, rows: list[ReportRow], metric: str, scale: float, ylabel: str, title: str,
           tolerance: float) -> None:
    pts = [(r.fps, r.accuracy.get(metric) * scale) for r in rows]
    fp32 = [y for r, (_, y) in zip(rows, pts) if r.precision == "fp32"]
    reference = min(fp32) if fp32 else None
    ylim = accuracy_limits([y for _, y in pts], reference, tolerance)
    if reference is not None:
        ax.axhspan(reference - tolerance, reference + tolerance, color="#2ca02c", alpha=0.08, zorder=1,
                   label=f"within {tolerance:g} of FP32: no loss")
    for r, (x, y) in zip(rows, pts):
        ax.scatter(x, y, s=70, c=COLOURS.get(r.precision_label, "grey"), marker=MARKERS.get(r.model, "^"),
                   edgecolors="black", linewidths=0.6, zorder=3)
    xs = [p[0] for p in pts]
    near = (0.04 * (max(xs) - min(xs) or max(xs)), 0.04 * (ylim[1] - ylim[0]))
    groups = label_groups(pts, near)
    texts = [" = ".join(_label(rows[i], rows) for i in g) for g in groups]
    ax.margins(x=0.25)
    x0, x1 = ax.get_xlim()
    width_pt = ax.get_window_extent().width * 72.0 / ax.figure.dpi
    starts = [(pts[g[0]][0] - x0) / (x1 - x0) * width_pt for g in groups]
    for g, text, dy in zip(groups, texts, label_offsets(starts, [len(t) for t in texts])):
        ax.annotate(text, pts[g[0]], textcoords="offset points", xytext=(6, dy), fontsize=9)
    front = pareto_front(pts)
    ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "--", color="black", lw=1.2,
            alpha=0.7, zorder=2, label="Pareto front")
    ax.scatter([pts[i][0] for i in front], [pts[i][1] for i in front], s=220, facecolors="none",
               edgecolors="black", linewidths=1.2, zorder=4)
    xs = [p[0] for p in pts]
    if min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")  # CPU and GPU results in one plot span orders of magnitude
    ax.set_xlabel("throughput at batch 1 [frames/s]  (higher is better)", fontsize=11)
    ax.set_ylabel(ylabel + "  (lower is better)", fontsize=11)
    ax.set_title(title, fontsize=12)
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")  # absolute values, no "+1.12e2" offset
    ax.grid(True, alpha=0.3)
    ax.margins(x=0.25)
    ax.set_ylim(*ylim)


def plot_tradeoff(rows: list[ReportRow], out: Path, title: str = "") -> bool:
    """Write the PNG; False (and nothing written) when no row has both a speed and an accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    measured = [r for r in rows if r.fps and r.accuracy is not None and r.accuracy.get("mae") is not None]
    left_out = [r for r in measured if off_target(r)]
    pose_rows = [r for r in measured if not off_target(r)]
    nme_rows = [r for r in pose_rows if r.accuracy.get("nme") is not None]
    if not pose_rows:
        return False
    panels = 2 if nme_rows else 1
    fig, axes = plt.subplots(1, panels, figsize=(7.5 * panels, 6.0), squeeze=False)
    _panel(axes[0][0], pose_rows, "mae", 1.0, "pose MAE, mean of yaw/pitch/roll [deg]", "Head pose",
           INT8_MAX_MAE_INCREASE)
    if nme_rows:
        _panel(axes[0][1], nme_rows, "nme", 100.0, "landmark NME [% inter-ocular]", "Landmarks (full model)",
               INT8_MAX_NME_INCREASE)
    shown = {r.precision_label for r in pose_rows}
    handles = [Line2D([], [], marker="o", ls="", color=c, markeredgecolor="black", label=p)
               for p, c in COLOURS.items() if p in shown]
    handles += [Line2D([], [], marker=m, ls="", color="white", markeredgecolor="black",
                       label="encoder-only" if k == "pose" else "full model") for k, m in MARKERS.items()]
    handles.append(Line2D([], [], ls="--", color="black", label="Pareto front (circled)"))
    handles.append(Line2D([], [], lw=8, color="#2ca02c", alpha=0.15, label="no loss vs FP32 (tolerance)"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
    if left_out:
        names = ", ".join(sorted(r.name for r in left_out))
        fig.text(0.5, 0.005, f"not plotted: {names} (TensorRT-flavour INT8, timed here on "
                 f"{left_out[0].backend}: their speed is meant for TensorRT)", ha="center", fontsize=8)
    setups = sorted({f"{r.backend} on {r.device}" for r in pose_rows})
    title = f"{title} ({', '.join(setups)})" if len(setups) == 1 and title else title
    if title:
        fig.suptitle(title, fontsize=13)
    top = 1.0 if not title else (0.95 if "\n" not in title else 0.91)
    fig.tight_layout(rect=(0, 0.07, 1, top))
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return True
