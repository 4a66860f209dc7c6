"""Image input for image-to-video (``--image``, the pipeline's ``image=``, the demo): every PIL mode and array type
to the model's [-1, 1] by what its values mean; alpha over black; the aspect by the frame geometry.

Images are built here; values are compared at their own size (no resizing) to the exact expected level, with a
tolerance of 1e-6 for float32 rounding of v / 255 * 2 - 1.
"""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from s2dm_lightning.pipelines.reference_image import load_reference_image, reference_image_tensor

ATOL = 1e-6


def _model_range(unit: np.ndarray) -> torch.Tensor:
    """Expected (1, 3, H, W) from RGB (H, W, 3) in 0..1."""
    return torch.from_numpy(np.asarray(unit, dtype=np.float64).transpose(2, 0, 1)[None] * 2 - 1).float()


def _grey(unit: np.ndarray) -> torch.Tensor:
    return _model_range(np.repeat(np.asarray(unit, dtype=np.float64)[..., None], 3, axis=-1))


def _check(image, expected: torch.Tensor) -> None:
    torch.testing.assert_close(reference_image_tensor(image), expected, atol=ATOL, rtol=0)


LEVELS_16 = np.array([[0, 1000], [32768, 65535]], dtype=np.uint16)


def test_mode_1_is_black_and_white():
    _check(PIL.Image.fromarray(np.array([[True, False], [False, True]])), _grey([[1, 0], [0, 1]]))


def test_mode_L_is_grey_over_255():
    _check(PIL.Image.fromarray(np.array([[0, 64], [128, 255]], np.uint8)), _grey(np.array([[0, 64], [128, 255]]) / 255))


def test_mode_I16_is_scaled_by_65535_not_clipped_to_white():
    image = PIL.Image.fromarray(LEVELS_16, mode="I;16")
    assert image.mode == "I;16"
    _check(image, _grey(LEVELS_16 / 65535))  # before: 1000, 32768 and 65535 all became 255 (white)


def test_mode_I_is_taken_as_16_bit_and_out_of_range_refused():
    _check(PIL.Image.fromarray(LEVELS_16.astype(np.int32), mode="I"), _grey(LEVELS_16 / 65535))
    with pytest.raises(ValueError, match=r"mode I image with values in \[0, 70000\].*16-bit"):
        reference_image_tensor(PIL.Image.fromarray(np.array([[0, 70000]], np.int32), mode="I"))


def test_mode_F_must_lie_in_0_1():
    levels = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
    _check(PIL.Image.fromarray(levels, mode="F"), _grey(levels))
    with pytest.raises(ValueError, match=r"float values in \[0, 200\].*0..1.*divide by 255"):
        reference_image_tensor(PIL.Image.fromarray(levels * 200, mode="F"))


def test_mode_P_uses_its_palette_and_its_transparent_colour_is_black():
    image = PIL.Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), mode="P")
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    red, blue = [1, 0, 0], [0, 0, 1]
    _check(image, _model_range(np.array([[red, blue], [blue, red]], float)))
    image.info["transparency"] = 1  # palette entry 1 (blue) transparent
    _check(image, _model_range(np.array([[red, [0, 0, 0]], [[0, 0, 0], red]], float)))


def test_mode_RGBA_is_composited_over_black():
    pixels = np.array([[[200, 100, 50, 255], [200, 100, 50, 128]], [[10, 20, 30, 0], [255, 255, 255, 64]]], np.uint8)
    expected = pixels[..., :3] / 255 * (pixels[..., 3:] / 255)
    _check(PIL.Image.fromarray(pixels, mode="RGBA"), _model_range(expected))


def test_mode_LA_is_composited_over_black():
    pixels = np.array([[[200, 255], [200, 0]]], np.uint8)
    _check(PIL.Image.fromarray(pixels, mode="LA"), _grey(np.array([[200 / 255, 0.0]])))


def test_mode_CMYK_is_converted_to_rgb():
    pixels = np.array([[[0, 0, 0, 0], [0, 255, 255, 0]]], np.uint8)  # white, red
    _check(PIL.Image.fromarray(pixels, mode="CMYK"), _model_range(np.array([[[1, 1, 1], [1, 0, 0]]], float)))


@pytest.mark.parametrize(("array", "expected"), [
    (np.array([[[0, 128, 255]]], np.uint8), [[[0, 128 / 255, 1]]]),
    (LEVELS_16[..., None], np.repeat((LEVELS_16 / 65535)[..., None], 3, axis=-1)),
    (np.array([[[0.0, 0.5, 1.0]]], np.float32), [[[0, 0.5, 1]]]),
    (np.array([[[0.0, 0.5, 1.0]]], np.float64), [[[0, 0.5, 1]]]),
    (np.array([[True, False]]), [[[1, 1, 1], [0, 0, 0]]]),
    (np.array([[[255, 0, 0, 128]]], np.uint8), [[[128 / 255, 0, 0]]]),
])
def test_arrays_by_dtype(array, expected):
    _check(array, _model_range(np.asarray(expected, float)))


def test_float_arrays_in_0_255_and_untyped_integers_are_errors():
    with pytest.raises(ValueError, match=r"float values in \[0, 255\]; float images must lie in 0..1 \(0..255 data"):
        reference_image_tensor(np.array([[[0.0, 128.0, 255.0]]], np.float32))
    with pytest.raises(ValueError, match="int64 has no known range; give uint8"):
        reference_image_tensor(np.zeros((2, 2, 3), np.int64))


def test_files_of_16_bit_grey_rgba_and_float_modes_read_as_their_values(tmp_path):
    PIL.Image.fromarray(LEVELS_16, mode="I;16").save(tmp_path / "grey16.png")
    torch.testing.assert_close(reference_image_tensor(load_reference_image(tmp_path / "grey16.png")),
                               _grey(LEVELS_16 / 65535), atol=ATOL, rtol=0)
    rgba = np.array([[[200, 100, 50, 0], [200, 100, 50, 255]]], np.uint8)
    PIL.Image.fromarray(rgba, mode="RGBA").save(tmp_path / "alpha.png")
    torch.testing.assert_close(reference_image_tensor(load_reference_image(tmp_path / "alpha.png")),
                               _model_range(np.array([[[0, 0, 0], [200 / 255, 100 / 255, 50 / 255]]])), atol=ATOL, rtol=0)
    PIL.Image.fromarray(np.array([[0.0, 2.0]], np.float32), mode="F").save(tmp_path / "float.tif")
    with pytest.raises(ValueError, match=r"--image: '.*float.tif': a mode F image has float values in \[0, 2\]"):
        load_reference_image(tmp_path / "float.tif")


@pytest.mark.parametrize("geometry", ["crop", "pad"])
def test_a_wide_image_follows_the_frame_geometry_not_squashed(geometry):
    picture = np.zeros((6, 8, 3), np.uint8)
    picture[:, :, 1] = 255  # green, with a red column on each side
    picture[:, 0, :] = picture[:, -1, :] = [255, 0, 0]
    out = reference_image_tensor(picture, 6, geometry)[0]
    assert out.shape == (3, 6, 6)
    if geometry == "crop":  # the centred 6 x 6: the red columns are gone, all green
        assert torch.allclose(out, _model_range(picture[:, 1:7] / 255)[0], atol=ATOL)
    else:  # the whole 8 px width kept at 6 px: red on both sides, black bars top and bottom (6 x 8 -> 4 rows)
        assert out[0, 2:4, 0].min() > 0 and out[0, 2:4, -1].min() > 0
        assert torch.all(out[:, 0] == -1) and torch.all(out[:, -1] == -1)
