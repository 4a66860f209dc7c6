"""``test`` / ``predict`` of the text-only mode (paper Table 1, "Ours w/o optical flow").

``TwoStageS2DM`` is a LightningModule that wraps the two-stage pipeline: its ``test_step``
returns the same dict as ``S2DM.test_step`` (``videos``, ``real``, ``flow``, ``caption``,
``video_id``) but the videos come from the captions alone: reference frame, generated flows,
then the video. The FVD/KVD protocol consumes it unchanged. Select it by config::

    model:
      class_path: s2dm_lightning.pipelines.TwoStageS2DM
      init_args: {s2dm_config: ..., s2dm_ckpt: ..., flow_config: ..., flow_ckpt: ...}

and run ``python -m s2dm_lightning test --config <that yaml>`` (no ``--ckpt_path``: the two
checkpoints are named in the model section and loaded in ``configure_model``).
"""

from __future__ import annotations

from typing import Any, Literal

import lightning as L
import torch

from s2dm_lightning.models.diffusion_module import evaluation_seeds
from s2dm_lightning.pipelines.text_to_video import TwoStageTextToVideo
from s2dm_lightning.validation import check_choice, check_number

FlowSource = Literal["generated", "real"]


class TwoStageS2DM(L.LightningModule):
    """Evaluates S2DM without given flows: each test video is made from its caption by the pipeline.

    Args:
        s2dm_config: YAML whose ``model`` section builds the S2DM (the one it was trained with).
        s2dm_ckpt: the S2DM checkpoint.
        flow_config: YAML whose ``model`` section builds the FlowGenerator.
        flow_ckpt: the FlowGenerator checkpoint.
        flow_source: ``generated`` (the two-stage text-only mode) or ``real`` (the test clip's own
            flows, still through steps (a) and (c): a control that should match S2DM's own test).
        sampling_seed: video k of the dataset (``sample_index``) in run r is made with seed
            ``sampling_seed + 100003 r + k``, the rule of ``S2DM.evaluation_generators``.
        num_inference_steps: DDIM steps of both models; None keeps each model's config.
    """

    def __init__(
        self,
        s2dm_config: str | None = None,
        s2dm_ckpt: str | None = None,
        flow_config: str | None = None,
        flow_ckpt: str | None = None,
        flow_source: FlowSource = "generated",
        sampling_seed: int = 0,
        num_inference_steps: int | None = None,
    ) -> None:
        super().__init__()
        check_choice("model.init_args.flow_source", flow_source, ("generated", "real"))
        check_number("model.init_args.num_inference_steps", num_inference_steps, at_least=1, optional=True)
        self.save_hyperparameters()
        self.pipeline: TwoStageTextToVideo | None = None
        self.evaluation_run = 0  # set by the test protocol (--n_runs)

    @classmethod
    def from_pipeline(cls, pipeline: TwoStageTextToVideo, **kwargs: Any) -> TwoStageS2DM:
        """Wrap models that are already built (Python use, tests)."""
        module = cls(**kwargs)
        module.attach(pipeline)
        return module

    def attach(self, pipeline: TwoStageTextToVideo) -> None:
        """Use ``pipeline``'s models; they become children, so Lightning moves them to the device."""
        self.pipeline = pipeline
        self.s2dm = pipeline.s2dm
        self.flow_generator = pipeline.flow_generator

    def configure_model(self) -> None:
        """Build both models from their configs and load their checkpoints (once)."""
        if self.pipeline is not None:
            return
        hp = self.hparams
        missing = [name for name in ("s2dm_config", "s2dm_ckpt") if hp[name] is None]
        if hp.flow_source == "generated":
            missing += [name for name in ("flow_config", "flow_ckpt") if hp[name] is None]
        if missing:
            raise ValueError(f"TwoStageS2DM needs {', '.join('model.init_args.' + m for m in missing)}")
        use_flow = hp.flow_source == "generated"
        self.attach(TwoStageTextToVideo.from_checkpoints(
            hp.s2dm_config, hp.s2dm_ckpt, hp.flow_config if use_flow else None, hp.flow_ckpt if use_flow else None
        ))

    def evaluation_seeds(self, batch: dict[str, Any], batch_idx: int) -> list[int]:
        """One seed per video, independent of batch size and number of ranks (as S2DM's evaluation)."""
        return evaluation_seeds(self.hparams.sampling_seed, int(getattr(self, "evaluation_run", 0)), batch, batch_idx)

    @torch.no_grad()
    def generate(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Videos for the batch's captions (and, with ``flow_source=real``, its flows)."""
        if self.pipeline is None:
            self.configure_model()
        captions = list(batch["caption"])
        num_frames = int(batch["flow"].shape[1]) if "flow" in batch else 16
        reference_flows = batch["flow"] if self.hparams.flow_source == "real" else None
        output = self.pipeline(captions, seed=self.evaluation_seeds(batch, batch_idx), num_frames=num_frames,
                               reference_flows=reference_flows, num_inference_steps=self.hparams.num_inference_steps)
        out = {"videos": output.frames, "flow": output.flows, "reference_frames": output.reference_frames,
               "caption": captions, "video_id": list(batch.get("video_id", [str(i) for i in range(len(captions))]))}
        if "flow" in batch:
            out["real_flow"] = batch["flow"].cpu()
        return out

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """The S2DM test dict (``videos``, ``real``, ``flow``, ``caption``, ``video_id``), videos from text only.

        ``flow`` holds the flows that conditioned the videos (generated ones in the text-only
        mode); the test clip's own flows are in ``real_flow``.
        """
        out = self.generate(batch, batch_idx)
        out["real"] = batch["frames"].cpu()
        return out

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        return self.generate(batch, batch_idx)

    def sample_videos(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, F, 3, H, W) in [-1, 1] from the captions (for callbacks); the seed comes from ``generator``."""
        if self.pipeline is None:
            self.configure_model()
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator)) if generator is not None else 0
        output = self.pipeline(list(batch["caption"]), seed=seed, num_frames=int(batch["flow"].shape[1]),
                               num_inference_steps=self.hparams.num_inference_steps)
        return output.frames.to(self.device)

    def configure_optimizers(self) -> None:
        raise RuntimeError("TwoStageS2DM only evaluates (test / predict); train S2DM and FlowGenerator separately")
