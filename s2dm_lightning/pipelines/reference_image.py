"""The first frame of image-to-video sampling: from a file, a PIL image, an array or a tensor to the
model's input, (B, 3, size, size) float in [-1, 1] (see docs/image_to_video.md).

Every input is first read as RGB in 0..1 by what its values mean, never by a blind cast:

* PIL images of every mode Pillow opens: ``1`` and ``L`` (grey, repeated to RGB), ``I;16`` (16-bit,
  / 65535), ``I`` (32-bit integers, taken as 16-bit data as Pillow opens 16-bit PNG/TIFF: / 65535;
  values outside 0..65535 are an error), ``F`` (float, must lie in 0..1), ``P`` (palette), ``RGB``,
  ``CMYK``, ``YCbCr``, ... (Pillow's conversion to RGB); modes with alpha (``RGBA``, ``LA``, ``PA``,
  a ``P`` image with a transparent colour) are composited over BLACK, the colour of the ``pad`` frame
  geometry's bars (what lies under a transparent pixel is arbitrary);
* arrays (H, W), (H, W, 1|3|4) or (B, H, W, 1|3|4): ``uint8`` / 255, ``uint16`` / 65535, ``bool``,
  float in 0..1; a float array with values above 1 (0..255 data) or below 0 is an error that says
  what to divide by; other integer types are an error (their range is unknown); 4 channels = RGBA;
* tensors (B, 3, H, W) or (3, H, W): already in the model's [-1, 1].

Then the frame is made ``size`` x ``size`` under the model's frame geometry (``data.geometry``: the
centred square by default), with the same resizing as the training clips: a uint8 image goes through
exactly the training clips' arithmetic, so the same picture as a dataset frame gives the same pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import torch

from s2dm_lightning.data.geometry import DEFAULT_FRAME_GEOMETRY, fit_square

ReferenceImage = torch.Tensor | np.ndarray | PIL.Image.Image | list[PIL.Image.Image]
SIXTEEN_BIT = 65535.0


def load_reference_image(path: str | Path, key: str = "--image") -> np.ndarray:
    """An image file (PNG, JPEG, TIFF, ... as Pillow reads them, any mode) as RGB (H, W, 3) at its own size:
    uint8, or float32 in 0..1 for 16-bit and float images (see the module doc; alpha over black).

    A missing or unreadable file, or pixel values that fit no range, is a ValueError naming ``key`` and the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{key}: '{path}' does not exist or is not a file")
    try:
        with PIL.Image.open(path) as image:
            image.load()
            return pil_to_rgb(image)
    except (OSError, PIL.Image.DecompressionBombError) as error:
        raise ValueError(f"{key}: '{path}' is not a readable image ({error})") from error
    except ValueError as error:
        raise ValueError(f"{key}: '{path}': {error}") from error


def _over_black(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """RGB in 0..1 (float) composited over black by alpha in 0..1."""
    return (rgb * alpha[..., None]).astype(np.float32)


def pil_to_rgb(image: PIL.Image.Image) -> np.ndarray:
    """A PIL image of any mode as RGB (H, W, 3): uint8 where the image is 8-bit without alpha, else
    float32 in 0..1 (16-bit and float modes, alpha composited over black)."""
    mode = image.mode
    if mode == "P" and "transparency" in image.info or mode == "PA":
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "RGBa", "LA", "La"):
        pixels = np.asarray(image.convert("RGBA" if mode.startswith("RGB") else "LA"), dtype=np.float32) / 255.0
        colour = pixels[..., :3] if mode.startswith("RGB") else np.repeat(pixels[..., :1], 3, axis=-1)
        return _over_black(colour, pixels[..., -1])
    if mode.startswith("I;16") or mode == "I":
        pixels = np.asarray(image).astype(np.float64)
        if pixels.size and (pixels.min() < 0 or pixels.max() > SIXTEEN_BIT):
            raise ValueError(f"a mode {mode} image with values in [{pixels.min():g}, {pixels.max():g}]: read as 16-bit "
                             "data (0..65535), which these values do not fit; save it as 8- or 16-bit")
        return _grey_to_rgb(pixels / SIXTEEN_BIT)
    if mode == "F":
        return _grey_to_rgb(_unit_float(np.asarray(image), f"a mode {mode} image"))
    if mode in ("1", "L"):
        return _grey_to_rgb(np.asarray(image.convert("L")))
    return np.asarray(image.convert("RGB"))


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    grey = grey if grey.dtype == np.uint8 else grey.astype(np.float32)
    return np.repeat(grey[..., None], 3, axis=-1)


