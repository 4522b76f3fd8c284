"""Appearance of a synthetic face: per-pixel albedo from material + canonical (texture) position, and shading.

Texture is procedural in the template's canonical coordinates (mean-face units), so features stay
attached to the skin whatever the pose or deformation: hairline, brows, eyelids and lashes,
nostrils, the lip line, nasolabial folds, eye sockets, iris and pupil, teeth, beard.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnn_edge.data.synth.head_mesh import Material
from mnn_edge.data.synth.scene import hair_colour, skin_tone
from mnn_edge.meanface import mean_face

_UPPER_LIDS = ((36, 37, 38, 39), (42, 43, 44, 45))
_LOWER_LIDS = ((39, 40, 41, 36), (45, 46, 47, 42))
_BROWS = ((17, 18, 19, 20, 21), (22, 23, 24, 25, 26))
_LIP_LINES = ((60, 61, 62, 63, 64), (64, 65, 66, 67, 60))
_FOLDS = (np.array([[-0.16, -0.03], [-0.22, -0.14], [-0.27, -0.29]]),
          np.array([[0.16, -0.03], [0.22, -0.14], [0.27, -0.29]]))
_NOSTRILS = (np.array([-0.065, -0.088]), np.array([0.072, -0.084]))


@dataclass(frozen=True)
class Look:
    """Everything random about a face's appearance, drawn once per face."""

    tone: np.ndarray  # skin RGB
    hair: np.ndarray  # hair RGB
    hair_front: float  # hairline height at the forehead (canonical y; > 1.3 = bald on top)
    hair_back: float  # hairline height at the nape
    hair_wiggle: tuple[float, float]  # hairline waviness (frequency, phase)
    hair_volume: float  # hair shell offset, fraction of the head radius
    long_hair: float  # 0 = none, else length factor of the curtain behind the ears
    brow_thick: float
    brow_strength: float
    beard: float  # 0 = none, else opacity
    lip_tint: np.ndarray
    iris: np.ndarray
    gaze: np.ndarray  # (2,) iris offset
    cloth: np.ndarray
    fold: float  # nasolabial fold darkness
    teeth: bool  # upper teeth show when the mouth is open
    hat: float  # 0 = none, else the cap rim's height at the forehead (canonical y)
    hat_colour: np.ndarray
    cheek_red: float

    @staticmethod
    def sample(rng: np.random.Generator) -> Look:
        bald = rng.random() < 0.07
        return Look(
            tone=skin_tone(rng), hair=hair_colour(rng),
            hair_front=1.45 if bald else float(rng.uniform(0.68, 1.02)),
            hair_back=float(rng.uniform(-0.5, 0.2)),
            hair_wiggle=(float(rng.uniform(5, 18)), float(rng.uniform(0, 2 * np.pi))),
            hair_volume=0.0 if bald else float(rng.uniform(0.02, 0.14)),
            long_hair=float(rng.uniform(0.45, 1.15)) if (not bald and rng.random() < 0.35) else 0.0,
            brow_thick=float(rng.uniform(0.022, 0.042)), brow_strength=float(rng.uniform(0.65, 1.0)),
            beard=float(rng.uniform(0.25, 0.8)) if rng.random() < 0.1 else 0.0,
            lip_tint=np.array([0.82, 0.52, 0.52]) * rng.uniform(0.75, 1.0),
            iris=(np.array([0.25, 0.15, 0.08]) * rng.uniform(0.4, 1.6) if rng.random() < 0.8
                  else rng.uniform(0.2, 0.5, size=3)),
            gaze=rng.normal(0, 0.02, size=2), cloth=rng.uniform(0, 1, size=3),
            fold=float(rng.uniform(0.0, 0.25)), cheek_red=float(rng.uniform(0, 0.06)),
            teeth=bool(rng.random() < 0.6),
            hat=float(rng.uniform(0.68, 0.9)) if rng.random() < 0.07 else 0.0,
            hat_colour=rng.uniform(0, 1, size=3),
        )

    def is_hair(self, canon: np.ndarray) -> np.ndarray:
        """Hair above a hairline falling from the forehead (front) to the nape going backwards."""
        x, y, z = canon[:, 0], canon[:, 1], canon[:, 2]
        behind = np.clip((-z - 0.55) / 0.9, 0, 1)
        freq, phase = self.hair_wiggle
        line = self.hair_front - behind * (self.hair_front - self.hair_back) + 0.035 * np.sin(x * freq + phase)
        return y > line

    def is_hat(self, canon: np.ndarray) -> np.ndarray:
        """A knitted cap over the top of the head, its rim tilted down toward the back."""
        if not self.hat:
            return np.zeros(len(canon), dtype=bool)
        y, z = canon[:, 1], canon[:, 2]
        behind = np.clip((-z - 0.3) / 1.6, 0, 1)
        return y > self.hat - 0.45 * behind


