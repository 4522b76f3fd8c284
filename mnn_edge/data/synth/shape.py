"""Per-face random 3D shape and expression: landmark displacements plus a global stretch.

Displacements are defined on the 68 landmarks (mouth opening, smile, eyelids, brows, nose, jaw,
chin) and spread to the rest of the head through the template's smooth weights, so the skin
follows the landmarks. All in mean-face units (half face width ~0.71).
"""

from __future__ import annotations

import numpy as np

from mnn_edge.data.synth.head_mesh import HeadMesh

_CHIN = np.array([5, 6, 7, 8, 9, 10, 11])
_CHIN_W = np.array([0.3, 0.55, 0.85, 1.0, 0.85, 0.55, 0.3])
_CORNERS = np.array([48, 54, 60, 64])


def landmark_displacements(rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    """(68,3) displacement of the landmarks for one random identity and expression."""
    d = np.zeros((68, 3))
    # Mouth opening: lower lip and chin drop, the chin most at its centre.
    mouth = 0.0 if rng.random() < 0.45 else rng.uniform(0.0, 0.22) ** 1.3 * 1.6
    d[[65, 66, 67], 1] -= mouth
    d[[55, 56, 57, 58, 59], 1] -= 0.92 * mouth
    d[_CHIN, 1] -= 0.55 * mouth * _CHIN_W
    d[[61, 62, 63], 1] += 0.05 * mouth
    d[_CORNERS, 1] -= 0.3 * mouth
    # Smile (or a frown when negative): corners out and up.
    # Per-corner amounts around a shared one: symmetric smiles, smirks, and lopsided frowns.
    smile = (rng.uniform(-0.25, 1.0) + rng.normal(0, 0.3, size=2)[[0, 1, 0, 1]]) * 0.05
    d[_CORNERS, 0] += np.sign(base[_CORNERS, 0]) * smile
    d[_CORNERS, 1] += 0.7 * smile
    # Mouth width and lip thickness.
    lips = np.arange(48, 68)
    d[lips, 0] += base[lips, 0] * rng.uniform(-0.15, 0.15)
    thick = rng.uniform(-0.015, 0.02)
    d[[50, 51, 52], 1] += thick
    d[[56, 57, 58], 1] -= thick
    # Nose: protrusion about the cheek plane, length (tip up/down), width of the nostrils.
    nose = np.arange(27, 36)
    prot = rng.uniform(0.8, 1.3)
    d[nose, 2] += (base[nose, 2] + 0.3) * (prot - 1.0)
    d[[30, 31, 32, 33, 34, 35], 1] += rng.uniform(-0.04, 0.03)
    d[[31, 32, 34, 35], 0] += base[[31, 32, 34, 35], 0] * rng.uniform(-0.2, 0.3)
    # Eyes: opening (a few blinks), size; brows: raise and inner frown.
    if rng.random() < 0.06:
        open_ = -0.035
    else:
        open_ = rng.uniform(-0.015, 0.03)
    d[[37, 38, 43, 44], 1] += open_
    d[[40, 41, 46, 47], 1] -= 0.3 * open_
    eyes = np.arange(36, 48)
    centre = np.where(eyes[:, None] < 42, base[36:42].mean(axis=0), base[42:48].mean(axis=0))
    d[eyes] += (base[eyes] - centre) * rng.uniform(-0.12, 0.15)
    brows = np.arange(17, 27)
    d[brows, 1] += rng.uniform(-0.03, 0.07) + np.where(brows < 22, 1, -1) * rng.normal(0, 0.012)
    d[[20, 21, 22, 23], 1] += rng.uniform(-0.035, 0.02)
    # Jaw: wider/narrower towards the bottom, longer/shorter chin.
    jaw = np.arange(0, 17)
    low = np.clip((0.4 - base[jaw, 1]) / 1.1, 0, 1)
    d[jaw, 0] += base[jaw, 0] * low * rng.uniform(-0.15, 0.2)
    d[_CHIN, 1] += rng.uniform(-0.06, 0.05) * _CHIN_W
    # A little asymmetry everywhere.
    d += rng.normal(0.0, 0.007, size=(68, 3))
    return d


def global_stretch(rng: np.random.Generator) -> np.ndarray:
    """Diagonal (3,) stretch of the whole head: width, height, depth."""
    return np.array([rng.uniform(0.9, 1.1), rng.uniform(0.92, 1.1), rng.uniform(0.85, 1.2)])


def skull_shape(rng: np.random.Generator) -> np.ndarray:
    """(4,): skull stretch (x, y, z) about the head centre away from the face, and cheek fullness."""
    return np.array([rng.uniform(0.92, 1.08), rng.uniform(0.92, 1.1), rng.uniform(0.9, 1.1),
                     rng.uniform(-0.04, 0.07)])


def deformed_vertices(mesh: HeadMesh, lm_disp: np.ndarray, stretch: np.ndarray,
                      skull: np.ndarray | None = None) -> np.ndarray:
    """All mesh vertices after the landmark displacements (spread over the head), the skull shape
    (vertices far from the landmarks only, so the landmarks stay exact) and the global stretch."""
    verts = np.array(mesh.vertices, dtype=np.float64)
    head = slice(68, mesh.head_vertex_count)
    if skull is not None:
        centre = verts[:mesh.head_vertex_count].mean(axis=0)
        # 0 within 0.15 of a landmark, 1 from 0.55 on: the skin around the landmarks keeps its
        # place, or a stretched skull would bulge over the jaw line and hide it from the front.
        far = np.clip((mesh.face_distance - 0.15) / 0.4, 0, 1) ** 2
        off = verts[head] - centre
        verts[head] = centre + off * (1 + (skull[:3] - 1) * far[:, None])
        x, y, z = mesh.vertices[head].T
        cheek = np.exp(-(((np.abs(x) - 0.42) ** 2 + (y + 0.2) ** 2 + (z + 0.55) ** 2) / 0.04))
        verts[head] += off * (skull[3] * cheek)[:, None]
    verts[:68] += lm_disp
    verts[head] += mesh.spread @ lm_disp
    return verts * stretch
