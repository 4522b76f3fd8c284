"""The accuracy-vs-speed scatter (``tradeoff.png``) with the Pareto front marked."""

from __future__ import annotations

from pathlib import Path

from mnn_edge.fileio import atomic_path
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


def _panel(ax, rows: list[ReportRow], metric: str, scale: float, ylabel: str, title: str) -> None:
    pts = [(r.fps, r.accuracy.get(metric) * scale) for r in rows]
    for k, (r, (x, y)) in enumerate(zip(rows, pts)):
        ax.scatter(x, y, s=70, c=COLOURS.get(r.precision_label, "grey"), marker=MARKERS.get(r.model, "^"),
                   edgecolors="black", linewidths=0.6, zorder=3)
        # alternate the label side so neighbouring points (same accuracy, different speed) stay readable
        dy = 10 if k % 2 == 0 else -14
        ax.annotate(_label(r, rows), (x, y), textcoords="offset points", xytext=(6, dy), fontsize=9)
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
    ax.margins(x=0.25, y=0.25)


def plot_tradeoff(rows: list[ReportRow], out: Path, title: str = "") -> bool:
    """Write the PNG; False (and nothing written) when no row has both a speed and an accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    pose_rows = [r for r in rows if r.fps and r.accuracy is not None and r.accuracy.get("mae") is not None]
    nme_rows = [r for r in pose_rows if r.accuracy.get("nme") is not None]
    if not pose_rows:
        return False
    panels = 2 if nme_rows else 1
    fig, axes = plt.subplots(1, panels, figsize=(7.5 * panels, 6.0), squeeze=False)
    _panel(axes[0][0], pose_rows, "mae", 1.0, "pose MAE, mean of yaw/pitch/roll [deg]", "Head pose")
    if nme_rows:
        _panel(axes[0][1], nme_rows, "nme", 100.0, "landmark NME [% inter-ocular]", "Landmarks (full model)")
    handles = [Line2D([], [], marker="o", ls="", color=c, markeredgecolor="black", label=p) for p, c in COLOURS.items()]
    handles += [Line2D([], [], marker=m, ls="", color="white", markeredgecolor="black",
                       label="encoder-only" if k == "pose" else "full model") for k, m in MARKERS.items()]
    handles.append(Line2D([], [], ls="--", color="black", label="Pareto front (circled)"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=10, frameon=False)
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