def _polyline_distance(xy: np.ndarray, line: np.ndarray) -> np.ndarray:
    best = np.full(len(xy), np.inf)
    for a, b in zip(line[:-1], line[1:]):
        ab = b - a
        t = np.clip(((xy - a) @ ab) / (ab @ ab + 1e-12), 0, 1)
        best = np.minimum(best, np.linalg.norm(xy - (a + t[:, None] * ab), axis=1))
    return best


def _darken_along(col: np.ndarray, xy: np.ndarray, ok: np.ndarray, line: np.ndarray, thick: float,
                  factor: float, target: np.ndarray | None = None) -> None:
    """Blend pixels within ``thick`` of a canonical polyline toward ``factor`` x colour (or ``target``)."""
    lo, hi = line.min(axis=0) - thick, line.max(axis=0) + thick
    idx = np.nonzero(ok & (xy[:, 0] > lo[0]) & (xy[:, 0] < hi[0]) & (xy[:, 1] > lo[1]) & (xy[:, 1] < hi[1]))[0]
    if len(idx) == 0:
        return
    d = _polyline_distance(xy[idx], line)
    w = np.clip(1.5 - d / thick, 0, 1)[:, None]  # soft edge over the outer third
    goal = col[idx] * factor if target is None else np.broadcast_to(target, col[idx].shape)
    col[idx] = col[idx] * (1 - w) + goal * w


def skin_vertex_colours(rng: np.random.Generator, look: Look, canon: np.ndarray) -> np.ndarray:
    """Skin tone with low-frequency blotches and redder cheeks, per vertex."""
    k = rng.normal(0, 3.0, size=(4, 3))
    ph = rng.uniform(0, 2 * np.pi, size=4)
    blotch = np.sin(canon @ k.T + ph).mean(axis=1)
    col = look.tone[None] * (1 + 0.06 * blotch[:, None])
    cheek = np.exp(-(((np.abs(canon[:, 0]) - 0.4) ** 2 + (canon[:, 1] + 0.05) ** 2) / 0.03))
    cheek *= canon[:, 2] > -0.8
    col += cheek[:, None] * look.cheek_red * np.array([1.0, -0.4, -0.4])
    return np.clip(col, 0, 1)


def hair_albedo(look: Look, canon: np.ndarray) -> np.ndarray:
    """Hair colour with fine strands running from the crown down."""
    x, y, z = canon[:, 0], canon[:, 1], canon[:, 2] + 1.15
    theta = np.arctan2(x, z)
    # Low enough frequencies not to alias into moire at 256 px; the camera blur softens the rest.
    strands = 1 + 0.10 * np.sin(theta * 47 + 2.5 * np.sin(y * 5)) + 0.07 * np.sin(theta * 23 + y * 2)
    return look.hair * strands[:, None]


def hat_albedo(look: Look, canon: np.ndarray) -> np.ndarray:
    """Knit ribs running up the cap."""
    theta = np.arctan2(canon[:, 0], canon[:, 2] + 1.15)
    return look.hat_colour * (1 + 0.15 * np.sin(theta * 60))[:, None]


