"""Video preprocessing for the FVD I3D network (pure functions, no network imports).

The reference is the original TensorFlow FVD (google-research ``frechet_video_distance.py``,
``preprocess``): every frame is resized bilinearly to 224 x 224 (no crop, aspect ratio not kept)
with ``tf.image.resize_bilinear`` and the values are mapped from [0, 255] to [-1, 1] by
``2 * x / 255 - 1``. The network then takes (B, 3, T, 224, 224).

Two resize conventions are offered, both without antialiasing:

* ``"tf1"`` (default, the FVD reference): TF1 ``resize_bilinear`` with ``align_corners=False`` and
  ``half_pixel_centers=False``: source coordinate ``s = d * in / out``.
* ``"torch"``: ``F.interpolate(mode="bilinear", align_corners=False)`` as used by the PyTorch ports
  (VideoGPT/TATS, StyleGAN-V's scripts): half-pixel centres, ``s = (d + 0.5) * in / out - 0.5``
  clamped at 0.

Because bilinear interpolation is linear with weights summing to one, resizing and the affine value
map commute, so the order of the two steps does not change the result (up to float rounding).
"""

from __future__ import annotations

import torch

#: Input layouts accepted by :func:`preprocess_for_i3d` (B batch, T time, C=3 channels).
VIDEO_LAYOUTS = ("BTHWC", "BTCHW", "BCTHW")
#: Resize conventions accepted by :func:`preprocess_for_i3d`.
RESIZE_CONVENTIONS = ("tf1", "torch")
#: Spatial size of the I3D input.
I3D_SIZE = 224


def bilinear_resize_matrix(in_size: int, out_size: int, convention: str = "tf1") -> torch.Tensor:
    """Build the (out_size, in_size) matrix of 1-D bilinear interpolation weights.

    Row ``d`` holds the weights of output sample ``d``: ``(1 - w)`` at ``floor(s)`` and ``w`` at
    ``min(floor(s) + 1, in_size - 1)``, with ``w = s - floor(s)`` and the source coordinate ``s``
    given by the convention (see the module docstring). No antialiasing, as in both references.

    Args:
        in_size: number of input samples along the axis.
        out_size: number of output samples along the axis.
        convention: ``"tf1"`` (TF1 ``resize_bilinear``, half_pixel_centers=False) or ``"torch"``
            (``F.interpolate(..., align_corners=False)``).

    Returns:
        float64 tensor of shape (out_size, in_size) whose rows sum to one.
    """
    if convention not in RESIZE_CONVENTIONS:
        raise ValueError(f"resize convention must be one of {RESIZE_CONVENTIONS}, got {convention!r}")
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be positive, got in_size={in_size}, out_size={out_size}")
    scale = in_size / out_size
    dst = torch.arange(out_size, dtype=torch.float64)
    if convention == "tf1":
        src = dst * scale
    else:
        src = ((dst + 0.5) * scale - 0.5).clamp(min=0.0)
    lo = src.floor().long().clamp(max=in_size - 1)
    hi = (lo + 1).clamp(max=in_size - 1)
    w_hi = src - lo.to(torch.float64)
    mat = torch.zeros(out_size, in_size, dtype=torch.float64)
    rows = torch.arange(out_size)
    mat.index_put_((rows, lo), 1.0 - w_hi, accumulate=True)
    mat.index_put_((rows, hi), w_hi, accumulate=True)
    return mat


