"""Helpers shared by the family adapters (torch lives here and in the adapters only)."""

from __future__ import annotations

import contextlib
import time

import numpy as np
import torch

from explorer.text import InputError

# Longest input a trace keeps: 30 layers x 9 heads x 256 x 256 float32 attention maps are
# already 70 MB, and a student reads nothing in a longer heatmap.
MAX_TRACE_TOKENS = 256


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A float32 numpy array of ``tensor``; copied when the tensor is a slice of a larger one, which
    a view would keep alive: a cached decoding step's logits [V] at the last position would
    otherwise hold the forward's whole [T, V] logits (12.6 MB for a 64-token SmolLM2 prompt)."""
    array = tensor.detach().to(torch.float32).cpu().numpy()
    if tensor.untyped_storage().nbytes() > array.nbytes:
        return array.copy()
    return array


def stack_batch0(tensors) -> np.ndarray:
    """A tuple of per-layer [1, ...] tensors -> [layers, ...] numpy array (batch dropped)."""
    return np.stack([to_numpy(t[0]) for t in tensors])


@contextlib.contextmanager
def exclusive(loaded):
    """Serialise forwards on a model shared by every session, without autograd.

    transformers records hidden states / attentions / router logits with hooks it adds
    for the duration of one call; two threads in the same model at once could mix them.
    """
    with loaded.lock, torch.inference_mode():
        yield


@contextlib.contextmanager
def fused_attention(model):
    """PyTorch's fused attention (SDPA) instead of eager attention for a forward that keeps no
    attention maps, on a model whose attention supports it; the caller holds ``exclusive``, so no
    other forward sees the switch, and the model is eager again afterwards.

    A Whisper encoder attends 1500 x 1500 frames per head: eager attention materialises those maps
    (two 54 MB tensors per layer: the process's memory peak) and takes twice as long; SDPA, which
    Hugging Face runs Whisper with by default, computes softmax(QK^T/sqrt(d))V without them."""
    config = model.config
    if config._attn_implementation != "eager" or not getattr(model, "_supports_sdpa", False):
        yield
        return
    config._attn_implementation = "sdpa"
    try:
        yield
    finally:
        config._attn_implementation = "eager"


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def _is_library_capture_hook(hook) -> bool:
    # transformers 5 installs, once per model, permanent output-capturing hooks that stay
    # inert unless a call asks for outputs (they read a per-context collector).
    return "output_capturing_hook" in getattr(hook, "__qualname__", "")


def hook_count(model: torch.nn.Module) -> int:
    """Forward (pre-)hooks on any submodule other than transformers' own capture hooks:
    must be 0 after a trace (the explorer never leaves one behind)."""
    return sum(
        not _is_library_capture_hook(h)
        for m in model.modules()
        for h in (*m._forward_hooks.values(), *m._forward_pre_hooks.values())
    )


def display_token(tokenizer, token_id: int) -> str:
    """A token as a student should see it: spaces as '␣', newlines as '↵', word pieces as
    the tokenizer spells them ('##ing'), partial UTF-8 bytes as the raw token."""
    if tokenizer is None:
        return f"#{token_id}"
    raw = tokenizer.convert_ids_to_tokens(int(token_id))
    if raw is None:
        return f"#{token_id}"
    if raw.startswith("##"):
        return raw
    text = tokenizer.decode([int(token_id)], clean_up_tokenization_spaces=False)
    if not text or "\ufffd" in text:
        return raw
    return text.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥")


def vocabulary_size(loaded) -> int:
    """Token ids that are both a row of the model's output and a token the tokenizer can spell
    (a link's ids are checked against this before any forward)."""
    outputs = loaded.model.get_output_embeddings()
    rows = outputs.weight.shape[0] if outputs is not None else loaded.model.config.vocab_size
    return int(min(rows, len(loaded.tokenizer)))


def display_tokens(tokenizer, ids) -> tuple[str, ...]:
    return tuple(display_token(tokenizer, int(i)) for i in ids)


def max_positions(model, default: int = MAX_TRACE_TOKENS) -> int:
    config = model.config
    limits = [
        getattr(config, name, None) for name in ("max_position_embeddings", "n_positions", "max_target_positions")
    ]
    limits = [x for x in limits if isinstance(x, int) and x > 0]
    return min([default, *limits])


def tokenize(
    loaded, text: str, limit: int | None = None, add_special_tokens: bool = True, keep_end: bool = False
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Token ids [T] of ``text``, cut to the trace limit; notes say if it was cut. ``keep_end``:
    a cut text keeps its closing special token ([SEP]/</s>), as an encoder expects."""
    limit = limit or max_positions(loaded.model)
    ids = loaded.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]
    notes: tuple[str, ...] = ()
    if len(ids) > limit:
        notes = (f"The text is {len(ids)} tokens long; only the first {limit} are shown.",)
        keep_last = ids[-1] if keep_end and add_special_tokens else None
        ids = ids[:limit]
        if keep_last is not None:  # keep [SEP]/</s> so an encoder sees a well-formed input
            ids[-1] = keep_last
    if len(ids) == 0:
        raise InputError("The tokenizer produced no tokens for this text.")
    return np.asarray(ids, dtype=np.int64), notes


def to_torch(array: np.ndarray, device: str, dtype=None) -> torch.Tensor:
    """A tensor copy of ``array``: trace arrays are read-only (shared by every session), and
    a tensor viewing one would let torch write into it."""
    return torch.tensor(array, device=device, dtype=dtype)


def as_batch(ids: np.ndarray, device: str) -> torch.Tensor:
    return to_torch(np.asarray(ids), device, torch.int64)[None, :]
