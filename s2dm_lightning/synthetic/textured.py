"""The "textured" synthetic world: fine texture that must move with its shape (issue #26).

Same shapes, colours, motions, captions and held-out split as the default world (:mod:`.world`), but
the main shape carries 2-pixel checks (its colour and 80% of it) and the still background 4-pixel
stripes of two muted colours in a random orientation (horizontal or vertical). The shape moves by
whole pixels per frame, so its checks travel with it exactly, while the stripes stay on the screen:
a generator whose noise-borne detail sticks to the screen shows it here (see
:mod:`.texture_sticking`).

Ground truth per frame in the format of :mod:`s2dm_lightning.flow_format`: shape pixels come from
the pixel ``offset`` to their left/up in frame 0, background pixels from themselves; visible (1) where
the pixel is fully one layer in both frames (uncovered background and anti-aliased edges are 0), so
warping frame 0 with the grid reproduces frame t exactly on visible pixels.
"""

from __future__ import annotations

import numpy as np

from s2dm_lightning.flow_format import identity_condition
from s2dm_lightning.synthetic.shapes import COLORS, MOTIONS, coverage

CHECK_PIXELS = 2
STRIPE_PIXELS = 4
DARK_CHECK = 0.8  # keeps the dark checks saturated (channel range > the motion measures' threshold)


def _to_grid(pixels: np.ndarray, size: int) -> np.ndarray:
    """Whole-pixel indices -> grid units (align_corners=True: pixel i at -1 + 2 i / (size - 1))."""
    return pixels * 2.0 / (size - 1) - 1.0


def render_textured_video(
    color: str, shape: str, motion: str, frames: int, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 RGB frames (frames, size, size, 3) and float32 conditions (frames, 3, size, size)."""
    first, second = rng.uniform(10, 70, size=3), rng.uniform(10, 70, size=3)
    ys, xs = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    across = ys if rng.integers(2) == 0 else xs
    background = np.where((across // STRIPE_PIXELS % 2 == 0)[..., None], first, second)
    travel = rng.uniform(0.30, 0.35) * size
    direction = np.array(MOTIONS[motion])
    half = size / 8
    rgb = np.array(COLORS[color], dtype=np.float64)
    steps = max(frames - 1, 1)
    video = np.empty((frames, size, size, 3), dtype=np.uint8)
    conditions = np.empty((frames, 3, size, size), dtype=np.float32)
    main0 = None
    for t in range(frames):
        offset = np.round(direction * travel * t / steps).astype(int)  # whole pixels: exact warps
        main = coverage(shape, size / 2 + offset[0], size / 2 + offset[1], half, size)
        local_x, local_y = xs - offset[0], ys - offset[1]  # the shape's own coordinates (frame 0's pixel)
        checks = ((local_x // CHECK_PIXELS + local_y // CHECK_PIXELS) % 2 == 0)[..., None]
        texture = np.where(checks, rgb, rgb * DARK_CHECK)
        video[t] = np.round(background * (1 - main[..., None]) + texture * main[..., None]).astype(np.uint8)
        if t == 0:
            main0 = main
        inside = (local_x >= 0) & (local_x < size) & (local_y >= 0) & (local_y < size)
        source_main = main0[np.clip(local_y, 0, size - 1), np.clip(local_x, 0, size - 1)]
        on_main = main >= 0.5
        conditions[t, 0] = _to_grid(np.where(on_main, local_x, xs), size)
        conditions[t, 1] = _to_grid(np.where(on_main, local_y, ys), size)
        conditions[t, 2] = ((main == 1) & inside & (source_main == 1)) | ((main == 0) & (main0 == 0))
    conditions[0] = identity_condition(size, size).numpy()
    return video, conditions
