"""What both synthetic worlds draw: the shapes, their colours, the four motions and the rasteriser."""

from __future__ import annotations

import numpy as np

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (245, 45, 45),
    "green": (40, 215, 70),
    "blue": (60, 120, 255),
    "yellow": (250, 225, 40),
}
SHAPES = ("square", "circle", "triangle")
# Unit direction (dx, dy) in image coordinates (y points down).
MOTIONS: dict[str, tuple[float, float]] = {
    "moves to the left": (-1.0, 0.0),
    "moves to the right": (1.0, 0.0),
    "moves up": (0.0, -1.0),
    "moves down": (0.0, 1.0),
}
SUPERSAMPLING = 4


def coverage(
    shape: str, cx: float, cy: float, half: float, size: int, angle: float = 0.0, scale: float = 1.0
) -> np.ndarray:
    """Fraction of each pixel covered by the shape (size, size), by supersampling.

    ``angle`` (radians, clockwise on screen) and ``scale`` turn and size the shape about its centre
    (the disocclusion world); the default world never sets them.
    """
    samples = (np.arange(size * SUPERSAMPLING, dtype=np.float64) + 0.5) / SUPERSAMPLING
    ys, xs = np.meshgrid(samples, samples, indexing="ij")
    dx, dy = xs - cx, ys - cy
    if angle != 0.0 or scale != 1.0:  # shape coordinates: undo the turn and the scale
        cos, sin = np.cos(-angle), np.sin(-angle)
        dx, dy = (cos * dx - sin * dy) / scale, (sin * dx + cos * dy) / scale
    if shape == "square":
        inside = (np.abs(dx) <= half) & (np.abs(dy) <= half)
    elif shape == "circle":
        inside = dx**2 + dy**2 <= half**2
    elif shape == "triangle":
        # Apex up, base down, inside the 2*half box: |dx| <= half * (dy + half) / (2 * half).
        inside = (dy <= half) & (np.abs(dx) <= (dy + half) / 2)
    else:
        raise ValueError(f"unknown shape {shape!r}; choose one of {SHAPES}")
    covered = inside.reshape(size, SUPERSAMPLING, size, SUPERSAMPLING)
    return covered.mean(axis=(1, 3))
