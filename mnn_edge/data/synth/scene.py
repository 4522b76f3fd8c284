"""2D parts of a synthetic scene: backgrounds, occluders and camera artefacts (OpenCV/numpy)."""

from __future__ import annotations

import cv2
import numpy as np

# Skin tones from light to dark (RGB, 0..1); a face draws a point along this chain.
SKIN_TONES = np.array([
    [0.96, 0.80, 0.70], [0.88, 0.68, 0.56], [0.78, 0.57, 0.44],
    [0.64, 0.45, 0.32], [0.47, 0.32, 0.22], [0.32, 0.21, 0.15],
])
HAIR_COLOURS = np.array([
    [0.06, 0.05, 0.05], [0.15, 0.10, 0.07], [0.30, 0.20, 0.12], [0.55, 0.40, 0.24],
    [0.80, 0.68, 0.45], [0.55, 0.25, 0.12], [0.60, 0.60, 0.60], [0.88, 0.88, 0.86],
])
_HAIR_P = np.array([0.3, 0.25, 0.15, 0.1, 0.07, 0.04, 0.05, 0.04])


def skin_tone(rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0, len(SKIN_TONES) - 1)
    i = min(int(t), len(SKIN_TONES) - 2)
    c = SKIN_TONES[i] * (1 - (t - i)) + SKIN_TONES[i + 1] * (t - i)
    return np.clip(c * rng.uniform(0.93, 1.07, size=3), 0, 1)


def hair_colour(rng: np.random.Generator) -> np.ndarray:
    c = HAIR_COLOURS[rng.choice(len(HAIR_COLOURS), p=_HAIR_P)]
    return np.clip(c * rng.uniform(0.85, 1.15, size=3), 0, 1)


