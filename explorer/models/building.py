"""A LoadedModel built from an architecture and a source, with the explorer's fixed options
(eager attention, float32, safetensors or GGUF, never remote code). loading.py (ids, errors,
memory checks) and embedded.py (the packaged defaults) both build through here."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import AutoProcessor, AutoTokenizer

from explorer.models.errors import ModelLoadError  # noqa: F401 (re-exported: loading, embedded)
from explorer.registry import ARCHITECTURES, FAMILY_TITLES, Architecture, supported_list


@dataclass
class LoadedModel:
    """A ready model, shared read-only by every session (guard forwards with ``lock``)."""

    model_id: str
    arch: Architecture
    model: Any  # transformers.PreTrainedModel in eval mode
    tokenizer: Any
    device: str
    processor: Any = None  # WhisperProcessor for speech models
    has_mlm_head: bool = False
    note: str = ""  # shown beside the model in the UI (e.g. "random weights")
    load_seconds: float = 0.0
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def family(self) -> str:
        return self.arch.family

    @property
    def config(self):
        return self.model.config


def architecture_for(config, model_id: str, family: str | None) -> Architecture:
    arch = ARCHITECTURES.get(config.model_type)
    if arch is None:
        raise ModelLoadError(
            f"'{model_id}' is a {config.model_type!r} model, an architecture the explorer does not support "
            f"(supported: {supported_list(family)})."
        )
    if family is not None and arch.family != family:
        raise ModelLoadError(
            f"'{model_id}' is a {arch.display} model ({FAMILY_TITLES[arch.family]}); open the "
            f"{FAMILY_TITLES[arch.family]} page to explore it."
        )
    return arch


def finish_loading(
    model_id: str, arch: Architecture, source: str | Path, device: str, *, note: str = "", **kwargs
) -> LoadedModel:
    """Instantiate an architecture from a folder or hub id with the explorer's fixed options."""
    auto = getattr(transformers, arch.auto_class)
    options = dict(trust_remote_code=False, attn_implementation="eager", dtype=torch.float32)
    if "gguf_file" not in kwargs:
        options["use_safetensors"] = True
    options.update(kwargs)
    model, info = auto.from_pretrained(source, output_loading_info=True, **options)
    model = model.to(device).eval()
    processor = None
    if arch.audio:
        processor = AutoProcessor.from_pretrained(source)
        tokenizer = processor.tokenizer
    else:
        tok_kwargs = {"gguf_file": kwargs["gguf_file"]} if "gguf_file" in kwargs else {}
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False, **tok_kwargs)
    # A checkpoint saved without its MLM head loads with a randomly initialised one: never
    # show predictions from that.
    has_head = type(model).__name__.endswith("ForMaskedLM") and not info.get("missing_keys")
    return LoadedModel(
        model_id=model_id,
        arch=arch,
        model=model,
        tokenizer=tokenizer,
        device=device,
        processor=processor,
        has_mlm_head=has_head,
        note=note,
    )


def wrap_model(model_id: str, model, tokenizer, device: str = "cpu", *, processor=None, note: str = "") -> LoadedModel:
    """A LoadedModel around an already built model (tiny test configs, the random MoE)."""
    arch = architecture_for(model.config, model_id, None)
    model.config._attn_implementation = "eager"
    has_head = model.__class__.__name__.endswith("ForMaskedLM")
    return LoadedModel(
        model_id=model_id,
        arch=arch,
        model=model.to(device).eval(),
        tokenizer=tokenizer,
        device=device,
        processor=processor,
        has_mlm_head=has_head,
        note=note,
    )
