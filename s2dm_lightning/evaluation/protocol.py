"""Evaluation protocols: which videos are the real set, how many clips each side has, which frames.

FVD itself is one formula; what moves published numbers is the protocol around it (the real split, the
number of clips, consecutive frames or frames spread over the video, the frame stride, the resize, saving
to mp4). ``metrics.protocol`` names a preset, each following a source:

- ``s2dm`` (default): the S2DM paper, Sec. 4.1. N generated videos for the test conditions; real = every
  test clip once, 16 frames spread over the whole video (the first of each of 16 equal intervals).
- ``stylegan-v``: StyleGAN-V's ``fvd2048_16f`` (``src/metrics/frechet_video_distance.py``: ``compute_fvd``
  with ``max_real=2048, num_gen=2048, num_frames=16``, ``load_n_consecutive=16``, ``subsample_factor=1``,
  ``discard_short_videos``). StyleGAN-V reads its real clips from the training dataset
  (``opts.dataset_kwargs``), so the split here is ``train``: 2048 clips of 16 consecutive frames at a random
  offset, the videos taken in dataset order (cycled if there are fewer than 2048), videos shorter than 16
  frames left out.
- ``lvdm``: LVDM's ``scripts/eval_cal_fvd_kvd.py`` (``shellscripts/eval_lvdm_short.sh``): real = 2048 clips
  from the *training* dataloader (``config.data.params.train``), i.e. our training frame draw (one frame at
  random from each of 16 intervals); PyTorch-port resize; ``--n_runs 10`` with mean and std over the runs.
  LVDM reshuffles the real clips in every run; we draw them once (seeded) so that their statistics can be
  cached and shared, so our std over runs is that of the generation only.
- ``lfdm``: LFDM (Ni et al., CVPR 2023; nihaomiao/CVPR23_LFDM at 3601635): real = every test video once,
  40 frames at ``np.linspace(0, L - 1, 40)`` (the last frame repeated in shorter videos; ``DM/datasets_mug.py``
  lines 167-172), 128 px with the longer side resized by ``INTER_AREA`` onto black bars (``misc.py`` lines
  96-110; ``DM/test_video_flow_diffusion_mug.py`` lines 34-35: ``INPUT_SIZE = 128``, ``N_FRAMES = 40``), the
  test split by subject (``data.init_args.split: lfdm``, see :mod:`s2dm_lightning.data.splits`), and the
  class- and subject-conditional cFVD / sFVD beside FVD. The repository has no FVD code: the feature network's
  resize and the number of generated videos are not in it (``tf1`` and one video per test video here).
- ``custom``: the ``s2dm`` values, every knob settable.

A named preset fixes the knobs that define it (``real_split``, ``frames``, ``frame_stride``,
``resize_convention``); setting one to another value is refused, naming the key (use ``custom``). The counts
(``num_videos``, ``num_real_clips``, ``--n_runs``), ``real_seed``, ``mp4_round_trip`` and ``conditional`` (the
cFVD / sFVD groups; they do not change FVD) may be changed under any preset; the report lists them as
``overrides`` of the preset.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from s2dm_lightning.validation import check_choice, check_number

PROTOCOL_KEY = "metrics.protocol"
REAL_SPLITS = ("train", "test", "all")
#: ``spread``: the first frame of each of F equal intervals (deterministic); ``spread_random``: one frame at
#: random from each interval (the training draw); ``consecutive``: F frames ``frame_stride`` apart from a
#: random start.
#: ``linspace``: LFDM's ``np.linspace(0, L - 1, F)`` frames (the last repeated in short videos).
FRAME_SELECTIONS = ("spread", "spread_random", "consecutive", "linspace")
#: The groups of the conditional FVDs: ``class`` (cFVD: expression / action), ``subject`` (sFVD).
CONDITIONAL_GROUPS = ("class", "subject")
RESIZE_CONVENTIONS = ("tf1", "torch")


@dataclass(frozen=True)
class EvaluationProtocol:
    """Every knob of the evaluation protocol (see the module docstring for the presets).

    Attributes:
        name: the preset (``s2dm``, ``stylegan-v``, ``lvdm`` or ``custom``).
        real_split: the videos the real clips come from: ``train``, ``test`` or ``all`` (every split).
        num_real_clips: number of real clips (videos cycled in order when larger); None = one per video.
        num_generated: number of generated videos; None = one per test video.
        frames: ``spread``, ``spread_random`` or ``consecutive`` (of the real clips; the generated clips are
            what the model makes).
        frame_stride: step between consecutive frames (``consecutive`` only).
        real_seed: seed of the random parts of the real draw (start offsets, frames within intervals).
        resize_convention: the I3D's resize to 224: ``tf1`` (TF FVD reference) or ``torch`` (PyTorch ports).
        mp4_round_trip: write every generated video to H.264 mp4 and read it back before scoring.
        n_runs: default number of generation runs (``--n_runs``); mean and std are over them.
        conditional: the groups of the conditional FVDs reported beside FVD (``class``, ``subject``).
        data: what the preset needs of the data module (``data.init_args.<key>``: value), checked by
            :func:`check_data`.
    """

    name: str
    real_split: str = "test"
    num_real_clips: int | None = None
    num_generated: int | None = None
    frames: str = "spread"
    frame_stride: int = 1
    real_seed: int = 0
    resize_convention: str = "tf1"
    mp4_round_trip: bool = False
    n_runs: int = 1
    conditional: tuple[str, ...] = ()
    data: tuple[tuple[str, Any], ...] = ()

    def real_side(self, num_frames: int, resolution: int) -> dict[str, Any]:
        """What the real statistics depend on besides the videos and the feature network (no preset name:
        two protocols with the same values give the same statistics)."""
        return {"real_split": self.real_split, "num_real_clips": self.num_real_clips, "frames": self.frames,
                "frame_stride": self.frame_stride, "real_seed": self.real_seed, "num_frames": int(num_frames),
                "resolution": int(resolution), "resize_convention": self.resize_convention}

    @property
    def is_s2dm_real_set(self) -> bool:
        """True when the real set is every test clip once with spread frames (the s2dm real side)."""
        return (self.real_split, self.num_real_clips, self.frames) == ("test", None, "spread")


PRESETS: dict[str, EvaluationProtocol] = {
    "s2dm": EvaluationProtocol("s2dm"),
    "stylegan-v": EvaluationProtocol("stylegan-v", real_split="train", num_real_clips=2048, num_generated=2048,
                                     frames="consecutive", frame_stride=1),
    "lvdm": EvaluationProtocol("lvdm", real_split="train", num_real_clips=2048, num_generated=2048,
                               frames="spread_random", resize_convention="torch", n_runs=10),
    "lfdm": EvaluationProtocol("lfdm", frames="linspace", conditional=CONDITIONAL_GROUPS,
                               data=(("num_frames", 40), ("resolution", 128), ("frame_geometry", "pad"),
                                     ("split", "lfdm"))),
    "custom": EvaluationProtocol("custom"),
}

#: Where each preset comes from (the report quotes it).
SOURCES: dict[str, str] = {
    "s2dm": "S2DM paper Sec. 4.1: N generated videos for the test conditions; real = every test clip once, "
            "16 frames spread over the video",
    "stylegan-v": "StyleGAN-V fvd2048_16f (src/metrics/frechet_video_distance.py): 2048 generated, 2048 real clips "
                  "of 16 consecutive frames (subsample_factor 1, random offset, short videos discarded) from the "
                  "training dataset",
    "lvdm": "LVDM scripts/eval_cal_fvd_kvd.py: 2048 real clips from the training dataloader, 2048 generated, "
            "--n_runs 10 (real clips drawn once here, not reshuffled per run)",
    "lfdm": "LFDM (nihaomiao/CVPR23_LFDM at 3601635): every test video of its subject split once (MUG: 26 subjects, "
            "DM/datasets_mug.py lines 124-126; UTD-MHAD: subjects 6, 8, 4, 7, DM/datasets_mhad.py line 175), 40 frames "
            "np.linspace(0, L-1, 40) repeating the last (DM/datasets_mug.py lines 167-172), 128 px padded "
            "(misc.py lines 96-110), with cFVD and sFVD; its FVD code is not public",
    "custom": "every knob from the config (defaults: the s2dm values)",
}

#: Knobs a named preset fixes; set them under ``custom``.
FIXED_KNOBS = ("real_split", "frames", "frame_stride", "resize_convention", "data")


def resolve_protocol(name: str, **knobs: Any) -> tuple[EvaluationProtocol, dict[str, Any]]:
    """The protocol ``name`` with the knobs that are not None applied, and those that changed it.

    Args:
        name: a key of :data:`PRESETS`.
        knobs: fields of :class:`EvaluationProtocol` (None = the preset's value).

    Raises:
        ValueError: an unknown preset or value, a fixed knob changed under a named preset, or a frame
            stride with spread frames; the message names the ``metrics.`` key.
    """
    check_choice(PROTOCOL_KEY, name, PRESETS)
    preset = PRESETS[name]
    given = {key: value for key, value in knobs.items() if value is not None}
    if "conditional" in given:  # a list from the config; the preset's is a tuple
        given["conditional"] = tuple(given["conditional"])
    unknown = sorted(set(given) - {f.name for f in dataclasses.fields(EvaluationProtocol)} - {"name"})
    if unknown:
        raise ValueError(f"unknown protocol knob(s) {unknown}")
    if name != "custom":
        for key in FIXED_KNOBS:
            if key in given and given[key] != getattr(preset, key):
                raise ValueError(
                    f"metrics.{key}={given[key]!r} conflicts with {PROTOCOL_KEY}={name!r}, which fixes "
                    f"{key}={getattr(preset, key)!r} ({SOURCES[name]}); set {PROTOCOL_KEY}=custom to choose it"
                )
    protocol = dataclasses.replace(preset, **given)
    check_choice("metrics.real_split", protocol.real_split, REAL_SPLITS)
    check_choice("metrics.frames", protocol.frames, FRAME_SELECTIONS)
    for group in protocol.conditional:
        check_choice("metrics.conditional", group, CONDITIONAL_GROUPS)
    check_choice("metrics.resize_convention", protocol.resize_convention, RESIZE_CONVENTIONS)
    check_number("metrics.frame_stride", protocol.frame_stride, at_least=1)
    check_number("metrics.num_real_clips", protocol.num_real_clips, at_least=2, optional=True)
    check_number("metrics.num_videos", protocol.num_generated, at_least=2, optional=True)
    check_number("--n_runs", protocol.n_runs, at_least=1)
    if protocol.frame_stride != 1 and protocol.frames != "consecutive":
        raise ValueError(f"metrics.frame_stride={protocol.frame_stride} needs metrics.frames='consecutive' "
                         f"(got {protocol.frames!r}: spread frames have no stride)")
    overrides = {key: value for key, value in given.items() if value != getattr(preset, key)}
    return protocol, overrides


def protocol_report(protocol: EvaluationProtocol, overrides: dict[str, Any]) -> dict[str, Any]:
    """The protocol as the report states it: the preset, its source, every knob and what was overridden."""
    knobs = {key: value for key, value in dataclasses.asdict(protocol).items() if key != "name"}
    return {"preset": protocol.name, "source": SOURCES[protocol.name], **knobs, "overrides": dict(overrides)}


def check_data(protocol: EvaluationProtocol, datamodule: Any) -> None:
    """Refuse a data module that does not give the preset's clips (e.g. ``lfdm`` needs 40 frames of 128 px,
    padded, on LFDM's subject split), naming each ``data.init_args`` key."""
    wrong = [f"data.init_args.{key}={getattr(datamodule, key, None)!r} (needs {value!r})"
             for key, value in protocol.data if getattr(datamodule, key, None) != value]
    if wrong:
        raise ValueError(f"{PROTOCOL_KEY}={protocol.name!r} ({SOURCES[protocol.name]}) needs other data settings: "
                         + "; ".join(wrong) + f"; set them, or use {PROTOCOL_KEY}=custom")
