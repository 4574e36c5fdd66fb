"""What every training recipe shares: the learning-rate schedule and the checkpoint file.

A checkpoint (``torch.save`` of a dict, written atomically) holds ``step``, ``model`` (every tensor of
the model, or only the trained ones when the rest stays frozen), ``optimizer``, ``log``, ``torch_rng``
and, for a recipe that draws its batches with a numpy generator, ``numpy_rng``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch


def lr_scale(step: int, warmup: int, total: int | None = None, floor: float = 0.0) -> float:
    """The multiplier of the peak learning rate at optimiser step ``step`` (counted from 1).

    Linear warm-up over ``warmup`` steps; then, with ``total``, half a cosine from 1 down to ``floor``
    at step ``total``; without it, the inverse square root sqrt(warmup / step) (Vaswani et al.;
    Marian's default), which needs no total step count, so a run can be extended by resuming.
    """
    if step <= warmup:
        return step / warmup
    if total is None:
        return math.sqrt(warmup / step)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def save_checkpoint(
    path: Path,
    step: int,
    weights: dict[str, torch.Tensor],
    optimizer,
    log: dict,
    numpy_rng: np.random.Generator | None = None,
) -> None:
    """Write a checkpoint (see the module's docstring); a run killed while saving keeps the previous one."""
    state = {
        "step": step,
        "model": weights,
        "optimizer": optimizer.state_dict(),
        "log": log,
        "torch_rng": torch.get_rng_state(),
    }
    if numpy_rng is not None:
        state["numpy_rng"] = numpy_rng.bit_generator.state
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, device: str = "cpu") -> dict:
    """A checkpoint as save_checkpoint wrote it. The fill-mask recipe's checkpoints from before the
    recipes shared this file called their weights 'trainable': read as 'model'."""
    state = torch.load(path, map_location=device, weights_only=True)
    if "trainable" in state:
        state["model"] = state.pop("trainable")
    return state


def restore(state: dict, model, optimizer, numpy_rng: np.random.Generator | None = None, strict: bool = True) -> None:
    """Put a checkpoint's weights, optimiser moments and random states back. ``strict=False`` for a
    checkpoint that holds only the trained tensors (the frozen rest is the model's own)."""
    unexpected = model.load_state_dict(state["model"], strict=strict).unexpected_keys
    if unexpected:
        raise KeyError(f"the checkpoint holds tensors this model does not have: {unexpected[:3]}")
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if numpy_rng is not None:
        numpy_rng.bit_generator.state = state["numpy_rng"]


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"
