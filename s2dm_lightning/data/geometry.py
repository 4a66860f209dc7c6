"""Frame geometry: how a frame of any aspect becomes the model's square frame. One policy for every route.

The models generate square frames; footage is often 4:3 or 16:9. Every place that turns a frame
into model input -- the datasets' clips (MUG, UTD-MHAD, your own folder, synthetic), the latent
cache, the flow estimation of ``preprocess``, ``sample --motion_from``, ``sample --image``, the
pipeline's ``image=`` and the demo -- calls :func:`fit_square` with the same policy, so that a
network trained on one geometry is never driven by another:

- ``"crop"`` (the default): the largest centred square, resized. Nothing is distorted; the sides
  of a wide frame are lost.
- ``"pad"``: the whole frame, resized so that its longer side fits, centred on black bars
  (0 in uint8 / float 0..1 arrays, -1 in the model's [-1, 1] range). Nothing is lost or distorted;
  part of the square is bars. This is what LFDM does (nihaomiao/CVPR23_LFDM at 3601635, ``misc.py``
  lines 96-110: the longer side to the size with ``cv2.INTER_AREA``, then ``cv2.copyMakeBorder`` in black),
  for MUG and for its UTD-MHAD box alike (the ``lfdm`` evaluation protocol).
- ``"squash"``: the whole frame resized to the square, each side on its own. A circle becomes
  an ellipse. (No protocol we know of uses it; LFDM pads, see ``"pad"``.)

The policy is a data module argument (``data.init_args.frame_geometry``); it is part of the
flow cache's identity (``FlowSettings.frame_geometry``) and of the latent cache's, is written
into checkpoints and exported pipelines, and a checkpoint loaded under another policy is an error
(``models/diffusion_module.py``).

Resizing (:func:`resize_image`): area-averaged when shrinking, bicubic when enlarging.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

FrameGeometry = Literal["crop", "pad", "squash"]
FRAME_GEOMETRIES: tuple[str, ...] = ("crop", "pad", "squash")
DEFAULT_FRAME_GEOMETRY: FrameGeometry = "crop"
CHECKPOINT_KEY = "frame_geometry"  # where a checkpoint (and an exported pipeline's config) records it


def check_geometry(value: object, key: str = "frame_geometry") -> str:
    """``value`` if it is one of :data:`FRAME_GEOMETRIES`, else a ValueError naming ``key``."""
    if value not in FRAME_GEOMETRIES:
        raise ValueError(f"{key}={value!r} is not a frame geometry; choose one of {list(FRAME_GEOMETRIES)} "
                         "(crop: centred square; pad: whole frame on black bars; squash: stretched to a square)")
    return str(value)


def kept_box(height: int, width: int, geometry: str) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the part of a height x width frame that ``geometry`` keeps.

    ``crop``: its largest centred square; ``pad`` and ``squash``: the whole frame.
    """
    if check_geometry(geometry) != "crop":
        return 0, height, 0, width
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return top, top + side, left, left + side


def resize_image(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``image`` (H, W) or (H, W, C), uint8 or float32, at shape=(h, w): area when shrinking, bicubic when enlarging."""
    if tuple(image.shape[:2]) == tuple(shape):
        return image
    shrink = shape[0] * shape[1] < image.shape[0] * image.shape[1]
    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def padded_shape(height: int, width: int, side: int) -> tuple[int, int]:
    """(h, w) of a height x width frame scaled so that its longer side is ``side`` (the ``pad`` policy)."""
    scale = side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def pad_to_square(image: np.ndarray, side: int, fill: float = 0) -> np.ndarray:
    """``image`` (h, w[, C]) with h, w <= side centred on a side x side canvas of ``fill``."""
    height, width = image.shape[:2]
    canvas = np.full((side, side, *image.shape[2:]), fill, dtype=image.dtype)
    top, left = (side - height) // 2, (side - width) // 2
    canvas[top:top + height, left:left + width] = image
    return canvas


def fit_square(image: np.ndarray, side: int, geometry: str = DEFAULT_FRAME_GEOMETRY, fill: float = 0) -> np.ndarray:
    """One frame (H, W) or (H, W, C), uint8 or float32, as a side x side square under ``geometry``.

    ``fill`` is the colour of the ``pad`` bars in the image's own range (0: black for uint8 and 0..1).
    """
    height, width = image.shape[:2]
    if geometry == "pad":
        return pad_to_square(resize_image(np.ascontiguousarray(image), padded_shape(height, width, side)), side, fill)
    top, bottom, left, right = kept_box(height, width, geometry)
    return resize_image(np.ascontiguousarray(image[top:bottom, left:right]), (side, side))


def fit_frames(frames: np.ndarray, side: int, geometry: str = DEFAULT_FRAME_GEOMETRY, fill: float = 0) -> np.ndarray:
    """Frames (L, H, W[, C]) as (L, side, side[, C]) under ``geometry`` (:func:`fit_square` on each)."""
    if frames.shape[1:3] == (side, side):
        return frames
    return np.stack([fit_square(frame, side, geometry, fill) for frame in frames])


def geometry_conflict(stored: str | None, data_geometry: str | None, checkpoint: str) -> str | None:
    """The error text when a checkpoint made under frame geometry ``stored`` meets data under another, else None.

    ``None`` on either side (a checkpoint from before the policy was recorded, no data module) is no conflict.
    """
    if stored is None or data_geometry is None or stored == data_geometry:
        return None
    return (f"checkpoint {checkpoint} was trained on frames made square by frame_geometry={stored!r}, but the "
            f"data module now uses {data_geometry!r}: the frames and flows would not be what the network learned. "
            f"Set --data.init_args.frame_geometry={stored} (or train a new model for {data_geometry!r})")
