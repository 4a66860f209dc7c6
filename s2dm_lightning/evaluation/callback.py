"""FVD / KVD as a Lightning callback: the ``test`` protocol (with its JSON report) and an optional fit-time check.

Test (``python -m s2dm_lightning test``): the model's ``test_step`` returns ``{"videos": (B, F, 3, H, W)
in [-1, 1], ...}`` generated for the test items' conditions (the test split cycled to ``num_videos``
items, see ``data.num_test_videos``). The real side is every test clip once, extracted before the
first batch (tqdm progress) or loaded from the cache. Padded duplicates of Lightning's
DistributedSampler are dropped, so the result does not depend on the number of processes. After
each test epoch the metrics are logged as ``test/fvd`` and ``test/kvd`` (``..._untrained_i3d`` or
``..._<suffix>`` for other networks) and the report is rewritten with every run done so far, each run with the
bootstrap interval of its numbers, its generated features beside the report for ``compare``
(:mod:`.intervals`) and, when asked, cFVD / sFVD (:mod:`.conditional`).

Fit: with ``val_every_n_rounds`` the callback samples ``val_num_videos`` validation videos with
``pl_module.sample_videos(batch, generator)`` in every n-th validation round (inside the validation
loop, so EMA weights are used when an EMA callback swaps them in) and logs ``val/fvd...``, ``val/kvd...``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from s2dm_lightning.data.datasets import CyclicDataset
from s2dm_lightning.evaluation.clips import mp4_round_trip, real_dataset
from s2dm_lightning.evaluation.conditional import conditional_fvds
from s2dm_lightning.evaluation.distributed import (
    PositionedFeatures,
    PositionTracker,
    distributed_world,
    first_loader,
    gather_in_order,
    select_items,
)
from s2dm_lightning.evaluation.features import FeatureBackbone, build_backbone, extract_features
from s2dm_lightning.evaluation.intervals import (
    REPORT_RESAMPLES,
    check_bootstrap_options,
    keep_features,
    real_side,
    run_intervals,
)
from s2dm_lightning.evaluation.protocol import check_data, protocol_report, resolve_protocol
from s2dm_lightning.evaluation.real_stats import (
    RealStatistics,
    cache_file,
    cache_key,
    compute_real_statistics,
    dataset_identity,
    load_cached,
    merge_real_features,
    save_cached,
)
from s2dm_lightning.evaluation.report import recover_earlier_runs, utc_now, write_report
from s2dm_lightning.evaluation.report_body import build_test_report
from s2dm_lightning.evaluation.stats_file import (
    STATS_FILE_KEY,
    dataset_section,
    load_stats_file,
    save_stats_file,
    stats_header,
)
from s2dm_lightning.metrics import FrechetVideoDistance, KernelVideoDistance

REPORT_NAME = "evaluation_report.json"


class VideoMetricsCallback(pl.Callback):
    """FVD and KVD of generated videos against the real test clips (``test``), optionally during ``fit``.

    Features come from the FVD-standard I3D (``i3d_weights`` or ``$S2DM_I3D_WEIGHTS``); without a weight
    file ``test`` stops before generating anything, unless ``allow_random_backbone`` (an untrained I3D,
    metrics named ``..._untrained_i3d``, report headed "NOT FVD/KVD"). A custom ``feature_extractor``
    replaces the I3D (metrics named ``..._<metric_suffix>``). In ``fit``/``predict`` the callback does
    nothing unless ``val_every_n_rounds`` is set.

    Args:
        features: the feature network: ``i3d`` (FVD, the default), ``videomae_v2`` (the content-debiased FVD of
            cd-fvd, logged as ``fvd_videomae_v2``; needs ``videomae_v2_weights``) or ``custom`` (the default when
            ``feature_extractor`` or ``feature_extractor_file`` is set, e.g. the synthetic feature network).
        videomae_v2_weights: path of ``vit_g_hybrid_pt_1200e_ssv2_ft.pth`` (or a safetensors copy); None falls
            back to the environment variable ``S2DM_VIDEOMAE_V2_WEIGHTS``.
        i3d_weights: path of ``i3d_pretrained_400.pt`` (VideoGPT/TATS) or ``i3d_torchscript.pt``
            (StyleGAN-V); None falls back to the environment variable ``S2DM_I3D_WEIGHTS``.
        allow_random_backbone: when no weight file is found, use an untrained I3D instead of failing
            (smoke runs only: the numbers are NOT FVD/KVD and are named so).
        feature_extractor: custom feature network (class_path/init_args), mapping (B, F, 3, H, W) in
            [-1, 1] to (B, d); e.g. ``s2dm_lightning.evaluation.RandomConv3dFeatures`` for fast tests.
        feature_extractor_file: a file holding such a network (alternative to the above): a safetensors file
            of :mod:`s2dm_lightning.synthetic.features`, or TorchScript (needs ``allow_torchscript``).
        allow_torchscript: allow a TorchScript file (a program, which runs its own code) as ``i3d_weights`` or
            ``feature_extractor_file``; only for files you trust. Without it only pickle-free state dicts
            (and TorchScript files whose SHA-256 is a known one) load. The report records which way it loaded.
        metric_suffix: metric-name suffix of a custom extractor (``fvd_<suffix>``); default ``custom``.
        protocol: the evaluation protocol preset (docs/evaluation.md, ``evaluation.protocol``): ``s2dm`` (the
            paper: real = every test clip once, spread frames), ``stylegan-v`` (``fvd2048_16f``: 2048 real clips
            of 16 consecutive frames from the training videos), ``lvdm`` (2048 real clips drawn like the
            training loader's, 10 runs) or ``custom`` (every knob below settable).
        num_videos: N, the number of generated videos in ``test`` (the paper: 2048): the test clips'
            conditions are cycled to N items, with new seeds on every repetition. None: the preset's
            (s2dm: one per test video, or ``data.num_test_videos``; stylegan-v and lvdm: 2048).
        num_real_clips: number of real clips (videos cycled when larger); None: the preset's (s2dm: one per
            test video; stylegan-v and lvdm: 2048).
        real_split: videos of the real clips, ``train``, ``test`` or ``all`` (``custom`` only; None: the preset's).
        frames: frames of a real clip: ``spread`` (first of each of F equal intervals), ``spread_random``
            (one at random per interval, the training draw) or ``consecutive`` (``custom`` only).
        frame_stride: step between consecutive frames (``frames: consecutive``; ``custom`` only).
        real_seed: seed of the random real draws (start offsets, frames within intervals); None = 0.
        mp4_round_trip: write every generated video to H.264 mp4 and read it back before scoring (measures
            what saving to mp4 does to the numbers); None = no.
        real_stats_file: a shareable real-statistics file: used when it exists (refused, naming each
            difference, if made under another protocol, feature network or dataset), else computed and
            written there.
        kvd_subsets: number of random subsets KVD is averaged over (1 with ``kvd_subset_size`` None =
            the full sets once).
        kvd_subset_size: videos per side in each KVD subset; None = all.
        kvd_seed: seed of the KVD subset draws.
        resize_convention: I3D resize to 224: ``tf1`` (the TF FVD reference) or ``torch`` (PyTorch ports);
            None: the preset's (``custom`` only when it differs).
        real_stats_cache_dir: folder of the real-statistics cache; None = ``<trainer.default_root_dir>/real_stats``.
        report_path: JSON report file; None = ``<log dir>/evaluation_report.json``.
        val_every_n_rounds: during ``fit``, compute FVD/KVD in every n-th validation round; None = never.
        val_num_videos: validation videos sampled for the fit-time metrics (the first ones of the val set).
        val_seed: seed of the fit-time sampling (the same every round).
        bootstrap_resamples: resamples of the bootstrap interval of every ``test`` run's FVD and KVD (features
            resampled, nothing generated again; :mod:`s2dm_lightning.evaluation.intervals`); 0 = none.
        bootstrap_seed: seed of the bootstrap draws (the same seed and features give the same interval).
        conditional: conditional FVDs beside FVD: ``class`` (cFVD) and/or ``subject`` (sFVD), FVD within each
            group averaged (:mod:`s2dm_lightning.evaluation.conditional`), under any preset; None: the preset's
            (``lfdm``: both, others: none).
    """

    def __init__(
        self,
        i3d_weights: str | None = None,
        allow_random_backbone: bool = False,
        feature_extractor: nn.Module | None = None,
        feature_extractor_file: str | None = None,
        allow_torchscript: bool = False,
        metric_suffix: str | None = None,
        protocol: str = "s2dm",
        num_videos: int | None = None,
        num_real_clips: int | None = None,
        real_split: str | None = None,
        frames: str | None = None,
        frame_stride: int | None = None,
        real_seed: int | None = None,
        mp4_round_trip: bool | None = None,
        real_stats_file: str | None = None,
        kvd_subsets: int = 1,
        kvd_subset_size: int | None = None,
        kvd_seed: int = 0,
        resize_convention: Literal["tf1", "torch"] | None = None,
        real_stats_cache_dir: str | None = None,
        report_path: str | None = None,
        val_every_n_rounds: int | None = None,
        val_num_videos: int = 8,
        val_seed: int = 0,
        features: Literal["i3d", "videomae_v2", "custom"] | None = None,
        videomae_v2_weights: str | None = None,
        bootstrap_resamples: int = REPORT_RESAMPLES,
        bootstrap_seed: int = 0,
        conditional: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.protocol, self.protocol_overrides = resolve_protocol(
            protocol, num_generated=num_videos, num_real_clips=num_real_clips, real_split=real_split, frames=frames,
            frame_stride=frame_stride, real_seed=real_seed, resize_convention=resize_convention,
            mp4_round_trip=mp4_round_trip, conditional=conditional)
        if kvd_subsets < 1 or (kvd_subset_size is None and kvd_subsets != 1):
            raise ValueError("metrics.kvd_subsets must be >= 1, and > 1 only together with metrics.kvd_subset_size")
        if kvd_subset_size is not None and kvd_subset_size < 2:
            raise ValueError(f"metrics.kvd_subset_size must be >= 2 or null, got {kvd_subset_size}")
        if val_every_n_rounds is not None and val_every_n_rounds < 1:
            raise ValueError(f"metrics.val_every_n_rounds must be >= 1 or null, got {val_every_n_rounds}")
        if val_num_videos < 2:
            raise ValueError(f"metrics.val_num_videos must be >= 2, got {val_num_videos}")
        check_bootstrap_options(bootstrap_resamples, bootstrap_seed)
        self.bootstrap_resamples, self.bootstrap_seed = bootstrap_resamples, bootstrap_seed
        self.i3d_weights, self.allow_random_backbone = i3d_weights, allow_random_backbone
        self.feature_extractor, self.feature_extractor_file = feature_extractor, feature_extractor_file
        self.metric_suffix, self.resize_convention = metric_suffix, self.protocol.resize_convention
        self.allow_torchscript = allow_torchscript
        self.features, self.videomae_v2_weights = features, videomae_v2_weights
        self.num_videos = self.protocol.num_generated
        self.real_stats_file = real_stats_file
        self.kvd_subsets, self.kvd_subset_size, self.kvd_seed = kvd_subsets, kvd_subset_size, kvd_seed
        self.real_stats_cache_dir, self.report_path = real_stats_cache_dir, report_path
        self.val_every_n_rounds, self.val_num_videos, self.val_seed = val_every_n_rounds, val_num_videos, val_seed
        #: Number of ``trainer.test`` runs the report expects (the CLI's ``--n_runs``, else the preset's).
        self.n_runs = self.protocol.n_runs
        #: The parsed config, stored in the report (set by the CLI).
        self.run_config: dict[str, Any] | None = None
        #: How many times real features were extracted from videos (not loaded from the cache).
        self.real_feature_passes = 0
        self.last_report_path: Path | None = None
        self._backbone: FeatureBackbone | None = None
        self._real_memory: dict[str, RealStatistics] = {}
        self._runs: dict[int, dict[str, Any]] = {}
        self._generated: dict[int, torch.Tensor] = {}  # per run, written beside the report for `compare`
        self._test: dict[str, Any] | None = None
        self._val: dict[str, Any] | None = None
        self._val_real: RealStatistics | None = None
        self._val_round = 0

    # ------------------------------------------------------------------ the feature network
    @property
    def backbone(self) -> FeatureBackbone:
        """The feature network, built on first use; raises ``FileNotFoundError`` without weights or opt-in."""
        if self._backbone is None:
            self._backbone = build_backbone(
                self.i3d_weights, self.allow_random_backbone, self.feature_extractor,
                self.feature_extractor_file, self.metric_suffix, self.resize_convention,
                allow_torchscript=self.allow_torchscript, features=self.features,
                videomae_v2_weights=self.videomae_v2_weights,
            )
        return self._backbone

    def metric_names(self) -> tuple[str, str]:
        """The logged names of the two metrics, e.g. ``("fvd", "kvd")`` or ``("fvd_untrained_i3d", ...)``."""
        suffix = self.backbone.metric_suffix
        return f"fvd{suffix}", f"kvd{suffix}"

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "test":
            self.backbone  # noqa: B018 - fails here, before anything is generated, without weights
            if self.num_videos is not None:
                datamodule = trainer.datamodule
                if datamodule is None or not hasattr(datamodule, "num_test_videos"):
                    raise ValueError(
                        "metrics.num_videos needs a data module with a `num_test_videos` attribute "
                        "(s2dm_lightning.data.VideoDataModule has one)"
                    )
                datamodule.num_test_videos = self.num_videos
        elif stage in ("fit", "validate") and self.val_every_n_rounds:
            self.backbone  # noqa: B018

    # ------------------------------------------------------------------ metrics
    def _compute(self, real: RealStatistics, fake: PositionedFeatures,
                 device: torch.device) -> tuple[dict[str, float], torch.Tensor]:
        """FVD and KVD of this rank's generated features merged over all ranks (collective under DDP), and the
        merged features."""
        dim = real.features.shape[1]
        local, positions = fake.tensors(dim, device)
        fvd = FrechetVideoDistance(feature_dim=dim).to(device)
        fvd.set_real_statistics(real.mean, real.cov, real.num_samples)
        if len(local):
            fvd.update_features(local, real=False)
        fvd_value = float(fvd.compute())  # syncs the summed states across ranks
        generated = gather_in_order(local, positions)  # dataset order: KVD subsets as in one process
        kvd = KernelVideoDistance(subsets=self.kvd_subsets, subset_size=self.kvd_subset_size, seed=self.kvd_seed,
                                  sync_on_compute=False)
        kvd.set_real_features(real.features)
        kvd.update_features(generated, real=False)
        kvd_mean, kvd_std = kvd.compute()
        fvd_name, kvd_name = self.metric_names()
        values = {fvd_name: fvd_value, kvd_name: float(kvd_mean), "num_generated_videos": len(generated)}
        if self.kvd_subset_size is not None:
            values[f"{kvd_name}_std_over_subsets"] = float(kvd_std)
        return values, generated

    def _log(self, pl_module: pl.LightningModule, prefix: str, values: dict[str, float]) -> None:
        for name in self.metric_names():
            pl_module.log(f"{prefix}/{name}", torch.tensor(values[name], dtype=torch.float32), sync_dist=True)

    def _check_kvd_size(self, num_real: int, num_fake: int) -> None:
        if self.kvd_subset_size is not None and self.kvd_subset_size > min(num_real, num_fake):
            raise ValueError(
                f"metrics.kvd_subset_size={self.kvd_subset_size} exceeds the smaller side "
                f"({num_real} real, {num_fake} generated videos); lower it or set it to null"
            )

    # ------------------------------------------------------------------ test: real side
    def _compute_real(self, trainer: pl.Trainer, pl_module: pl.LightningModule, dataset: Any,
                      loader: Any) -> RealStatistics:
        rank, world = distributed_world()
        batch_size = getattr(trainer.datamodule, "batch_size", None) or loader.batch_size or 8
        progress = trainer.is_global_zero and trainer.progress_bar_callback is not None
        self.real_feature_passes += 1
        return compute_real_statistics(dataset, self.backbone, pl_module.device, rank, world, batch_size,
                                       loader.num_workers, progress)

    def _real_statistics_file(self, trainer: pl.Trainer, pl_module: pl.LightningModule, dataset: Any,
                              loader: Any) -> tuple[RealStatistics, dict[str, Any]]:
        """The statistics of ``metrics.real_stats_file`` if it matches this protocol, network and dataset;
        computed and written there when the file does not exist."""
        path = Path(os.path.expanduser(str(self.real_stats_file)))
        header = stats_header(self.protocol.real_side(getattr(dataset, "num_frames", 0), getattr(dataset, "resolution", 0)),
                              self.backbone, dataset_section(dataset, trainer.datamodule))
        info: dict[str, Any] = {"file": str(path), "header": header}
        loaded: Any = None
        if trainer.is_global_zero and path.is_file():
            try:
                loaded = load_stats_file(path, header)
            except ValueError as error:  # RealStatisticsMismatchError, ReceivedFileError
                loaded = error  # raised on every rank below, not only here (the others would wait)
        loaded = trainer.strategy.broadcast(loaded)
        if isinstance(loaded, Exception):
            raise loaded
        if loaded is not None:
            return loaded, {**info, "source": "file"}
        real = self._compute_real(trainer, pl_module, dataset, loader)
        if trainer.is_global_zero:
            save_stats_file(path, header, real)
            rank_zero_info(f"Real statistics written to {path} ({STATS_FILE_KEY}): share it with this protocol")
        trainer.strategy.barrier("s2dm_real_statistics_file")
        return real, {**info, "source": "computed"}

    def _real_statistics(self, trainer: pl.Trainer, pl_module: pl.LightningModule, dataset: Any,
                         loader: Any) -> tuple[RealStatistics, dict[str, Any]]:
        if self.real_stats_file:
            return self._real_statistics_file(trainer, pl_module, dataset, loader)
        identity = dataset_identity(dataset, getattr(trainer.datamodule, "root", None))
        key, key_hex = cache_key(identity, self.backbone) if identity is not None else (None, None)
        path = None
        if key_hex is not None:
            path = cache_file(self.real_stats_cache_dir or Path(trainer.default_root_dir) / "real_stats", key_hex)
        info: dict[str, Any] = {"cache_file": str(path) if path else None, "key": key}
        if key_hex is not None and key_hex in self._real_memory:
            return self._real_memory[key_hex], {**info, "source": "memory"}
        real = None
        if path is not None:
            loaded = load_cached(path, key) if trainer.is_global_zero else None
            if trainer.strategy.broadcast(loaded is not None):
                real, info["source"] = trainer.strategy.broadcast(loaded), "cache"
        if real is None:
            real = self._compute_real(trainer, pl_module, dataset, loader)
            info["source"] = "computed"
            if path is not None and trainer.is_global_zero:
                save_cached(path, key, real)
            trainer.strategy.barrier("s2dm_real_statistics")
        if key_hex is not None:
            self._real_memory[key_hex] = real
        return real, info

    # ------------------------------------------------------------------ test hooks
    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        run = int(getattr(pl_module, "evaluation_run", 0))
        if run == 0:
            self._runs, self._generated = {}, {}
        loader = first_loader(trainer.test_dataloaders)
        _, world = distributed_world()
        tracker = PositionTracker(loader, world)
        if tracker.dataset_length < max(2, world):
            raise ValueError(f"the test set has {tracker.dataset_length} items; need >= 2 and >= the {world} ranks")
        dataset = loader.dataset.dataset if isinstance(loader.dataset, CyclicDataset) else loader.dataset
        started = utc_now()
        check_data(self.protocol, trainer.datamodule)
        real_clips = real_dataset(self.protocol, trainer.datamodule, dataset)
        real, real_info = self._real_statistics(trainer, pl_module, real_clips, loader)
        self._check_kvd_size(real.num_samples, tracker.dataset_length)
        self._test = {"tracker": tracker, "fake": PositionedFeatures(), "real": real, "real_info": real_info, "run": run,
                      "started_at": started, "dataset": dataset, "real_clips": real_clips}

    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        if self._test is None or dataloader_idx != 0:
            return
        videos = outputs.get("videos") if isinstance(outputs, Mapping) else None
        if not isinstance(videos, torch.Tensor) or videos.ndim != 5:
            raise TypeError(
                f"{type(self).__name__} needs test_step to return a dict with 'videos' (B, F, 3, H, W) in [-1, 1]"
            )
        tracker: PositionTracker = self._test["tracker"]
        positions = tracker.next_positions(len(videos))
        keep = tracker.keep(positions)  # drops the DistributedSampler's padded duplicates
        if bool(keep.any()):
            kept = mp4_round_trip(videos[keep]) if self.protocol.mp4_round_trip else videos[keep]
            feats = extract_features(self.backbone, kept, pl_module.device)
            self._test["fake"].add(feats, positions[keep])

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._test is None:
            return
        state, self._test = self._test, None
        values, generated = self._compute(state["real"], state["fake"], pl_module.device)
        self._log(pl_module, "test", values)
        if values["num_generated_videos"] != state["tracker"].dataset_length:
            rank_zero_info(f"FVD/KVD: {values['num_generated_videos']} of {state['tracker'].dataset_length} "
                           "test items were generated (limit_test_batches?)")
        self._runs[state["run"]] = {"run": state["run"], **values, "started_at": state["started_at"],
                                    "finished_at": utc_now()}
        default_dir = trainer.log_dir or trainer.default_root_dir  # collective under DDP: on every rank
        path = Path(self.report_path) if self.report_path else Path(default_dir) / REPORT_NAME
        if trainer.is_global_zero:
            self._runs[state["run"]]["intervals"] = run_intervals(
                state["real"].features, generated, self.metric_names(), self.bootstrap_resamples, self.bootstrap_seed)
            self._runs[state["run"]].update(conditional_fvds(
                self.protocol.conditional, trainer.datamodule, state["real_clips"], state["dataset"],
                state["real"].features, generated, self.backbone.metric_suffix))
            recover_earlier_runs(path, state["run"], self.backbone.kind, self._runs)
            state["real_side"] = keep_features(path, state["run"], state["real"].features, generated, self._generated,
                                               real_side(state["real"].features, self.backbone, self.protocol.name))
            state["report_path"] = path
            self.last_report_path = write_report(path, self.backbone.notice, self._report_body(trainer, pl_module, state))
            summary = ", ".join(f"{name} = {values[name]:.4g}" for name in self.metric_names())
            rank_zero_info(f"{self.backbone.notice}\nRun {state['run']}: {summary}. Report: {path}")

    # ------------------------------------------------------------------ report
    def _protocol_info(self) -> dict[str, Any]:
        """The preset, its knobs and overrides, with the number of runs actually asked for."""
        overrides = dict(self.protocol_overrides)
        if self.n_runs != self.protocol.n_runs:
            overrides["n_runs"] = self.n_runs
        return {**protocol_report(self.protocol, overrides), "n_runs": self.n_runs}

    def _report_body(self, trainer: pl.Trainer, pl_module: pl.LightningModule, state: dict[str, Any]) -> dict:
        return build_test_report(self, trainer, pl_module, state, [self._runs[k] for k in sorted(self._runs)])

    # ------------------------------------------------------------------ fit-time hooks
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._val = None
        if not self.val_every_n_rounds or trainer.sanity_checking:
            return
        self._val_round += 1
        if self._val_round % self.val_every_n_rounds:
            return
        loader = first_loader(trainer.val_dataloaders)
        self._val = {"tracker": PositionTracker(loader, distributed_world()[1]), "fake": PositionedFeatures(),
                     "real": PositionedFeatures() if self._val_real is None else None}

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if self._val is None or dataloader_idx != 0:
            return
        tracker: PositionTracker = self._val["tracker"]
        positions = tracker.next_positions(len(batch["frames"]))
        index = tracker.keep(positions, limit=self.val_num_videos).nonzero().flatten().tolist()
        if not index:
            return
        sub, kept = select_items(batch, index), positions[index]
        generator = torch.Generator().manual_seed(self.val_seed + int(kept[0]))
        with torch.no_grad():
            videos = pl_module.sample_videos(sub, generator)
        self._val["fake"].add(extract_features(self.backbone, videos, pl_module.device), kept)
        if self._val["real"] is not None:
            self._val["real"].add(extract_features(self.backbone, sub["frames"], pl_module.device), kept)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._val is None:
            return
        state, self._val = self._val, None
        dim = int(getattr(self.backbone.module, "num_features", 0)) or None
        if self._val_real is None:
            side: PositionedFeatures = state["real"]
            if dim is None and not side.feats:
                raise RuntimeError("a rank got no validation videos; raise metrics.val_num_videos")
            local, positions = side.tensors(dim or side.feats[0].shape[1], pl_module.device)
            self._val_real = merge_real_features(local, positions, pl_module.device)
        self._check_kvd_size(self._val_real.num_samples, self._val_real.num_samples)
        self._log(pl_module, "val", self._compute(self._val_real, state["fake"], pl_module.device)[0])
