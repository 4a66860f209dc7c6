"""The protocol presets: what each fixes, what may be overridden, and the errors that name the key."""

from __future__ import annotations

import pytest

from s2dm_lightning.evaluation.protocol import PRESETS, check_data, protocol_report, resolve_protocol


def test_each_preset_holds_the_values_of_its_source():
    s2dm, _ = resolve_protocol("s2dm")
    assert (s2dm.real_split, s2dm.num_real_clips, s2dm.num_generated, s2dm.frames) == ("test", None, None, "spread")
    assert s2dm.is_s2dm_real_set and s2dm.resize_convention == "tf1" and s2dm.n_runs == 1
    stylegan, _ = resolve_protocol("stylegan-v")  # fvd2048_16f
    assert (stylegan.real_split, stylegan.num_real_clips, stylegan.num_generated) == ("train", 2048, 2048)
    assert (stylegan.frames, stylegan.frame_stride) == ("consecutive", 1) and not stylegan.is_s2dm_real_set
    lvdm, _ = resolve_protocol("lvdm")
    assert (lvdm.real_split, lvdm.num_real_clips, lvdm.num_generated, lvdm.frames) == ("train", 2048, 2048,
                                                                                       "spread_random")
    assert lvdm.resize_convention == "torch" and lvdm.n_runs == 10
    assert resolve_protocol("custom")[0].real_side(16, 32) == PRESETS["s2dm"].real_side(16, 32)


def test_counts_seed_and_mp4_may_change_under_a_preset_and_are_recorded_as_overrides():
    protocol, overrides = resolve_protocol("stylegan-v", num_generated=20, num_real_clips=64, mp4_round_trip=True,
                                           frame_stride=1, frames=None)
    assert (protocol.num_generated, protocol.num_real_clips, protocol.mp4_round_trip) == (20, 64, True)
    assert overrides == {"num_generated": 20, "num_real_clips": 64, "mp4_round_trip": True}  # stride 1 = preset
    report = protocol_report(protocol, overrides)
    assert report["preset"] == "stylegan-v" and "fvd2048_16f" in report["source"]
    assert report["frames"] == "consecutive" and report["overrides"]["num_real_clips"] == 64


@pytest.mark.parametrize(("preset", "knob", "value"), [("stylegan-v", "frame_stride", 3), ("s2dm", "real_split", "all"),
                                                        ("lvdm", "resize_convention", "tf1"),
                                                        ("s2dm", "frames", "consecutive")])
def test_a_knob_a_preset_fixes_is_refused_naming_key_and_preset(preset, knob, value):
    with pytest.raises(ValueError, match=f"metrics.{knob}={value!r} conflicts with metrics.protocol={preset!r}.*"
                                         "metrics.protocol=custom"):
        resolve_protocol(preset, **{knob: value})


def test_custom_sets_every_knob():
    protocol, overrides = resolve_protocol("custom", real_split="all", frames="consecutive", frame_stride=4,
                                           resize_convention="torch", real_seed=3)
    assert (protocol.real_split, protocol.frames, protocol.frame_stride, protocol.real_seed) == ("all", "consecutive",
                                                                                                 4, 3)
    assert set(overrides) == {"real_split", "frames", "frame_stride", "resize_convention", "real_seed"}


def test_bad_values_are_named():
    with pytest.raises(ValueError, match="metrics.protocol must be one of"):
        resolve_protocol("fvd2048")
    with pytest.raises(ValueError, match="metrics.frame_stride=2 needs metrics.frames='consecutive'"):
        resolve_protocol("custom", frame_stride=2)
    with pytest.raises(ValueError, match="metrics.real_split must be one of"):
        resolve_protocol("custom", real_split="val")
    with pytest.raises(ValueError, match="metrics.num_videos"):
        resolve_protocol("s2dm", num_generated=1)


def test_lfdm_preset_fixes_its_frames_conditional_fvds_and_data():
    lfdm, overrides = resolve_protocol("lfdm")
    assert (lfdm.real_split, lfdm.num_real_clips, lfdm.frames, lfdm.conditional) == ("test", None, "linspace",
                                                                                       ("class", "subject"))
    assert dict(lfdm.data) == {"num_frames": 40, "resolution": 128, "frame_geometry": "pad", "split": "lfdm"}
    assert overrides == {} and not lfdm.is_s2dm_real_set
    assert "datasets_mug.py lines 124-126" in protocol_report(lfdm, overrides)["source"]
    with pytest.raises(ValueError, match="metrics.frames='spread' conflicts with metrics.protocol='lfdm'"):
        resolve_protocol("lfdm", frames="spread")
    # the counts and the conditional groups stay free, as under every preset (listed as overrides)
    assert resolve_protocol("lfdm", num_generated=2048)[0].num_generated == 2048
    assert resolve_protocol("lfdm", conditional=["class"])[1] == {"conditional": ("class",)}


def test_conditional_fvds_under_any_preset_and_unknown_groups():
    protocol, overrides = resolve_protocol("s2dm", conditional=["subject"])
    assert protocol.conditional == ("subject",) and overrides == {"conditional": ("subject",)}
    with pytest.raises(ValueError, match="metrics.conditional"):
        resolve_protocol("custom", conditional=["colour"])


def test_a_data_module_without_the_presets_clips_is_refused_naming_each_key():
    class Data:
        num_frames, resolution, frame_geometry = 16, 128, "crop"

    with pytest.raises(ValueError, match=r"data.init_args.num_frames=16 \(needs 40\).*frame_geometry='crop'.*"
                                         r"data.init_args.split=None \(needs 'lfdm'\)"):
        check_data(resolve_protocol("lfdm")[0], Data())
    check_data(resolve_protocol("s2dm")[0], Data())  # s2dm asks nothing of the data module