def _unit_float(pixels: np.ndarray, what: str) -> np.ndarray:
    """Float pixels checked to lie in 0..1, as float32."""
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.size and not np.isfinite(pixels).all():
        raise ValueError(f"{what} holds NaN or infinite values")
    low, high = (float(pixels.min()), float(pixels.max())) if pixels.size else (0.0, 0.0)
    if low < 0 or high > 1:
        hint = " (0..255 data: divide by 255, or pass uint8)" if high > 1 else ""
        raise ValueError(f"{what} has float values in [{low:g}, {high:g}]; float images must lie in 0..1{hint}")
    return pixels


def array_to_rgb(array: np.ndarray) -> np.ndarray:
    """An image array (H, W[, C]) or a batch (B, H, W, C), C in 1, 3, 4, as RGB (..., 3): uint8 kept,
    everything else float32 in 0..1 (uint16 / 65535, bool, float checked to lie in 0..1; alpha over black)."""
    pixels = np.asarray(array)
    if pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[-1] not in (1, 3, 4)):
        pixels = pixels[..., None]
    if pixels.ndim not in (3, 4) or pixels.shape[-1] not in (1, 3, 4):
        raise ValueError(f"an image array must be (H, W), (H, W, 1|3|4) or (B, H, W, 1|3|4), got {tuple(array.shape)}")
    if pixels.dtype == np.uint8:
        pass
    elif pixels.dtype == np.uint16:
        pixels = (pixels / SIXTEEN_BIT).astype(np.float32)
    elif pixels.dtype == np.bool_:
        pixels = pixels.astype(np.float32)
    elif np.issubdtype(pixels.dtype, np.floating):
        pixels = _unit_float(pixels, "an image array")
    else:
        raise ValueError(f"an image array of {pixels.dtype} has no known range; give uint8 (0..255), uint16 "
                         "(0..65535) or float (0..1)")
    if pixels.shape[-1] == 4:
        unit = pixels.astype(np.float32) / (255.0 if pixels.dtype == np.uint8 else 1.0)
        return _over_black(unit[..., :3], unit[..., 3])
    return np.repeat(pixels, 3, axis=-1) if pixels.shape[-1] == 1 else pixels


def _fit(rgb: np.ndarray, size: int | None, geometry: str) -> torch.Tensor:
    """RGB (H, W, 3) uint8 or float 0..1 -> (3, size, size) in [-1, 1] under ``geometry`` (None: own size)."""
    if size is not None:
        rgb = fit_square(np.ascontiguousarray(rgb), size, geometry)
    # uint8: the training clips' arithmetic (datasets.frames_to_tensor); float: clamp the bicubic overshoot
    pixels = rgb.astype(np.float32) / 127.5 - 1.0 if rgb.dtype == np.uint8 else np.clip(rgb, 0, 1) * 2 - 1
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


def reference_image_tensor(image: ReferenceImage, size: int | None = None,
                           geometry: str = DEFAULT_FRAME_GEOMETRY) -> torch.Tensor:
    """(B, 3, size, size) float in [-1, 1] from one of (see the module doc for how each is read):

    * a tensor (B, 3, H, W) or (3, H, W), already in [-1, 1];
    * a PIL image (any mode) or a list of them;
    * an array (H, W[, C]) or (B, H, W, C): uint8, uint16, bool or float in 0..1.

    ``size``: made size x size under the frame ``geometry`` (``data.geometry``); None keeps the size.
    """
    if isinstance(image, PIL.Image.Image):
        image = [image]
    if isinstance(image, list):
        rgbs = [pil_to_rgb(im) for im in image]
    elif isinstance(image, np.ndarray):
        pixels = array_to_rgb(image)
        rgbs = list(pixels) if pixels.ndim == 4 else [pixels]
    elif isinstance(image, torch.Tensor):
        tensor = image.detach().float().cpu()
        tensor = tensor.unsqueeze(0) if tensor.dim() == 3 else tensor
        if tensor.dim() != 4 or tensor.shape[1] != 3:
            raise ValueError(f"an image tensor must be (B, 3, H, W) or (3, H, W) in [-1, 1], got {tuple(image.shape)}")
        rgbs = list(((tensor.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy())
    else:
        raise TypeError(f"image must be a tensor, a numpy array or PIL image(s), got {type(image).__name__}")
    return torch.stack([_fit(rgb, size, geometry) for rgb in rgbs])