def to_bcthw(videos: torch.Tensor, layout: str = "BTHWC") -> torch.Tensor:
    """Permute a batch of RGB videos to (B, C, T, H, W) without copying.

    Args:
        videos: 5-D tensor in ``layout``.
        layout: one of ``"BTHWC"`` (the default; uint8 frames as decoded), ``"BTCHW"``, ``"BCTHW"``.

    Returns:
        A (B, 3, T, H, W) view of ``videos``.
    """
    if layout not in VIDEO_LAYOUTS:
        raise ValueError(f"layout must be one of {VIDEO_LAYOUTS}, got {layout!r}")
    if videos.ndim != 5:
        raise ValueError(
            f"expected a 5-D batch of videos in layout {layout}, got shape {tuple(videos.shape)}"
        )
    perm = {"BTHWC": (0, 4, 1, 2, 3), "BTCHW": (0, 2, 1, 3, 4), "BCTHW": (0, 1, 2, 3, 4)}[layout]
    out = videos.permute(*perm)
    if out.shape[1] != 3:
        raise ValueError(
            f"expected 3 (RGB) channels in layout {layout}, got shape {tuple(videos.shape)} "
            f"({out.shape[1]} channels); pass the right `layout`"
        )
    return out


def scale_to_unit_range(videos: torch.Tensor, value_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Map pixel values affinely from ``value_range`` to [-1, 1] in float32.

    Formula: ``y = 2 * (x - lo) / (hi - lo) - 1``; for uint8 this is the reference's ``2 x / 255 - 1``.

    Args:
        videos: uint8 or floating tensor of any shape.
        value_range: ``(lo, hi)`` of the input values. ``None`` is allowed only for uint8 input,
            where it means ``(0, 255)``; float input must say its range explicitly, e.g. ``(0.0, 1.0)``
            or ``(-1.0, 1.0)``.

    Returns:
        float32 tensor of the same shape with values in [-1, 1] (for inputs inside the range).
    """
    if value_range is None:
        if videos.dtype != torch.uint8:
            raise ValueError(
                f"videos of dtype {videos.dtype} need an explicit value_range, e.g. (0.0, 1.0) or (-1.0, 1.0); "
                "only uint8 videos default to (0, 255)"
            )
        value_range = (0.0, 255.0)
    lo, hi = float(value_range[0]), float(value_range[1])
    if not hi > lo:
        raise ValueError(f"value_range must satisfy lo < hi, got {value_range}")
    x = videos.to(torch.float32)
    return (x - lo) * (2.0 / (hi - lo)) - 1.0


def preprocess_for_i3d(
    videos: torch.Tensor,
    value_range: tuple[float, float] | None = None,
    layout: str = "BTHWC",
    size: int = I3D_SIZE,
    resize_convention: str = "tf1",
) -> torch.Tensor:
    """Turn a batch of RGB videos into the FVD I3D input, exactly as the TF FVD reference does.

    Steps: layout -> (B, 3, T, H, W); values -> [-1, 1] (``2 (x - lo) / (hi - lo) - 1``); every
    frame resized bilinearly to ``size`` x ``size`` (separable interpolation matrices, no crop).

    Args:
        videos: uint8 (values 0..255) or float videos, 5-D in ``layout``; default layout
            (B, T, H, W, 3).
        value_range: ``(lo, hi)`` of the input values; required for float input (``(0.0, 1.0)``
            or ``(-1.0, 1.0)`` typically), defaults to ``(0, 255)`` for uint8.
        layout: ``"BTHWC"`` (default), ``"BTCHW"`` or ``"BCTHW"``.
        size: output height and width (224 for I3D).
        resize_convention: ``"tf1"`` (default; the TF FVD reference) or ``"torch"``
            (``F.interpolate`` bilinear, align_corners=False, as in the PyTorch ports).

    Returns:
        float32 tensor of shape (B, 3, T, size, size) with values in [-1, 1], on the input's device.
    """
    x = scale_to_unit_range(to_bcthw(videos, layout), value_range)
    h, w = x.shape[-2:]
    if (h, w) != (size, size):
        r_h = bilinear_resize_matrix(h, size, resize_convention).to(device=x.device, dtype=x.dtype)
        r_w = bilinear_resize_matrix(w, size, resize_convention).to(device=x.device, dtype=x.dtype)
        # out[b, c, t] = R_h @ frame @ R_w^T  (separable bilinear interpolation)
        x = torch.matmul(torch.matmul(r_h, x), r_w.transpose(0, 1))
    return x.contiguous()
