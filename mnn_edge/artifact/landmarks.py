"""Landmark schemes: how many points, which are the outer eye corners, how they mirror.

A model's scheme is named in its metadata (``landmark_scheme``); everything that needs the eye
corners (inter-ocular NME) or the mirror order (flip augmentation) asks here.
"""

from __future__ import annotations

from dataclasses import dataclass

# iBUG / 300W 68-point mirror order: index i of the mirrored face is point IBUG68_FLIP[i] of the
# original (jaw 0-16 reversed, brows 17-21 <-> 22-26, nose bridge kept, nostrils 31-35 reversed,
# eyes 36-41 <-> 42-47 in mirrored order, mouth mirrored about its vertical axis).
IBUG68_FLIP = (
    16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
    26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
    27, 28, 29, 30,
    35, 34, 33, 32, 31,
    45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
    54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,
    64, 63, 62, 61, 60, 67, 66, 65,
)


@dataclass(frozen=True)
class LandmarkScheme:
    name: str
    count: int
    outer_eye_corners: tuple[int, int] | None = None  # for the inter-ocular NME
    flip_order: tuple[int, ...] | None = None  # for horizontal-flip augmentation

    def __post_init__(self) -> None:
        if self.flip_order is not None and sorted(self.flip_order) != list(range(self.count)):
            raise ValueError(f"{self.name}: the flip order must be a permutation of 0..{self.count - 1}")


SCHEMES = {s.count: s for s in (
    LandmarkScheme("ibug68", 68, (36, 45), IBUG68_FLIP),
    LandmarkScheme("wflw98", 98, (60, 72)),
    LandmarkScheme("cofw29", 29),
    LandmarkScheme("aflw19", 19),
    LandmarkScheme("aflw21", 21),
)}


def scheme_for(num_landmarks: int) -> LandmarkScheme:
    """The known scheme with this many points, or an anonymous ``custom<N>`` one."""
    return SCHEMES.get(num_landmarks) or LandmarkScheme(f"custom{num_landmarks}", num_landmarks)


def landmark_scheme_for(num_landmarks: int) -> str:
    return scheme_for(num_landmarks).name
