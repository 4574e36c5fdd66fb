"""Interventions on a live model (adapter-level code: torch lives here).

Every intervention runs the input twice, once as the model is and once changed, and returns
both side by side (``explorer.effects``). The model's lock is held per forward, not per job
(``_one_forward``: take the lock, attach the hooks, run one forward, remove the hooks, release),
so a long job (activation patching runs dozens of forwards) lets other visitors' forwards in
between its own, and steps aside while they keep coming (``_give_way``). Changes are made with
forward hooks / pre-hooks that exist only inside ``_one_forward`` (removed in its ``finally``,
even when the forward raises), or with a custom attention mask; weights are never written, so the
shared cached model is untouched (``hook_count(model) == 0`` afterwards, and no other forward ever
sees a hook).

Settings that leave nothing to change or to route to raise ``InterventionRefused`` (an
``InputError``: the page shows its one sentence as a warning) before any forward runs.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from explorer.adapters import batched, family, moe, seq2seq
from explorer.adapters.common import as_batch, exclusive, to_numpy, tokenize
from explorer.adapters.lookup import adapter_for
from explorer.effects import InterventionResult, PatchingResult, TopKSweep, compare, log_softmax, mean_probs_by_token
from explorer.models.accounting import account
from explorer.text import InputError

# The module whose INPUT is the concatenation of the heads' outputs, [B, T, H * d_head] with
# head h in columns h*d_head:(h+1)*d_head, in every supported decoder-only, MoE and encoder
# model: Llama/Qwen2/Mixtral/OLMoE o_proj, GPT-2 attn.c_proj (not mlp.c_proj), GPT-NeoX
# attention.dense, BERT/RoBERTa/ELECTRA/DeBERTa attention.output.dense, DistilBERT out_lin.
_SELF_ATTENTION_OUT = re.compile(
    r"(self_attn\.o_proj|attn\.c_proj|attention\.dense|attention\.output\.dense|attention\.out_lin)$"
)
_LAYER = re.compile(r"\.(\d+)\.")
PATCH_BATCH_FLOATS = 2**26  # most logits one patching forward holds (256 MB in float32)
# A patching forward holds the model's lock, so its length is the most another visitor's forward
# waits for it: at most PATCH_FORWARD_COST block evaluations of one token (a token through one
# block), about 0.1-0.3 s on two cores for SmolLM2-135M (a forward's own overhead, ~0.05 s, stays
# small beside it).
PATCH_FORWARD_COST = 2048
# Pause after a forward before the job takes the lock again: a thread already waiting for the lock
# gets it first (a lock released and retaken at once is usually retaken by its owner).
HANDOFF_PAUSE_S = 0.002
# A long job (patching, greedy decoding) that finds the model busy with another visitor's forward
# steps aside until the model has been free for GIVE_WAY_S, so that visitor's next forwards (a view
# runs several, a moment apart) find it free instead of waiting for one of the job's; but for at
# most GIVE_WAY_MOST_S per forward, so a busy class cannot stop the job.
GIVE_WAY_S = 0.5
GIVE_WAY_MOST_S = 3.0
_POLL_S = 0.01


class InterventionRefused(InputError):
    """Settings the intervention cannot run with; the message is one sentence saying what is possible."""


@contextlib.contextmanager
def _attached(hooks: Iterable[tuple[torch.nn.Module, str, object]]):
    """Register (module, kind, fn) hooks for the duration of the block, then remove every one.

    kind: 'pre' (fn(module, args, kwargs) -> (args, kwargs)) or 'post' (fn(module, args, output) -> output)."""
    handles = []
    try:
        for module, kind, fn in hooks:
            if kind == "pre":
                handles.append(module.register_forward_pre_hook(fn, with_kwargs=True))
            else:
                handles.append(module.register_forward_hook(fn))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _model_free(loaded) -> bool:
    """Whether no other thread holds the model's lock at this moment."""
    if loaded.lock.acquire(blocking=False):
        loaded.lock.release()
        return True
    return False


def _give_way(loaded) -> None:
    """Before a long job's next forward: nothing if the model is free; else wait until it has been
    free for GIVE_WAY_S (at most GIVE_WAY_MOST_S)."""
    if _model_free(loaded):
        return
    began = time.perf_counter()
    free_since = None
    while time.perf_counter() - began < GIVE_WAY_MOST_S:
        time.sleep(_POLL_S)
        now = time.perf_counter()
        if not _model_free(loaded):
            free_since = None
        elif free_since is None:
            free_since = now
        elif now - free_since >= GIVE_WAY_S:
            return


@contextlib.contextmanager
def _one_forward(loaded, hooks: Iterable[tuple[torch.nn.Module, str, object]] = (), give_way: bool = False):
    """The unit of work on the shared model: one lock acquisition for one forward, with ``hooks``
    attached after the lock is taken and removed before it is released (no other forward ever
    runs with them). After it a short pause lets a visitor waiting for the lock go first.
    ``give_way``: a forward of a long job, which first lets other visitors' forwards pass
    (``_give_way``)."""
    if give_way:
        _give_way(loaded)
    try:
        with exclusive(loaded), _attached(hooks):
            yield
    finally:
        time.sleep(HANDOFF_PAUSE_S)