def smooth_noise(rng: np.random.Generator, size: int, cells: int, channels: int = 1) -> np.ndarray:
    """Band-limited noise in [-1, 1]: a random coarse grid upsampled bicubically."""
    grid = rng.uniform(-1, 1, size=(cells + 3, cells + 3, channels)).astype(np.float32)
    up = cv2.resize(grid, (size + 3 * size // cells, size + 3 * size // cells), interpolation=cv2.INTER_CUBIC)
    up = up.reshape(up.shape[0], up.shape[1], channels)
    o = size // cells
    return np.clip(up[o:o + size, o:o + size], -1, 1)


def _muted(rng: np.random.Generator) -> np.ndarray:
    """A random colour, usually desaturated: real backgrounds are mostly walls, sky, foliage, rooms."""
    c = rng.uniform(0, 1, size=3)
    grey = c.mean()
    return grey + (c - grey) * rng.uniform(0.1, 1.0) ** 1.5


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(S,S,3) float32 RGB in [0,1]: gradient + multi-scale noise + random clutter shapes."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    ang = rng.uniform(0, 2 * np.pi)
    t = np.cos(ang) * xx + np.sin(ang) * yy
    t = (t - t.min()) / (np.ptp(t) + 1e-6)
    c0, c1 = _muted(rng), _muted(rng)
    img = (c0 * (1 - t[..., None]) + c1 * t[..., None]).astype(np.float32)
    for cells, amp in ((4, 0.25), (16, 0.12), (64, 0.06)):
        if rng.random() < 0.7:
            img += amp * rng.uniform(0.3, 1) * smooth_noise(rng, size, cells, 3 if rng.random() < 0.5 else 1)
    if rng.random() < 0.35:
        _split(rng, img, xx, yy)
    if rng.random() < 0.25:
        _pattern(rng, img, xx, yy)
    n_shapes = int(rng.integers(0, 25))
    for _ in range(n_shapes):
        _random_shape(rng, img, size, tuple(float(v) for v in _muted(rng)))
    if rng.random() < 0.2:
        _bokeh(rng, img, size)
    if rng.random() < 0.6:
        k = rng.uniform(0.5, 3.0)
        img = cv2.GaussianBlur(img, (0, 0), k)
    return np.clip(img, 0, 1)


def _split(rng: np.random.Generator, img: np.ndarray, xx: np.ndarray, yy: np.ndarray) -> None:
    """A straight boundary between two regions (wall/floor, sky/ground, a door edge)."""
    ang = rng.uniform(0, np.pi)
    side = (np.cos(ang) * (xx - rng.uniform(0.1, 0.9)) + np.sin(ang) * (yy - rng.uniform(0.1, 0.9))) > 0
    img[side] = img[side] * rng.uniform(0.2, 0.6) + _muted(rng) * rng.uniform(0.4, 0.8)


def _pattern(rng: np.random.Generator, img: np.ndarray, xx: np.ndarray, yy: np.ndarray) -> None:
    """Stripes or a checker (wallpaper, tiles, blinds) at a random angle and period."""
    ang = rng.uniform(0, np.pi)
    period = rng.uniform(0.02, 0.2)
    u = (np.cos(ang) * xx + np.sin(ang) * yy) / period
    v = (-np.sin(ang) * xx + np.cos(ang) * yy) / period
    wave = np.sin(2 * np.pi * u) > 0
    if rng.random() < 0.4:
        wave ^= np.sin(2 * np.pi * v) > 0
    amp = rng.uniform(0.05, 0.25)
    img += (np.where(wave, amp, -amp)[..., None] * _muted(rng)).astype(np.float32)


def _bokeh(rng: np.random.Generator, img: np.ndarray, size: int) -> None:
    """Out-of-focus light spots."""
    layer = np.zeros_like(img)
    for _ in range(int(rng.integers(3, 15))):
        c = (int(rng.integers(0, size)), int(rng.integers(0, size)))
        r = int(rng.integers(size // 40 + 1, size // 8 + 2))
        cv2.circle(layer, c, r, tuple(float(v) for v in rng.uniform(0.3, 1.0, size=3) * rng.uniform(0.2, 0.6)), -1)
    img += cv2.GaussianBlur(layer, (0, 0), rng.uniform(1.0, 4.0))


def _random_shape(rng: np.random.Generator, img: np.ndarray, size: int, colour: tuple) -> None:
    kind = rng.integers(0, 4)
    c = (int(rng.integers(0, size)), int(rng.integers(0, size)))
    r = int(rng.integers(size // 40 + 1, size // 3))
    if kind == 0:
        cv2.rectangle(img, c, (c[0] + int(rng.integers(-r, r)), c[1] + int(rng.integers(-r, r))), colour, -1)
    elif kind == 1:
        cv2.ellipse(img, c, (r, int(rng.integers(1, r + 1))), float(rng.uniform(0, 180)), 0, 360, colour, -1)
    elif kind == 2:
        end = (int(rng.integers(0, size)), int(rng.integers(0, size)))
        cv2.line(img, c, end, colour, int(rng.integers(1, max(2, size // 30))))
    else:
        pts = (np.array(c) + rng.integers(-r, r + 1, size=(int(rng.integers(3, 7)), 2))).astype(np.int32)
        cv2.fillPoly(img, [pts], colour)


def draw_occluders(rng: np.random.Generator, img: np.ndarray, landmarks: np.ndarray,
                   face_size: float) -> np.ndarray:
    """Paint 1-2 random occluders near the face into ``img`` (in place); returns their bool mask."""
    size = img.shape[0]
    mask = np.zeros(img.shape[:2], dtype=np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        layer = np.zeros_like(mask)
        anchor = landmarks[rng.integers(0, len(landmarks))] + rng.normal(0, 0.15 * face_size, 2)
        c = (int(np.clip(anchor[0], 0, size - 1)), int(np.clip(anchor[1], 0, size - 1)))
        r = max(2, int(face_size * rng.uniform(0.1, 0.35)))
        kind = rng.integers(0, 3)
        if kind == 0:
            a = float(rng.uniform(0, 180))
            box = cv2.boxPoints((c, (2 * r, 2 * r * rng.uniform(0.3, 1.5)), a)).astype(np.int32)
            cv2.fillPoly(layer, [box], 255)
            colour = rng.uniform(0, 1, size=3)
        elif kind == 1:
            cv2.ellipse(layer, c, (r, max(1, int(r * rng.uniform(0.4, 1)))), float(rng.uniform(0, 180)),
                        0, 360, 255, -1)
            colour = rng.uniform(0, 1, size=3)
        else:
            _hand(rng, layer, c, r)
            colour = skin_tone(rng)
        m = layer > 0
        tex = 1.0 + 0.15 * smooth_noise(rng, size, 16)
        shade = np.clip(colour * tex * rng.uniform(0.6, 1.1), 0, 1)
        img[m] = shade[m]
        mask |= layer
    return mask > 0


def _hand(rng: np.random.Generator, layer: np.ndarray, c: tuple[int, int], r: int) -> None:
    """A palm ellipse with four or five finger capsules fanned out from it."""
    ang = rng.uniform(0, 2 * np.pi)
    cv2.ellipse(layer, c, (r, int(r * 0.8)), float(np.rad2deg(ang)), 0, 360, 255, -1)
    for k in range(int(rng.integers(4, 6))):
        a = ang + np.deg2rad(-40 + 20 * k + rng.normal(0, 5))
        length = r * rng.uniform(1.3, 1.9)
        end = (int(c[0] + length * np.cos(a)), int(c[1] + length * np.sin(a)))
        cv2.line(layer, c, end, 255, max(2, int(r * 0.32)))


def camera_artefacts(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Colour cast, gamma, low resolution, blur and sensor noise; float RGB in, uint8 RGB out."""
    size = img.shape[0]
    img = img * rng.uniform(0.85, 1.15, size=3) * rng.uniform(0.75, 1.2)
    img = np.clip(img, 0, 1) ** rng.uniform(0.8, 1.25)
    if rng.random() < 0.08:
        # Grey or sepia photographs (AFLW has both).
        grey = img @ np.array([0.299, 0.587, 0.114])
        tint = np.array([1.0, 1.0, 1.0]) if rng.random() < 0.6 else np.array([1.08, 0.97, 0.82])
        img = np.clip(grey[..., None] * tint, 0, 1)
    if rng.random() < 0.2:
        small = max(24, int(size * rng.uniform(0.3, 0.7)))
        img = cv2.resize(cv2.resize(img, (small, small), interpolation=cv2.INTER_AREA), (size, size),
                         interpolation=cv2.INTER_LINEAR)
    sigma = 0.45 if rng.random() < 0.5 else rng.uniform(0.45, 1.6)
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), sigma)
    if rng.random() < 0.1:
        k = int(rng.integers(3, 9))
        kern = np.zeros((k, k), np.float32)
        kern[k // 2] = 1.0 / k
        rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
        kern = cv2.warpAffine(kern, rot, (k, k))
        img = cv2.filter2D(img, -1, kern / max(kern.sum(), 1e-6))
    img = img + np.float32(rng.uniform(0, 0.03)) * rng.standard_normal(img.shape, dtype=np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
