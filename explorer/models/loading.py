"""Load a model by id (an embedded default, a Hugging Face id, or an allowed local folder).

Every failure becomes a ``ModelLoadError`` whose message is one sentence a student can act
on. Weights load from safetensors (or the embedded GGUF) only, never pickle, and
``trust_remote_code`` is never enabled.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig

from explorer.locks import BUILD_LOCK
from explorer.models import embedded

# Built models and the load error live in building.py (embedded.py builds through it too);
# LoadedModel, finish_loading and wrap_model stay importable from here.
from explorer.models.building import LoadedModel, ModelLoadError, architecture_for, finish_loading, wrap_model  # noqa: F401
from explorer.registry import FAMILY_TITLES, Architecture

log = logging.getLogger(__name__)

# A model folder on disk is accepted only below this directory (unset: none accepted), so a
# public deployment cannot be made to read arbitrary paths.
LOCAL_MODEL_ROOT_ENV = "EXPLORER_LOCAL_MODEL_ROOT"
# Refuse to load when the float32 weights would need more than this share of free memory.
MEMORY_HEADROOM = 0.8


def available_devices() -> list[str]:
    return ["cuda", "cpu"] if torch.cuda.is_available() else ["cpu"]


def default_device() -> str:
    return available_devices()[0]


def _free_bytes(device: str) -> int:
    if device == "cuda":
        return int(torch.cuda.mem_get_info()[0])
    import psutil

    return int(psutil.virtual_memory().available)


def parameter_count(config, arch: Architecture) -> int:
    """Parameters of the architecture, counted without allocating weights (meta device)."""
    auto = getattr(transformers, arch.auto_class)
    with BUILD_LOCK, torch.device("meta"):
        model = auto.from_config(config)
    return sum(p.numel() for p in model.parameters())


def _check_fits(config, arch: Architecture, model_id: str, device: str) -> None:
    needed = parameter_count(config, arch) * 4  # float32
    free = _free_bytes(device)
    if needed > MEMORY_HEADROOM * free:
        raise ModelLoadError(
            f"'{model_id}' needs about {needed / 2**30:.1f} GiB for its weights in float32, more than the "
            f"{free / 2**30:.1f} GiB free on this {device.upper()}."
        )


# A Hugging Face id: "name" or "owner/name", each part letters, digits, '-', '_' or '.', at most 96
# characters, starting and ending with a letter or digit (huggingface_hub's validate_repo_id, stricter).
HUB_ID = re.compile(r"(?:[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9])?/)?[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9])?")


def is_hub_id(model_id: str) -> bool:
    return bool(HUB_ID.fullmatch(model_id)) and ".." not in model_id and "--" not in model_id


def not_loadable(model_id: str) -> str:
    """The one refusal for an id that is neither a Hub id nor an allowed folder: the same sentence
    whether or not such a path exists, so the page tells nothing about the server's disk."""
    return (
        f"'{model_id}' is not a Hugging Face id (name or owner/name: letters, digits, '-', '_', '.') nor a "
        "model folder the operator allowed."
    )


def _resolve_local(model_id: str) -> str:
    """The source to load from: a Hub id unchanged (checked against the Hub's grammar before
    anything reads the disk or the network), or the real path of a folder inside the operator's
    root. Anything else raises ``not_loadable``; paths are checked lexically against the root
    before the file system is asked anything, so nothing outside the root is read."""
    root_setting = os.environ.get(LOCAL_MODEL_ROOT_ENV)
    if is_hub_id(model_id):
        if os.path.lexists(model_id.split("/")[0]):  # transformers would read a folder of that name here instead
            raise ModelLoadError(not_loadable(model_id))
        return model_id
    if not root_setting:
        raise ModelLoadError(
            not_loadable(model_id) + f" (Local folders are off: the operator can allow some with "
            f"{LOCAL_MODEL_ROOT_ENV}.)"
        )
    root = Path(os.path.abspath(os.path.expanduser(root_setting)))
    lexical = Path(os.path.normpath(root / os.path.expanduser(model_id)))  # absolute ids replace the root
    if not lexical.is_relative_to(root):
        raise ModelLoadError(not_loadable(model_id))
    real = Path(os.path.realpath(lexical))  # symlinks inside the root may point out of it
    if not real.is_relative_to(Path(os.path.realpath(root))) or not real.is_dir():
        raise ModelLoadError(not_loadable(model_id))
    return str(real)


