"""The face-mesh topology the profiler warps with: MediaPipe's canonical face mesh.

``canonical_face_model.obj`` holds the 468 face-mesh points in landmark order and their 898
triangles (Apache 2.0, ``models/mediapipe``). Its one boundary loop is the face oval.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnn_edge.errors import MnnEdgeError

MESH_POINTS = 468


@dataclass(frozen=True)
class MeshTopology:
    triangles: np.ndarray  # (T, 3) int: counter-clockwise seen from the front with y up
    oval: np.ndarray  # (K,) int: the mesh's boundary loop, in order around the face


def boundary_loop(triangles: np.ndarray) -> np.ndarray:
    """Vertex ids of the single boundary loop of an open triangle mesh, in order."""
    edges = Counter(tuple(sorted((int(a), int(b)))) for t in triangles for a, b in ((t[0], t[1]), (t[1], t[2]),
                                                                                       (t[2], t[0])))
    adj: dict[int, list[int]] = {}
    for (a, b), n in edges.items():
        if n == 1:
            adj.setdefault(a, []).append(b)
            adj.setdefault(b, []).append(a)
    if not adj or any(len(v) != 2 for v in adj.values()):
        raise MnnEdgeError("the face mesh has no single boundary loop")
    loop, prev = [next(iter(adj))], None
    while True:
        nxt = [n for n in adj[loop[-1]] if n != prev]
        prev = loop[-1]
        if nxt[0] == loop[0]:
            break
        loop.append(nxt[0])
    if len(loop) != len(adj):
        raise MnnEdgeError(f"the face mesh's boundary has several loops ({len(adj)} edges, first loop {len(loop)})")
    return np.asarray(loop)


def load_topology(obj_path: str | Path) -> MeshTopology:
    """Triangles of an ``.obj`` face mesh (``f`` lines, 1-based ``v/vt`` indices) and its oval."""
    path = Path(obj_path)
    if not path.is_file():
        from mnn_edge.data.fetch import fetch_hint

        raise MnnEdgeError(f"face mesh {path} does not exist (canonical_face_model.obj of MediaPipe's face mesh)"
                           f"{fetch_hint(path)}")
    tris = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "f":
            tris.append([int(p.split("/")[0]) - 1 for p in parts[1:4]])
    triangles = np.asarray(tris, dtype=np.int64)
    if triangles.ndim != 2 or len(triangles) == 0 or triangles.min() < 0 or triangles.max() >= MESH_POINTS:
        raise MnnEdgeError(f"{path} is not a {MESH_POINTS}-point face mesh (found {len(tris)} triangles)")
    return MeshTopology(triangles=triangles, oval=boundary_loop(triangles))
