"""The "disocclusion" synthetic world: videos whose later frames the first frame cannot explain.

Same shapes, colours, motions and held-out split as the default world (:mod:`.world`), but:

* the background is a per-pixel random texture (two muted colours mixed per pixel, no smooth
  gradient) larger than the frame, and the camera pans over it by whole pixels (25-40% of the
  image over the video, in a random direction), so background the first frame never showed enters;
* the main shape starts at the centre and moves as the caption says, uncovering the textured
  background it hid in frame 0, while it rotates (60-90 degrees), grows (to 1.6x) or shrinks
  (to 0.6x); the caption names it: "a rotating red square moves to the left" (circles only grow
  or shrink);
* a second shape of another colour enters from a random edge during the video (frame 0 never
  shows it) and moves straight in.

Every frame comes with its ground-truth condition in the format of :mod:`s2dm_lightning.flow_format`:
for every pixel of frame t, where it comes from in frame 0 (a ``grid_sample`` grid, align_corners=True)
and visibility (1 = the pixel's content is visible in frame 0, 0 = not: uncovered or newly panned-in
background, the entering shape, and the anti-aliased edge pixels that mix two layers, which no single
source pixel explains). On visible pixels, warping frame 0 with the grid reproduces frame t up to
float rounding: background sources sit on whole pixels, and a shape pixel is visible only when its
source's bilinear footprint lies wholly inside the shape's flat colour in frame 0.
"""

from __future__ import annotations

import numpy as np

from s2dm_lightning.flow_format import identity_condition
from s2dm_lightning.synthetic.shapes import COLORS, MOTIONS, SHAPES, coverage

#: Per-video change of the main shape over the video; the caption's adjective.
TRANSFORMS = ("rotating", "growing", "shrinking")
FINAL_SCALE = {"growing": 1.6, "shrinking": 0.6}


def transforms_for(shape: str) -> tuple[str, ...]:
    """The transforms a shape can show (a rotating circle looks still)."""
    return tuple(t for t in TRANSFORMS if not (shape == "circle" and t == "rotating"))


def disocclusion_caption(color: str, shape: str, motion: str, transform: str) -> str:
    """E.g. "a rotating red square moves to the left" (still ends with the motion phrase)."""
    return f"a {transform} {color} {shape} {motion}"