def _logits(loaded, ids: np.ndarray, **kwargs) -> np.ndarray:
    """[T, V] logits of one forward (call inside ``_one_forward``)."""
    return to_numpy(loaded.model(input_ids=as_batch(ids, loaded.device), **kwargs).logits[0])


def _causal(loaded) -> bool:
    return adapter_for(loaded).causal


def _check_scorable(loaded) -> None:
    adapter = adapter_for(loaded)
    if adapter.answer == family.MASKED and not loaded.has_mlm_head:
        raise InterventionRefused(
            f"{loaded.model_id} has no trained masked-language head: there is no output distribution to compare."
        )
    if adapter.encoder_decoder(loaded):
        raise InterventionRefused(
            "This intervention needs an encoder-only, decoder-only or MoE model; for an encoder-decoder, remove "
            "cross-attention instead."
        )


def _check_text(ids: np.ndarray, least: int = 2) -> None:
    if len(ids) < least:
        raise InterventionRefused(
            f"The text is {len(ids)} token(s): an intervention needs at least {least} to compare."
        )


# --- attention heads ---------------------------------------------------------------------------


def num_heads(config) -> int:
    for name in ("num_attention_heads", "n_head", "n_heads"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    raise ValueError(f"no head count in {type(config).__name__}")


def attention_output_projections(model) -> list[torch.nn.Module]:
    """The self-attention output projection of every block, in layer order."""
    if model.config.model_type == "albert":
        raise InterventionRefused(
            "ALBERT shares one block between all layers: a head cannot be switched off in one layer only."
        )
    found = [
        (int(_LAYER.search(name).group(1)), module)
        for name, module in model.named_modules()
        if _SELF_ATTENTION_OUT.search(name)
    ]
    if not found:
        raise InterventionRefused(f"No attention output projection was found in {type(model).__name__}.")
    return [module for _, module in sorted(found, key=lambda item: item[0])]


HEAD_MODES = ("zero", "mean", "prefix")
HEAD_MODE_TEXT = {
    "zero": "zeroed",
    "mean": "replaced by their mean over the reference set",
    "prefix": "replaced by their running mean over the positions so far",
}


def _ablate_heads_hook(heads: list[int], num: int, mode: str, means: torch.Tensor | None = None):
    """A pre-hook on a block's attention output projection replacing the input columns of ``heads``:
    by 0 ('zero'), by the head's mean output over a reference set of texts (``means``
    [H * d_head], 'mean': the same vector at every position, so nothing leaks between positions)
    or by its mean over positions 0..t at position t ('prefix': causal, computed from this text
    up to t only)."""

    def hook(module, args, kwargs):
        x = args[0].clone()  # [B, T, H * d_head]
        width = x.shape[-1] // num
        for h in heads:
            cols = slice(h * width, (h + 1) * width)
            if mode == "zero":
                x[..., cols] = 0.0
            elif mode == "mean":
                x[..., cols] = means[cols].to(x.dtype)
            else:  # running mean: position t averages positions 0..t of this text
                counts = torch.arange(1, x.shape[-2] + 1, dtype=x.dtype, device=x.device)[:, None]  # [T, 1]
                x[..., cols] = args[0][..., cols].cumsum(dim=-2) / counts
        return (x, *args[1:]), kwargs

    return hook


def reference_head_means(loaded, reference_ids: list[np.ndarray]) -> np.ndarray:
    """[L, H * d_head] every head's output (the input of its block's output projection) averaged
    over every position of the reference texts (token ids [T] each): what mean ablation puts in a
    head's place. The texts are read in padded batches; padding positions are left out."""
    projections = attention_output_projections(loaded.model)
    sums: dict[int, torch.Tensor] = {}
    count = 0
    for group in batched.chunks([len(ids) for ids in reference_ids], batched.BATCH_TOKENS):
        ids, mask = batched.padded([np.asarray(reference_ids[i]) for i in group], loaded.device)
        real = mask[..., None].double()  # [B, T, 1]: 1 on the texts' own tokens

        def reader(layer, real=real):
            def hook(module, args, kwargs):
                total = (args[0].double() * real).sum(dim=(0, 1)).cpu()  # [H * d_head]
                sums[layer] = sums[layer] + total if layer in sums else total

            return hook

        with _one_forward(loaded, [(p, "pre", reader(i)) for i, p in enumerate(projections)]):
            loaded.model(input_ids=ids, attention_mask=mask)
        count += int(mask.sum())
    return torch.stack([sums[i] / count for i in range(len(projections))]).float().numpy()


def check_heads(
    model, heads: Iterable[tuple[int, int]], mode: str = "zero", causal: bool = True
) -> dict[int, list[int]]:
    """The (layer, head) pairs grouped by layer; InterventionRefused when there is none or one does
    not exist in ``model``, or for a running (prefix) mean in a model that is not causal."""
    if mode not in HEAD_MODES:
        raise InterventionRefused(f"A head's output can be replaced by 'zero', 'mean' or 'prefix', not {mode!r}.")
    if mode == "prefix" and not causal:
        raise InterventionRefused(
            "An encoder reads every position at once, so a running mean over the positions so far means nothing "
            "there: replace the head's output by zero or by its mean over the reference set."
        )
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(int(layer), []).append(int(head))
    if not by_layer:
        raise InterventionRefused("Choose at least one head to switch off.")
    layers, num = len(attention_output_projections(model)), num_heads(model.config)
    for layer, hs in sorted(by_layer.items()):
        for h in hs:
            if not (0 <= layer < layers and 0 <= h < num):
                raise InterventionRefused(
                    f"L{layer}H{h} does not exist: this model has {layers} layers (L0 to L{layers - 1}) of {num} "
                    f"heads (H0 to H{num - 1})."
                )
    return by_layer


def head_ablation(
    loaded,
    ids: np.ndarray,
    heads: Iterable[tuple[int, int]],
    mode: str = "zero",
    reference: np.ndarray | None = None,
    reference_name: str = "the reference set",
) -> InterventionResult:
    """Switch off attention heads, given as (layer, head) pairs, before the output projection
    mixes the heads: their output is replaced by zeros (``mode='zero'``), by its mean over a
    reference set of texts (``'mean'``: ``reference`` [L, H * d_head] from
    ``reference_head_means``, named ``reference_name``), or by its running mean over the positions
    up to each one (``'prefix'``, causal models). Neither mean lets a position see text after it."""
    _check_scorable(loaded)
    _check_text(ids)
    by_layer = check_heads(loaded.model, heads, mode, _causal(loaded))
    if mode == "mean" and reference is None:
        raise ValueError("mean ablation needs the heads' reference means (reference_head_means)")
    projections = attention_output_projections(loaded.model)
    num = num_heads(loaded.model.config)
    hooks = []
    for layer, hs in by_layer.items():
        means = None if mode != "mean" else torch.as_tensor(np.asarray(reference[layer]), device=loaded.device)
        hooks.append((projections[layer], "pre", _ablate_heads_hook(hs, num, mode, means)))
    with _one_forward(loaded):
        base = _logits(loaded, ids)
    with _one_forward(loaded, hooks):
        modified = _logits(loaded, ids)
    names = ", ".join(f"L{layer}H{h}" for layer, hs in sorted(by_layer.items()) for h in hs)
    how = HEAD_MODE_TEXT[mode].replace("the reference set", reference_name)
    return compare(f"heads {names} {how}", ids, base, modified, _causal(loaded))


def sink_free_mask(num_tokens: int, causal: bool, dtype=torch.float32) -> torch.Tensor:
    """[1, 1, T, T] additive attention mask: 0 where a query may look, the dtype's minimum
    where it may not. Key 0 is forbidden to every query that has another key to attend to
    (query 0 of a causal model keeps it), so softmax renormalises over the rest."""
    q = torch.arange(num_tokens)[:, None]
    k = torch.arange(num_tokens)[None, :]
    forbidden = (k == 0) & (q > 0) if causal else (k == 0).expand(num_tokens, num_tokens)
    if causal:
        forbidden = forbidden | (k > q)
    mask = torch.zeros(num_tokens, num_tokens, dtype=dtype)
    mask[forbidden] = torch.finfo(dtype).min
    return mask[None, None]


def sink_removal(loaded, ids: np.ndarray) -> InterventionResult:
    """Remove attention to the first position in every layer and head, renormalising the
    rest (a custom 4-D attention mask: the same softmax with key 0 excluded)."""
    _check_scorable(loaded)
    _check_text(ids)
    mask = sink_free_mask(len(ids), _causal(loaded), loaded.model.dtype).to(loaded.device)
    with _one_forward(loaded):
        base = _logits(loaded, ids)
    with _one_forward(loaded):
        modified = _logits(loaded, ids, attention_mask=mask)
    return compare("attention to the first token removed (renormalised)", ids, base, modified, _causal(loaded))


# --- activation patching -----------------------------------------------------------------------


def blocks(model) -> torch.nn.ModuleList:
    """The transformer blocks of a decoder-only, MoE or encoder model, in order."""
    for _, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == model.config.num_hidden_layers:
            return module
    raise InterventionRefused(
        f"{type(model).__name__} has no list of blocks to patch between (ALBERT, for one, reuses a single block)."
    )


def _residual_hook(stack: torch.nn.ModuleList, depth: int, edit):
    """A hook that applies ``edit(hidden [B, T, D]) -> hidden`` to the residual stream at
    ``depth``: the input of block ``depth`` (0 = embeddings), or for depth L the output of
    the last block (before any final norm)."""
    if depth < len(stack):

        def pre(module, args, kwargs):
            if args:
                return (edit(args[0]), *args[1:]), kwargs
            kwargs = dict(kwargs, hidden_states=edit(kwargs["hidden_states"]))
            return args, kwargs

        return stack[depth], "pre", pre

    def post(module, args, output):
        if isinstance(output, tuple):
            return (edit(output[0]), *output[1:])
        return edit(output)

    return stack[-1], "post", post


def _read_stream(loaded, ids: np.ndarray, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """([L+1, T, D] the residual stream at every depth, the logits [T', V]) of one forward,
    the stream captured with the patching hooks themselves (so a patch writes back exactly
    what was read)."""
    stack = blocks(loaded.model)
    captured: dict[int, torch.Tensor] = {}

    def reader(depth):
        def edit(hidden):
            captured[depth] = hidden[0].detach().clone()
            return hidden

        return edit

    with _one_forward(loaded, [_residual_hook(stack, d, reader(d)) for d in range(len(stack) + 1)]):
        logits = loaded.model(input_ids=as_batch(ids, loaded.device), **kwargs).logits[0]
    return torch.stack([captured[d] for d in range(len(stack) + 1)]), logits


def residual_stream(loaded, ids: np.ndarray) -> torch.Tensor:
    """[L+1, T, D] the residual stream at every depth (one forward, its own lock)."""
    return _read_stream(loaded, ids)[0]


def patched_logits(
    loaded, clean_ids: np.ndarray, corrupted_ids: np.ndarray, depth: int, positions: Iterable[int]
) -> np.ndarray:
    """[T, V] logits of the corrupted prompt with the clean residual stream copied in at
    ``depth`` for every position in ``positions`` at once (the unbatched reference)."""
    positions = list(positions)
    clean = residual_stream(loaded, clean_ids)

    def edit(hidden):
        hidden = hidden.clone()
        hidden[:, positions] = clean[depth, positions]
        return hidden

    with _one_forward(loaded, [_residual_hook(blocks(loaded.model), depth, edit)]):
        return _logits(loaded, corrupted_ids)


def check_patching(
    loaded,
    clean_ids: np.ndarray,
    corrupted_ids: np.ndarray,
    clean_answer: int,
    corrupted_answer: int,
    position: int = -1,
    metric: str = "logit_diff",
) -> None:
    """InterventionRefused (one sentence saying what would work) unless the pair can be patched."""
    if metric not in ("logit_diff", "probability"):
        raise InterventionRefused(f"The patching metric is 'logit_diff' or 'probability', not {metric!r}.")
    clean_ids, corrupted_ids = np.asarray(clean_ids), np.asarray(corrupted_ids)
    if clean_ids.shape != corrupted_ids.shape:
        raise InterventionRefused(
            f"The clean prompt is {len(clean_ids)} tokens and the corrupted one {len(corrupted_ids)}: patching needs "
            "them equally long (change words that are one token each)."
        )
    if len(clean_ids) == 0:
        raise InterventionRefused("The prompts are empty: there is nothing to patch.")
    if np.array_equal(clean_ids, corrupted_ids):
        raise InterventionRefused("The clean and corrupted prompts are the same tokens: there is nothing to patch.")
    if not -len(clean_ids) <= position < len(clean_ids):
        raise InterventionRefused(
            f"Position {position} is outside the prompts ({len(clean_ids)} tokens: 0 to {len(clean_ids) - 1})."
        )
    vocab = int(loaded.model.config.vocab_size)
    for answer in (clean_answer, corrupted_answer):
        if not 0 <= int(answer) < vocab:
            raise InterventionRefused(f"Answer id {answer} is outside this model's vocabulary (0 to {vocab - 1}).")
    if metric == "logit_diff" and int(clean_answer) == int(corrupted_answer):
        raise InterventionRefused(
            "The clean and corrupted answers are the same token: their logit difference is always 0, so there is "
            "nothing for a patch to restore."
        )


def _patching_options(loaded, position: int) -> tuple[dict, int]:
    """(keyword arguments of a patching forward, index of the read position in its logits): the
    vocabulary head at ``position`` only where the model can (``logits_to_keep``), no KV cache."""
    parameters = inspect.signature(loaded.model.forward).parameters
    options: dict = {}
    if "use_cache" in parameters:
        options["use_cache"] = False
    if "logits_to_keep" in parameters:
        options["logits_to_keep"] = torch.tensor([position], device=loaded.device)
        return options, 0
    return options, position


# Model classes whose blocks take a batch that grows between blocks (True) or not (False); unknown
# classes are tried once and fall back to a batch of fixed size.
_GROWS: dict[type, bool] = {}


def _patch_cost(depth: int, layers: int, tokens: int, grow: bool) -> int:
    """Block evaluations of one token that one patched copy costs (the head counted as one block)."""
    return tokens * ((layers - depth if grow else layers) + 1)


def _next_chunk(
    patches: list[tuple[int, int]], tokens: int, layers: int, most_rows: int, grow: bool
) -> list[tuple[int, int]]:
    """The first patches of ``patches`` (sorted by depth) that one forward runs: at least one, at most
    ``most_rows``, costing at most PATCH_FORWARD_COST block evaluations (the unpatched prompt's
    blocks before the first copy joins included)."""
    chunk: list[tuple[int, int]] = []
    cost = tokens * patches[0][0] if grow else 0
    for patch in patches[:most_rows]:
        extra = _patch_cost(patch[0], layers, tokens, grow)
        if chunk and cost + extra > PATCH_FORWARD_COST:
            break
        chunk.append(patch)
        cost += extra
    return chunk


def _patched_forward(
    loaded,
    stack,
    clean: torch.Tensor,
    corrupted: torch.Tensor,
    corrupted_ids: np.ndarray,
    chunk,
    options: dict,
    grow: bool,
) -> torch.Tensor:
    """Logits [len(chunk), T', V] of the corrupted prompt, copy i with the clean residual stream
    copied in at chunk[i] = (depth, position): one forward with a batch dimension. ``grow``: copy i
    joins the batch at its own depth as the corrupted stream there (``corrupted`` [L+1, T, D], read
    by an unpatched forward) with one position replaced, so the blocks before it run once (on the
    prompt alone, which the first copies replace); else every copy runs every block and is patched
    at its depth."""
    by_depth: dict[int, list[int]] = {}
    for depth, position in chunk:  # sorted by depth: the batch keeps the chunk's order either way
        by_depth.setdefault(depth, []).append(position)
    hooks, first_row = [], 0
    for depth, positions in by_depth.items():
        pos = torch.tensor(positions, device=clean.device)
        copies = torch.arange(len(positions), device=clean.device)

        def edit(hidden, depth=depth, pos=pos, copies=copies, first=first_row):  # hidden [B, T, D]
            if grow:  # the copies that join here; the unpatched prompt is dropped when the first ones join
                new = corrupted[depth].to(hidden.dtype).expand(len(pos), -1, -1).clone()
                new[copies, pos] = clean[depth, pos].to(hidden.dtype)
                return new if first == 0 else torch.cat([hidden, new])
            hidden = hidden.clone()
            hidden[first + copies, pos] = clean[depth, pos].to(hidden.dtype)
            return hidden

        hooks.append(_residual_hook(stack, depth, edit))
        first_row += len(positions)
    batch = as_batch(corrupted_ids, loaded.device)
    if not grow:
        batch = batch.expand(len(chunk), -1)
    with _one_forward(loaded, hooks, give_way=True):
        logits = loaded.model(input_ids=batch, **options).logits
    if logits.shape[0] != len(chunk):
        raise RuntimeError(f"a patching forward of {len(chunk)} copies returned {logits.shape[0]}")
    return logits


def _patching_metric(metric: str, clean_answer: int, corrupted_answer: int):
    """The patching metric of logits [..., V] at the read position -> [...]: the clean answer's
    probability, or the logit difference clean answer - corrupted answer."""

    def measure(logits: torch.Tensor) -> np.ndarray:
        row = to_numpy(logits).astype(np.float64)
        if metric == "probability":
            return np.exp(log_softmax(row)[..., clean_answer])
        return row[..., clean_answer] - row[..., corrupted_answer]

    return measure


def _patch_every(
    loaded,
    clean: torch.Tensor,
    corrupted: torch.Tensor,
    corrupted_ids: np.ndarray,
    options: dict,
    read: int,
    measure,
    untouched: float,
) -> np.ndarray:
    """[L+1, T] the metric with each (depth, position) of the clean stream ``clean`` [L+1, T, D] patched
    into the corrupted run (``corrupted``, its own stream), in chunks of copies (``_next_chunk``); a
    patch that changes nothing keeps ``untouched``, the corrupted run's metric."""
    stack = blocks(loaded.model)
    layers, t = len(stack), len(corrupted_ids)
    patched = np.full((layers + 1, t), untouched)
    changing = (clean != corrupted).flatten(2).any(-1)  # [L+1, T]: the patches that change the corrupted run
    remaining = [(int(d), int(p)) for d, p in torch.nonzero(changing).tolist()]  # sorted by depth, then position
    kept = 1 if "logits_to_keep" in options else t
    most_rows = max(1, PATCH_BATCH_FLOATS // (kept * int(loaded.model.config.vocab_size)))
    model_class = type(loaded.model)
    while remaining:
        grow = _GROWS.get(model_class, True)
        chunk = _next_chunk(remaining, t, layers, most_rows, grow)
        try:
            logits = _patched_forward(loaded, stack, clean, corrupted, corrupted_ids, chunk, options, grow)
        except (RuntimeError, ValueError, IndexError):
            if model_class in _GROWS or not grow:
                raise
            _GROWS[model_class] = False  # blocks that cannot take a growing batch: every copy from the start
            continue
        _GROWS.setdefault(model_class, grow)
        for (depth, pos), value in zip(chunk, measure(logits[:, read])):
            patched[depth, pos] = value
        remaining = remaining[len(chunk) :]
    return patched


def activation_patching(
    loaded,
    clean_ids: np.ndarray,
    corrupted_ids: np.ndarray,
    clean_answer: int,
    corrupted_answer: int,
    position: int = -1,
    metric: str = "logit_diff",
) -> PatchingResult:
    """Patch the clean residual stream into the corrupted run at every (depth, position),
    one patch at a time, and read at ``position`` the logit difference clean answer -
    corrupted answer (``metric='logit_diff'``) or the clean answer's probability
    (``'probability'``, e.g. of the masked token).

    Batched: a forward carries one copy of the corrupted prompt per patch (a batch dimension),
    the copy of patch (d, t) joining at depth d as the corrupted stream with position t replaced,
    so no copy runs the blocks before its depth; only the read position goes through the
    vocabulary head. A patch that writes back what is already there (a position before the first
    changed token of a causal model, an unchanged token's embedding) is not run: it leaves the
    corrupted metric. Each forward holds the lock on its own and costs at most PATCH_FORWARD_COST
    block evaluations: the most another visitor's forward waits for it. Equal to patching one
    (depth, position) at a time (``patched_logits``) to float precision."""
    _check_scorable(loaded)
    check_patching(loaded, clean_ids, corrupted_ids, clean_answer, corrupted_answer, position, metric)
    clean_ids, corrupted_ids = np.asarray(clean_ids), np.asarray(corrupted_ids)
    position = position % len(clean_ids)
    options, read = _patching_options(loaded, position)
    measure = _patching_metric(metric, clean_answer, corrupted_answer)
    clean, clean_logits = _read_stream(loaded, clean_ids, **options)  # [L+1, T, D], [T', V]
    corrupted, corrupted_logits = _read_stream(loaded, corrupted_ids, **options)
    corrupted_metric = float(measure(corrupted_logits[read]))
    return PatchingResult(
        clean_ids=clean_ids,
        corrupted_ids=corrupted_ids,
        clean_answer=int(clean_answer),
        corrupted_answer=int(corrupted_answer),
        position=position,
        metric=metric,
        clean_metric=float(measure(clean_logits[read])),
        corrupted_metric=corrupted_metric,
        patched=_patch_every(loaded, clean, corrupted, corrupted_ids, options, read, measure, corrupted_metric),
    )


# --- a prompt pair, set up for patching ----------------------------------------------------------


@dataclass(frozen=True)
class PatchingSetup:
    """A clean/corrupted pair as token ids for activation patching: ids [T] each, the answers'
    single token ids, the position read and the metric ('probability' of the masked word for an
    encoder, else the logit difference). ``pair``: the pair it was made from."""

    pair: object
    clean: np.ndarray
    corrupted: np.ndarray
    clean_answer: int
    corrupted_answer: int
    position: int
    metric: str


def patching_setup(loaded, pair) -> PatchingSetup:
    """Tokenise a pair (texts ``clean`` and ``corrupted``, with ``{mask}`` where a masked model reads
    its answer, and one-token answers ``clean_answer`` and ``corrupted_answer``: an
    explorer.experiments.prompts.Pair); ValueError (saying what differs) when the two prompts are not
    equally long or an answer is not one token in this model's tokenizer."""
    tokenizer = loaded.tokenizer
    masked = adapter_for(loaded).answer == family.MASKED  # read at the [MASK], else after the last token
    if masked:
        texts = [text.format(mask=tokenizer.mask_token) for text in (pair.clean, pair.corrupted)]
    else:
        texts = [pair.clean, pair.corrupted]
    clean, corrupted = (tokenize(loaded, text)[0] for text in texts)
    answers = []
    for answer in (pair.clean_answer, pair.corrupted_answer):
        ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(f"the answer {answer!r} is {len(ids)} tokens in this model's tokenizer; it must be one")
        answers.append(ids[0])
    if len(clean) != len(corrupted):
        raise ValueError(
            f"the clean prompt is {len(clean)} tokens and the corrupted one {len(corrupted)}: patching needs them "
            "equally long (words that are one token each)"
        )
    position = int(np.argmax(clean == tokenizer.mask_token_id)) if masked else len(clean) - 1
    metric = "probability" if masked else "logit_diff"
    return PatchingSetup(pair, clean, corrupted, answers[0], answers[1], position, metric)


def patchable(loaded, pairs) -> list:
    """The pairs of ``pairs`` that this model's tokenizer can patch (equal lengths, one-token answers)."""
    out = []
    for pair in pairs:
        try:
            patching_setup(loaded, pair)
        except ValueError:
            continue
        out.append(pair)
    return out


def patch_pair(loaded, setup: PatchingSetup) -> PatchingResult:
    """``activation_patching`` of a pair as ``patching_setup`` made it."""
    return activation_patching(loaded, setup.clean, setup.corrupted, setup.clean_answer, setup.corrupted_answer,
                               setup.position, setup.metric)  # fmt: skip


# --- mixture of experts ------------------------------------------------------------------------


def router_modules(model) -> list[torch.nn.Module]:
    """The router of every MoE layer, in execution order (Mixtral, Qwen2-MoE, OLMoE: each
    returns (logits [B*T, E], gate weights [B*T, K], expert indices [B*T, K]))."""
    if model.config.model_type == "switch_transformers":
        raise InterventionRefused(
            "Switch Transformers routes with expert capacity; these interventions cover top-k routers."
        )
    cls = moe.router_class(model)
    return [m for m in model.modules() if isinstance(m, cls)]


def num_experts(config) -> int:
    return int(getattr(config, "num_local_experts", None) or config.num_experts)


def check_routing(
    config,
    length: int,
    *,
    top_k: int | None = None,
    drop: Iterable[int] = (),
    force: Iterable[tuple[int | None, int, int]] = (),
    moe_layers: int | None = None,
) -> None:
    """InterventionRefused, with one sentence saying what is possible, unless every token of a
    ``length``-token text still has ``top_k`` experts to go to (see ``route_override``)."""
    experts = num_experts(config)
    k = int(top_k or moe.top_k(config))
    drop = sorted(set(int(e) for e in drop))
    if not 1 <= k <= experts:
        raise InterventionRefused(f"Top-{k} routing is not possible with {experts} experts: k can be 1 to {experts}.")
    for expert in drop:
        if not 0 <= expert < experts:
            raise InterventionRefused(f"Expert {expert} does not exist: the experts are numbered 0 to {experts - 1}.")
    if len(drop) > experts - k:
        most = experts - k
        can = f"at most {most} of the {experts} can be dropped" if most else f"none of the {experts} can be dropped"
        raise InterventionRefused(f"Top-{k} routing needs at least {k} experts left: {can}.")
    for layer, position, expert in force:
        if not 0 <= int(expert) < experts:
            raise InterventionRefused(f"Expert {expert} does not exist: the experts are numbered 0 to {experts - 1}.")
        if int(expert) in drop:
            raise InterventionRefused(
                f"Expert {expert} is dropped, so no token can be forced to it: force another expert or keep it."
            )
        if not -length <= int(position) < length:
            raise InterventionRefused(f"Position {position} is outside the text ({length} tokens: 0 to {length - 1}).")
        if layer is not None and moe_layers is not None and not 0 <= int(layer) < moe_layers:
            raise InterventionRefused(
                f"MoE layer {layer} does not exist: this model has {moe_layers} (0 to {moe_layers - 1})."
            )


# How a forced expert is weighted. 'first': it takes the first slot with the gate weight the router gave
# its original first choice (the other slots keep their weights in order, so the original first choice,
# moved to the second slot, takes the second's); 'own': every slot takes the router's own probability
# of the expert now in it. Both are then renormalised where the model renormalises its top-k (Mixtral).
FORCE_WEIGHTS = {
    "first": "the weight of the router's original first choice",
    "own": "its own router probability",
}


def _route_hook(
    config,
    layer: int,
    k: int,
    drop: tuple[int, ...],
    force: list[tuple[int, int]],
    table: np.ndarray | None,
    token_ids: np.ndarray,
    force_weight: str = "first",
):
    renormalise = moe.renormalises(config)

    def hook(module, args, output):
        logits = output[0]  # [T, E] (batch 1, flattened by the router)
        probs = torch.nn.functional.softmax(logits.float(), dim=-1)  # as the router computes it
        if table is not None:  # route by token id: each token's mean probabilities over the reference text
            rows = torch.tensor(np.asarray(table[layer][token_ids]), dtype=probs.dtype)  # [T, E]
            probs = torch.where(torch.isnan(rows), probs, rows)  # ids the table lacks keep their own routing
        choosable = probs.clone()
        if drop:
            choosable[:, list(drop)] = -1.0  # never among the top k: tokens go to their next choice
        values, indices = torch.topk(choosable, k, dim=-1)  # [T, K]
        values = torch.gather(probs, 1, indices)
        for position, expert in force:
            # the forced expert takes the first slot; the others move down (FORCE_WEIGHTS: which weights)
            others = [int(i) for i in indices[position] if int(i) != expert][: k - 1]
            indices[position] = torch.tensor([expert, *others], dtype=indices.dtype)
            if force_weight == "own":
                values[position] = probs[position, indices[position]]
        if renormalise:
            values = values / values.sum(dim=-1, keepdim=True)
        return logits, values.to(output[1].dtype), indices

    return hook


def route_override(
    loaded,
    ids: np.ndarray,
    *,
    top_k: int | None = None,
    drop: Iterable[int] = (),
    force: Iterable[tuple[int | None, int, int]] = (),
    token_table: np.ndarray | None = None,
    force_weight: str = "first",
) -> InterventionResult:
    """Run an MoE decoder with its routing changed, every MoE layer re-deciding from its own
    router's probabilities (recomputed exactly as the router does):

    top_k        experts per token instead of the trained k
    drop         experts no token may use (their tokens go to the next choice)
    force        (moe_layer or None for every layer, position, expert): that token's first choice,
                 weighted by ``force_weight`` (FORCE_WEIGHTS: 'first' or 'own')
    token_table  [M, V, E] router probabilities per token id (nan rows: unknown id), e.g. from
                 ``effects.mean_probs_by_token``: every token routed by its id alone

    Settings that leave a token fewer than k experts (or force a dropped one) are refused with
    ``InterventionRefused`` before anything runs (``check_routing``)."""
    _check_scorable(loaded)
    _check_text(ids)
    config = loaded.model.config
    routers = router_modules(loaded.model)
    drop, force = list(drop), list(force)
    check_routing(config, len(ids), top_k=top_k, drop=drop, force=force, moe_layers=len(routers))
    if force_weight not in FORCE_WEIGHTS:
        raise InterventionRefused(f"A forced expert is weighted 'first' or 'own', not {force_weight!r}.")
    k = top_k or moe.top_k(config)
    drop = tuple(sorted(set(int(e) for e in drop)))
    force = [(layer, int(position) % len(ids), int(expert)) for layer, position, expert in force]
    hooks = []
    for layer, router in enumerate(routers):
        here = [(p, e) for lay, p, e in force if lay is None or lay == layer]
        hook = _route_hook(config, layer, k, drop, here, token_table, np.asarray(ids), force_weight)
        hooks.append((router, "post", hook))
    with _one_forward(loaded):
        base = _logits(loaded, ids)
    with _one_forward(loaded, hooks):
        modified = _logits(loaded, ids)
    parts = (
        [f"top-{k}"]
        + ([f"experts {list(drop)} dropped"] if drop else [])
        + ([f"forced {force} with {FORCE_WEIGHTS[force_weight]}"] if force else [])
        + (["routed by token id"] if token_table is not None else [])
    )
    return compare("MoE routing: " + ", ".join(parts), ids, base, modified, causal=True)


def token_table(loaded, reference_ids: Iterable[np.ndarray]) -> np.ndarray:
    """[M, V, E] each token id's mean router probabilities over reference texts (token ids
    [T] each), for ``route_override(token_table=...)``: route by token id only."""
    runs = [(np.asarray(ids), moe.trace_ids(loaded, np.asarray(ids)).router.probs) for ids in reference_ids]
    return mean_probs_by_token(runs, int(loaded.model.config.vocab_size))


def top_k_sweep(loaded, ids: np.ndarray, ks: Iterable[int] = (1, 2, 4)) -> TopKSweep:
    """Loss with each top-k against the parameters one token passes through with it
    (explorer.models.accounting: everything but the unchosen experts)."""
    config = loaded.model.config
    acc = account(config)
    experts = acc.by_role.get("experts", 0)
    ks = [k for k in ks if k <= acc.num_experts]
    losses = [route_override(loaded, ids, top_k=k).modified_loss for k in ks]
    active = [acc.total - experts + experts * k // acc.num_experts for k in ks]
    return TopKSweep(
        ks=np.asarray(ks),
        loss=np.asarray(losses),
        active_params=np.asarray(active),
        total_params=acc.total,
        trained_k=acc.experts_per_token,
    )


# --- encoder-decoder ---------------------------------------------------------------------------


def _source_mask(loaded, length: int, span: tuple[int, int] | None) -> torch.Tensor:
    """[1, S] encoder attention mask with source positions span[0]:span[1] hidden (None: all visible);
    refuses a speech model and a span that would hide the whole source."""
    if not getattr(loaded.model.config, "is_encoder_decoder", False) or loaded.arch.audio:
        raise InterventionRefused("Cross-attention removal needs a text encoder-decoder (BART, Marian, T5).")
    mask = torch.ones(1, length, dtype=torch.long, device=loaded.device)
    if span is not None:
        start, stop = span
        if not 0 <= start < stop <= length:
            raise InterventionRefused(
                f"Source tokens {start} to {stop - 1} are not a span of the {length}-token source: choose from 0 to "
                f"{length - 1}."
            )
        if stop - start == length:
            raise InterventionRefused(
                f"Leave at least one source token visible: at most {length - 1} of the {length} can be hidden."
            )
        mask[0, start:stop] = 0
    return mask


def cross_attention_removal(
    loaded, source_ids: np.ndarray, target_ids: np.ndarray, span: tuple[int, int]
) -> InterventionResult:
    """Decoder run over ``target_ids`` [T] with cross-attention to source positions
    span[0]:span[1] removed (masked, so every cross-attention row renormalises over the rest).
    The encoder reads the whole source once; the mask is given to the cross-attention only
    (text encoder-decoders: BART, Marian, T5)."""
    model, device = loaded.model, loaded.device
    hidden = _source_mask(loaded, len(source_ids), span)
    visible = torch.ones_like(hidden)
    with _one_forward(loaded):
        encoded = model.get_encoder()(input_ids=as_batch(source_ids, device), attention_mask=visible)
    decoder_ids = as_batch(target_ids, device)
    with _one_forward(loaded):
        base = to_numpy(model(encoder_outputs=encoded, attention_mask=visible, decoder_input_ids=decoder_ids).logits[0])
    with _one_forward(loaded):
        modified = to_numpy(
            model(encoder_outputs=encoded, attention_mask=hidden, decoder_input_ids=decoder_ids).logits[0]
        )
    start, stop = span
    return compare(f"cross-attention to source tokens {start}:{stop} removed", target_ids, base, modified, causal=True)


@torch.no_grad()
def greedy_with_span_removed(
    loaded, source_ids: np.ndarray, span: tuple[int, int] | None, max_new_tokens: int = 40
) -> np.ndarray:
    """Greedy output ids [T'] (starting with the decoder's start ids) of a text encoder-decoder
    whose cross-attention cannot see source positions span[0]:span[1] (None: the unmodified
    output), with the decoding rules of seq2seq.greedy_decode (start, end and suppressed ids, padding
    among them). The encoder reads the whole source once; each decoder step is a forward of its own
    (the lock is taken per step)."""
    model, device = loaded.model, loaded.device
    mask = _source_mask(loaded, len(source_ids), span)
    stop = seq2seq.eos_ids(loaded)
    out = [int(i) for i in seq2seq.start_ids(loaded)]
    with _one_forward(loaded):
        encoded = model.get_encoder()(input_ids=as_batch(source_ids, device))
    for n in range(max_new_tokens):
        decoder_ids = as_batch(np.asarray(out), device)
        with _one_forward(loaded, give_way=True):
            scores = model(encoder_outputs=encoded, attention_mask=mask, decoder_input_ids=decoder_ids).logits[0, -1]
        scores = scores.clone()
        scores[list(seq2seq.suppressed_ids(loaded, first_step=n == 0))] = -float("inf")  # [V]
        out.append(int(scores.argmax()))
        if out[-1] in stop:
            break
    return np.asarray(out, dtype=np.int64)
