"""Stage 0 of the paper's recipe (Sec. 4.1): fine-tune SD's VAE on frames of the dataset.

"Since SD 1.5 is trained on 512 x 512 resolution images, directly applying it to the
smaller-sized videos would result in image quality degradation, therefore we fine-tune
the encoder and decoder on our experimental datasets with uncorrelated images randomly
selected from different videos." The frames come from ``data.FrameDataModule``.

Loss: reconstruction (L1 or L2, on a posterior sample as in LDM's autoencoder training)
+ ``kl_weight`` * KL(q(z|x) || N(0, I)) (LDM: 1e-6). No perceptual term: LPIPS needs
pretrained weights, which are never downloaded here. At the end of fit (and on
``export``) the VAE is written as a diffusers ``AutoencoderKL`` folder, which the S2DM
config then names in ``model.vae_path``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from lightning.pytorch.utilities import rank_zero_only

from s2dm_lightning.io import atomic_folder
from s2dm_lightning.models.diffusion_module import training_generator
from s2dm_lightning.models.pretrained import load_vae

log = logging.getLogger(__name__)


class VAEFineTune(L.LightningModule):
    """Fine-tunes an AutoencoderKL's encoder and decoder on single frames.

    Args:
        pretrained: a local folder with ``vae/`` (e.g. stable-diffusion-v1-5) or an
            AutoencoderKL folder itself. Ignored when ``vae`` is given.
        vae: the autoencoder itself (instead of ``pretrained``).
        output_dir: where the fine-tuned VAE is written (an AutoencoderKL folder: point
            the S2DM config's ``model.vae_path`` at it); None = ``<log dir>/vae``.
        learning_rate: Adam learning rate.
        reconstruction_loss: ``l1`` or ``l2`` (pixels in [-1, 1]).
        kl_weight: weight of the KL term (LDM's autoencoders: 1e-6).
        train_encoder: update the encoder (and quant_conv).
        train_decoder: update the decoder (and post_quant_conv).
        gradient_checkpointing: recompute activations in the backward pass (less memory).
    """

    def __init__(
        self,
        pretrained: str | None = None,
        vae: AutoencoderKL | None = None,
        output_dir: str | None = None,
        learning_rate: float = 1e-5,
        reconstruction_loss: Literal["l1", "l2"] = "l1",
        kl_weight: float = 1e-6,
        train_encoder: bool = True,
        train_decoder: bool = True,
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["vae"])
        if vae is None:
            if pretrained is None:
                raise ValueError("model.pretrained (a folder with vae/) or model.vae must be given")
            vae = load_vae(pretrained, "model.pretrained")
        if reconstruction_loss not in ("l1", "l2"):
            raise ValueError(f"model.reconstruction_loss must be 'l1' or 'l2', got {reconstruction_loss!r}")
        if not (train_encoder or train_decoder):
            raise ValueError("model.train_encoder and model.train_decoder are both false: nothing to train")
        self.vae = vae
        vae.requires_grad_(False)
        if train_encoder:
            vae.encoder.requires_grad_(True)
            if vae.quant_conv is not None:
                vae.quant_conv.requires_grad_(True)
        if train_decoder:
            vae.decoder.requires_grad_(True)
            if vae.post_quant_conv is not None:
                vae.post_quant_conv.requires_grad_(True)
        if gradient_checkpointing:
            vae.enable_gradient_checkpointing()
        self._generator: torch.Generator | None = None

    @property
    def generator(self) -> torch.Generator:
        """Posterior-sampling noise, different on every DDP rank (seeded as in ``diffusion_module``)."""
        self._generator = training_generator(self._generator, self.device, self.global_rank, self.global_step)
        return self._generator

    def losses(self, frames: torch.Tensor, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """Reconstruction, KL and total loss of frames (N, 3, H, W) in [-1, 1]."""
        posterior = self.vae.encode(frames).latent_dist
        z = posterior.sample(generator) if generator is not None else posterior.mode()
        recon = self.vae.decode(z).sample
        if self.hparams.reconstruction_loss == "l1":
            rec = F.l1_loss(recon.float(), frames.float())
        else:
            rec = F.mse_loss(recon.float(), frames.float())
        kl = posterior.kl().float().mean() / frames[0].numel()  # per pixel, like the reconstruction term
        total = rec + self.hparams.kl_weight * kl
        mse = F.mse_loss(recon.float().clamp(-1, 1), frames.float())
        psnr = 10 * torch.log10(4.0 / mse.clamp_min(1e-10))  # peak-to-peak 2 for [-1, 1]
        return {"loss": total, "reconstruction": rec, "kl": kl, "psnr": psnr}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        out = self.losses(batch["frames"], self.generator)
        n = batch["frames"].shape[0]
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=n)
        self.log_dict({"train/reconstruction": out["reconstruction"], "train/kl": out["kl"]}, batch_size=n)
        return out["loss"]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        out = self.losses(batch["frames"], None)  # the posterior mean: deterministic
        n = batch["frames"].shape[0]
        self.log_dict({"val/reconstruction": out["reconstruction"], "val/psnr": out["psnr"]},
                      batch_size=n, sync_dist=True, prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.vae.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.hparams.learning_rate)

    def output_folder(self) -> Path:
        if self.hparams.output_dir is not None:
            return Path(self.hparams.output_dir)
        trainer = self._trainer
        root = trainer.log_dir if trainer is not None and trainer.log_dir else "."
        return Path(root) / "vae"

    def save_pretrained(self, folder: str | Path | None = None) -> Path:
        """Write the VAE as an AutoencoderKL folder (config.json + safetensors), replaced as a whole atomically
        (a temporary folder beside it, then a rename: a full disk leaves the old folder or none)."""
        folder = Path(folder) if folder is not None else self.output_folder()
        with atomic_folder(folder) as staging:
            self.vae.save_pretrained(staging)
        return folder

    def on_fit_end(self) -> None:
        self._save_on_rank_zero()

    @rank_zero_only
    def _save_on_rank_zero(self) -> None:
        folder = self.save_pretrained()
        log.info("fine-tuned VAE written to %s (set model.vae_path of the S2DM config to it)", folder)
        print(f"fine-tuned VAE written to {folder}")