def albedo(look: Look, canon: np.ndarray, model: np.ndarray, vcol: np.ndarray, mat: np.ndarray,
           verts: np.ndarray) -> np.ndarray:
    """(P,3) albedo of face pixels given material, canonical and deformed-model positions."""
    col = vcol.copy()
    xy, z = canon[:, :2], canon[:, 2]
    # Ears are hair-covered only under long hair; short hair above an ear stays behind it.
    skinlike = (mat == Material.SKIN) | ((mat == Material.EAR) & (look.long_hair > 0))
    hair = skinlike & look.is_hair(canon)
    col[hair] = hair_albedo(look, canon[hair])
    face = (mat == Material.SKIN) & (z > -0.6) & ~hair
    lm = mean_face()[:, :2]
    # Eye sockets a little darker, then brows, lids with lashes, nostrils, lip line, folds.
    for idx in _UPPER_LIDS:
        c = lm[list(idx)].mean(axis=0)
        _darken_along(col, xy, face, np.array([c - [0.09, 0.0], c + [0.09, 0.0]]), 0.09, 0.88)
    brow_col = np.minimum(look.hair * 0.55 + 0.03, look.tone * 0.55)
    # Slanted hair strokes break up the band so brows do not look painted on.
    strokes = (look.brow_strength * (0.86 + 0.08 * np.sin(xy[:, 0] * 210 + xy[:, 1] * 95)
                                     + 0.06 * np.sin(xy[:, 0] * 137 - xy[:, 1] * 60)))[:, None]
    for idx in _BROWS:
        line = lm[list(idx)]
        lo = col.copy()
        _darken_along(lo, xy, face, line, look.brow_thick, 1.0, target=brow_col)
        col = col * (1 - strokes) + lo * strokes
    lids = face | (mat == Material.EYE)
    for idx in _UPPER_LIDS:
        _darken_along(col, xy, lids, lm[list(idx)], 0.016, 0.25)
    for idx in _LOWER_LIDS:
        _darken_along(col, xy, lids, lm[list(idx)], 0.008, 0.6)
    for c in _NOSTRILS:
        e = ((xy[:, 0] - c[0]) / 0.028) ** 2 + ((xy[:, 1] - c[1]) / 0.013) ** 2
        w = np.clip(1.6 - e, 0, 1)[:, None] * (face & (z > -0.35))[:, None]
        col = col * (1 - 0.7 * w)
    for line in _FOLDS:
        _darken_along(col, xy, face, line, 0.025, 1 - look.fold)
    if look.beard > 0:
        # Beard/stubble: darker hair mixed into the skin with a soft edge, below the cheeks.
        edge = -0.14 - 0.35 * np.clip(np.abs(xy[:, 0]) - 0.22, 0, 1) - xy[:, 1]
        w = (np.clip(edge / 0.06, 0, 1) * look.beard)[:, None] * face[:, None]
        grain = 1 + 0.25 * np.sin(xy[:, :1] * 310) * np.sin(xy[:, 1:] * 290)
        col = col * (1 - w) + (look.hair * 0.7 + 0.03) * grain * w
    lips = mat == Material.LIPS
    col[lips] = look.tone * look.lip_tint
    mouth = mat == Material.MOUTH
    col[mouth] = np.array([0.22, 0.07, 0.07])
    gap = verts[[61, 62, 63], 1].mean() - verts[[65, 66, 67], 1].mean()
    if gap > 0.06 and look.teeth:
        # Upper teeth: a band under the upper inner lip, following its curve.
        upper = verts[[60, 61, 62, 63, 64]]
        order = np.argsort(upper[:, 0])
        lip_y = np.interp(model[:, 0], upper[order, 0], upper[order, 1])
        col[mouth & (model[:, 1] > lip_y - 0.35 * gap)] = np.array([0.70, 0.68, 0.62])
    # Not inside the mouth: its canonical positions all crowd onto the closed-mouth line.
    lip_zone = (lips | face) & (z > -0.5)
    for idx in _LIP_LINES:
        _darken_along(col, xy, lip_zone, lm[list(idx)], 0.008, 0.35)
    eye = mat == Material.EYE
    if eye.any():
        col[eye] = np.array([0.72, 0.68, 0.64]) * look.tone.mean() ** 0.4
        for idx in (range(36, 42), range(42, 48)):
            c = verts[list(idx), :2].mean(axis=0) + look.gaze
            d = np.linalg.norm(model[:, :2] - c, axis=1)
            col[eye & (d < 0.05)] = look.iris
            col[eye & (d < 0.017)] = 0.03
    col[mat == Material.HAIR] = hair_albedo(look, canon[mat == Material.HAIR]) * 0.85
    col[mat == Material.CLOTH] = look.cloth
    # The head shades the top of the neck.
    neck = mat == Material.NECK
    col[neck] *= (0.55 + 0.45 * np.clip((-0.3 - canon[neck, 1:2]) / 0.9, 0, 1))
    return np.clip(col, 0, 1)


@dataclass(frozen=True)
class Light:
    direction: np.ndarray  # camera space, toward the light
    ambient: float
    diffuse: float
    specular: float
    fill: float  # strength of a fill light mirrored across the face (0 = none)

    @staticmethod
    def sample(rng: np.random.Generator) -> Light:
        # Mostly from the camera's side (photographs are lit for the face), sometimes grazing.
        d = np.array([rng.uniform(-1, 1), rng.uniform(-0.5, 1), rng.uniform(0.15, 1.0) ** 0.6])
        return Light(d / np.linalg.norm(d), float(rng.uniform(0.25, 0.6)), float(rng.uniform(0.5, 0.9)),
                     float(rng.uniform(0, 0.25)), float(rng.uniform(0, 0.4)) if rng.random() < 0.5 else 0.0)


def shade(light: Light, normals: np.ndarray, mat: np.ndarray, col: np.ndarray) -> np.ndarray:
    """Lambert + ambient times albedo, plus a specular highlight on skin."""
    n = normals / (np.linalg.norm(normals, axis=1, keepdims=True) + 1e-9)
    n = np.where(n[:, 2:3] < 0, -n, n)  # two-sided: thin pieces (ears, hair curtain) have no inside
    lam = np.clip(n @ light.direction, 0, 1)
    if light.fill > 0:
        # A dimmer fill light from the other side lifts the shadows (three-point lighting).
        fill_dir = light.direction * np.array([-1, 0.3, 1])
        lam = lam + light.fill * np.clip(n @ (fill_dir / np.linalg.norm(fill_dir)), 0, 1)
    half = light.direction + np.array([0, 0, 1.0])
    half /= np.linalg.norm(half)
    shiny = (mat == Material.SKIN) | (mat == Material.LIPS) | (mat == Material.EYE)
    spec = light.specular * np.clip(n @ half, 0, 1) ** 20 * shiny
    return np.clip(col * (light.ambient + light.diffuse * lam)[:, None] + spec[:, None], 0, 1)