def explain_load_error(error: BaseException, model_id: str) -> str:
    """One sentence for a failure raised by transformers / huggingface_hub while loading."""
    if isinstance(error, ModelLoadError):
        return str(error)
    text = f"{type(error).__name__}: {error}"
    lowered = text.lower()
    if "trust_remote_code" in text or "custom code" in lowered:
        return (
            f"'{model_id}' needs to run code from its repository, which the explorer never allows "
            "(trust_remote_code stays off)."
        )
    if isinstance(error, torch.OutOfMemoryError) or isinstance(error, MemoryError) or "out of memory" in lowered:
        return f"'{model_id}' ran out of memory while loading; try a smaller model."
    if "couldn't connect" in lowered or "offline" in lowered or "connection" in lowered or "resolve" in lowered:
        return f"'{model_id}' is not in the local cache and the Hugging Face Hub cannot be reached (offline?)."
    if "not a valid model identifier" in lowered or "repository not found" in lowered or "404" in lowered:
        return f"'{model_id}' is not a model on the Hugging Face Hub (check the spelling)."
    if "safetensors" in lowered or "pytorch_model.bin" in lowered or "no file named" in lowered:
        return f"'{model_id}' has no safetensors weights; the explorer does not load pickle (.bin) files."
    if "header" in lowered or "deserializ" in lowered or "invalid" in lowered:
        return f"The weights of '{model_id}' could not be read (the file looks damaged)."
    return unexplained_load_error(error, model_id)


def unexplained_load_error(error: BaseException, model_id: str) -> str:
    first_line = str(error).splitlines()[0][:200] if str(error) else "no details"
    return f"'{model_id}' could not be loaded ({type(error).__name__}: {first_line})."


def _check_embedded_family(model_id: str, family: str | None) -> None:
    known = embedded.embedded_family(model_id)
    if known is None:
        raise ModelLoadError(
            f"'{model_id}' is not one of the embedded models ({', '.join(embedded.all_embedded_ids())})."
        )
    if family is not None and known != family:
        raise ModelLoadError(f"'{model_id}' belongs on the {FAMILY_TITLES[known]} page.")


def load_model(model_id: str, device: str | None = None, family: str | None = None) -> LoadedModel:
    """Load ``model_id`` in eval mode on ``device``; raise ModelLoadError with a clear reason."""
    device = device or default_device()
    if device not in available_devices():
        raise ModelLoadError(
            f"The device '{device}' is not available here (available: {', '.join(available_devices())})."
        )
    model_id = (model_id or "").strip()
    if not model_id:
        raise ModelLoadError("Please enter a model id, for example 'gpt2'.")
    started = time.perf_counter()
    try:
        if model_id.startswith("embedded:"):
            _check_embedded_family(model_id, family)  # before loading: a wrong page costs nothing
            with BUILD_LOCK:  # transformers builds under process-global patches: one build at a time (locks.py)
                loaded = embedded.load_embedded(model_id, device)
        else:
            source = _resolve_local(model_id)
            with BUILD_LOCK:
                loaded = _load_pretrained(model_id, source, device, family)
    except ModelLoadError as error:  # a refusal the explorer made itself: routine, one line
        log.info("model %s refused: %s", model_id, error)
        raise
    except Exception as error:  # every library failure becomes one sentence
        message = explain_load_error(error, model_id)
        if message == unexplained_load_error(error, model_id):  # not a known case: a real failure, keep its traceback
            log.error("loading %s failed", model_id, exc_info=error)
        else:
            log.info(
                "model %s not loaded: %s (%s: %s)",
                model_id,
                message,
                type(error).__name__,
                str(error).splitlines()[0][:200] if str(error) else "",
            )
        raise ModelLoadError(message) from error
    loaded.load_seconds = time.perf_counter() - started
    return loaded


def _load_pretrained(model_id: str, source: str, device: str, family: str | None) -> LoadedModel:
    config = AutoConfig.from_pretrained(source, trust_remote_code=False)
    arch = architecture_for(config, model_id, family)
    _check_fits(config, arch, model_id, device)
    return finish_loading(model_id, arch, source, device)