def _texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Per-pixel random mix of two muted colours, float (height, width, 3); channel range < 100 / 255."""
    first = rng.uniform(10, 50, size=3)
    second = first + rng.uniform(35, 50, size=3)
    mix = rng.uniform(0, 1, size=(height, width, 1))
    return first * (1 - mix) + second * mix


def _to_grid(source_x: np.ndarray, source_y: np.ndarray, size: int) -> np.ndarray:
    """Continuous coordinates (pixel centres at i + 0.5) -> grid units (align_corners=True)."""
    return np.stack([(source_x - 0.5) * 2 / (size - 1) - 1, (source_y - 0.5) * 2 / (size - 1) - 1])


def _inside_flat(mask0: np.ndarray, source_x: np.ndarray, source_y: np.ndarray) -> np.ndarray:
    """Whether the bilinear footprint (2 x 2 pixels) of each source point lies inside ``mask0``."""
    size = mask0.shape[0]
    x0, y0 = np.floor(source_x - 0.5), np.floor(source_y - 0.5)
    # A source on a pixel centre reads that pixel alone (its neighbours get zero weight).
    spans_x, spans_y = source_x - 0.5 - x0 > 1e-9, source_y - 0.5 - y0 > 1e-9
    x0, y0 = x0.astype(int), y0.astype(int)
    ok = np.ones(source_x.shape, dtype=bool)
    for dy in (0, 1):
        for dx in (0, 1):
            xs, ys = x0 + dx, y0 + dy
            inside = (xs >= 0) & (xs < size) & (ys >= 0) & (ys < size)
            used = (spans_x if dx else True) & (spans_y if dy else np.ones_like(spans_y))
            ok &= ~used | (inside & mask0[np.clip(ys, 0, size - 1), np.clip(xs, 0, size - 1)])
    return ok


def render_disocclusion_video(
    color: str, shape: str, motion: str, transform: str, frames: int, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 RGB frames (frames, size, size, 3) and float32 conditions (frames, 3, size, size).

    ``transform`` is one of :func:`transforms_for` (shape). The draws use ``rng`` only.
    """
    if transform not in transforms_for(shape):
        raise ValueError(f"transform {transform!r} is not one of {transforms_for(shape)} for a {shape}")
    steps = max(frames - 1, 1)
    half = size / 8
    # Camera pan: whole pixels at every frame (offset(t) rounded), so background warps are exact.
    pan_angle = rng.uniform(0, 2 * np.pi)
    pan_total = rng.uniform(0.25, 0.40) * size * np.array([np.cos(pan_angle), np.sin(pan_angle)])
    margin = int(np.ceil(np.abs(pan_total).max())) + 1
    canvas = _texture(size + 2 * margin, size + 2 * margin, rng)
    # Main shape: centre -> caption direction, 30-35% of the image, with its transform.
    travel = rng.uniform(0.30, 0.35) * size
    direction = np.array(MOTIONS[motion])
    spin = rng.uniform(np.pi / 3, np.pi / 2) * rng.choice([-1.0, 1.0]) if transform == "rotating" else 0.0
    final_scale = FINAL_SCALE.get(transform, 1.0)
    # Entering shape: another colour, from a random edge, hidden until a frame in 20-50% of the video.
    other_color = rng.choice([c for c in COLORS if c != color])
    other_shape = SHAPES[int(rng.integers(len(SHAPES)))]
    inward = np.array(list(MOTIONS.values())[int(rng.integers(len(MOTIONS)))])
    enter_frame = rng.uniform(0.2, 0.5) * steps
    lateral = rng.uniform(0.25, 0.75) * size
    speed = rng.uniform(0.35, 0.5) * size / max(steps - enter_frame, 1.0)
    # Centre at which the shape is just outside the edge it enters through (a rotated shape never here).
    outside = size / 2 - inward * (size / 2 + half * np.sqrt(2) + 0.5)
    start = np.where(inward == 0, lateral, outside)

    samples = np.arange(size, dtype=np.float64) + 0.5
    ys, xs = np.meshgrid(samples, samples, indexing="ij")
    colour, other_rgb = np.array(COLORS[color], float), np.array(COLORS[other_color], float)
    video = np.empty((frames, size, size, 3), dtype=np.uint8)
    conditions = np.empty((frames, 3, size, size), dtype=np.float32)
    main0 = None
    for t in range(frames):
        progress = t / steps
        offset = np.round(pan_total * progress).astype(int)  # frame t shows the canvas shifted by offset
        background = canvas[margin + offset[1]: margin + offset[1] + size, margin + offset[0]: margin + offset[0] + size]
        centre = size / 2 + direction * travel * progress
        angle, scale = spin * progress, 1.0 + (final_scale - 1.0) * progress
        other_centre = start + inward * speed * (t - enter_frame)
        main = coverage(shape, centre[0], centre[1], half, size, angle=angle, scale=scale)
        other = coverage(other_shape, other_centre[0], other_centre[1], half, size)
        if t == 0:
            main0, background0_pure = main, main == 0
            if other.any():
                raise RuntimeError("the entering shape must be outside frame 0")
        composite = (background * (1 - main[..., None]) + colour * main[..., None]) * (1 - other[..., None])
        video[t] = np.round(composite + other_rgb * other[..., None]).astype(np.uint8)

        # Sources in frame 0 of each layer (continuous coordinates), then the layer each pixel shows.
        bg_x, bg_y = xs + offset[0], ys + offset[1]
        cos, sin = np.cos(-angle), np.sin(-angle)
        local_x, local_y = (xs - centre[0]) / scale, (ys - centre[1]) / scale
        main_x = size / 2 + cos * local_x - sin * local_y
        main_y = size / 2 + sin * local_x + cos * local_y
        other_x, other_y = xs - inward[0] * speed * t, ys - inward[1] * speed * t
        on_other, on_main = other >= 0.5, (main >= 0.5) & (other < 0.5)
        source_x = np.where(on_other, other_x, np.where(on_main, main_x, bg_x))
        source_y = np.where(on_other, other_y, np.where(on_main, main_y, bg_y))
        pure_background = (main == 0) & (other == 0)
        background_seen = pure_background & _inside_flat(background0_pure, bg_x, bg_y)
        main_seen = (main == 1) & (other == 0) & _inside_flat(main0 == 1, main_x, main_y)
        conditions[t, :2] = _to_grid(source_x, source_y, size)
        conditions[t, 2] = background_seen | main_seen
    conditions[0] = identity_condition(size, size).numpy()  # the format's frame 1: every pixel is its own source
    return video, conditions
