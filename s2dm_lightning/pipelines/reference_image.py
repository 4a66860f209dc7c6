"""The first frame of image-to-video sampling: from a file, a PIL image, an array or a tensor to the
model's input, (B, 3, size, size) float in [-1, 1] (see docs/image_to_video.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

ReferenceImage = torch.Tensor | np.ndarray | PIL.Image.Image | list[PIL.Image.Image]


def load_reference_image(path: str | Path, key: str = "--image") -> torch.Tensor:
    """An image file (PNG, JPEG, ... as Pillow reads them) as (1, 3, H, W) in [-1, 1], at its own size.

    A missing or unreadable file is a ValueError naming ``key`` and the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{key}: '{path}' does not exist or is not a file")
    try:
        with PIL.Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
    except (OSError, ValueError, PIL.Image.DecompressionBombError) as error:
        raise ValueError(f"{key}: '{path}' is not a readable image ({error})") from error
    return reference_image_tensor(pixels)


def reference_image_tensor(image: ReferenceImage, size: int | None = None) -> torch.Tensor:
    """(B, 3, size, size) float in [-1, 1] from one of:

    * a tensor (B, 3, H, W) or (3, H, W), already in [-1, 1];
    * a PIL image or a list of them;
    * an array (H, W, 3) or (B, H, W, 3): uint8 in [0, 255], or float in [0, 1].

    ``size``: resize (bilinear, antialiased when shrinking) to size x size; None keeps the size.
    """
    if isinstance(image, PIL.Image.Image):
        image = [image]
    if isinstance(image, list):
        image = np.stack([np.asarray(im.convert("RGB")) for im in image])
    if isinstance(image, np.ndarray):
        pixels = torch.from_numpy(np.array(image))  # a copy: arrays from PIL are read-only
        if pixels.dim() == 3:
            pixels = pixels.unsqueeze(0)
        if pixels.dim() != 4 or pixels.shape[-1] != 3:
            raise ValueError(f"an image array must be (H, W, 3) or (B, H, W, 3), got {tuple(image.shape)}")
        scale = 255.0 if pixels.dtype == torch.uint8 else 1.0
        image = pixels.permute(0, 3, 1, 2).float() / scale * 2 - 1
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a tensor, a numpy array or PIL image(s), got {type(image).__name__}")
    image = image.float()
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"an image tensor must be (B, 3, H, W) or (3, H, W) in [-1, 1], got {tuple(image.shape)}")
    if size is not None and tuple(image.shape[-2:]) != (size, size):
        image = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return image.clamp(-1, 1)
