"""Interventions on a live model (adapter-level code: torch lives here).

Every intervention runs the input twice inside ``exclusive(loaded)``, once as the model is
and once changed, and returns both side by side (``results``). Changes are made with
forward hooks / pre-hooks that exist only inside ``_attached`` (removed in its ``finally``,
even when the forward raises), or with a custom attention mask; weights are never written,
so the shared cached model is untouched (``hook_count(model) == 0`` afterwards).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable

import numpy as np
import torch

from explorer.adapters import moe, seq2seq
from explorer.adapters.common import as_batch, exclusive, to_numpy
from explorer.experiments.cards import mean_probs_by_token
from explorer.experiments.results import InterventionResult, PatchingResult, TopKSweep, compare, log_softmax
from explorer.models.accounting import account

# The module whose INPUT is the concatenation of the heads' outputs, [B, T, H * d_head] with
# head h in columns h*d_head:(h+1)*d_head, in every supported decoder-only, MoE and encoder
# model: Llama/Qwen2/Mixtral/OLMoE o_proj, GPT-2 attn.c_proj (not mlp.c_proj), GPT-NeoX
# attention.dense, BERT/RoBERTa/ELECTRA/DeBERTa attention.output.dense, DistilBERT out_lin.
_SELF_ATTENTION_OUT = re.compile(
    r"(self_attn\.o_proj|attn\.c_proj|attention\.dense|attention\.output\.dense|attention\.out_lin)$"
)
_LAYER = re.compile(r"\.(\d+)\.")
PATCH_BATCH_FLOATS = 2**26  # most logits one patching batch holds (256 MB in float32)


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


def _logits(loaded, ids: np.ndarray, **kwargs) -> np.ndarray:
    """[T, V] logits of one forward (call inside ``exclusive``)."""
    return to_numpy(loaded.model(input_ids=as_batch(ids, loaded.device), **kwargs).logits[0])


def _causal(loaded) -> bool:
    return loaded.family != "encoder"


def _check_scorable(loaded) -> None:
    if loaded.family == "encoder" and not loaded.has_mlm_head:
        raise ValueError(
            f"{loaded.model_id} has no trained masked-language head: there is no output distribution to compare."
        )
    if loaded.family == "seq2seq" or getattr(loaded.model.config, "is_encoder_decoder", False):
        raise ValueError("use cross_attention_removal for encoder-decoder models")


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
        raise ValueError("ALBERT shares one block between all layers: a head cannot be switched off in one layer only.")
    found = [
        (int(_LAYER.search(name).group(1)), module)
        for name, module in model.named_modules()
        if _SELF_ATTENTION_OUT.search(name)
    ]
    if not found:
        raise ValueError(f"no attention output projection found in {type(model).__name__}")
    return [module for _, module in sorted(found, key=lambda item: item[0])]


def _ablate_heads_hook(heads: list[int], num: int, mode: str):
    def hook(module, args, kwargs):
        x = args[0].clone()  # [B, T, H * d_head]
        width = x.shape[-1] // num
        for h in heads:
            part = x[..., h * width : (h + 1) * width]  # [B, T, d_head]
            x[..., h * width : (h + 1) * width] = 0.0 if mode == "zero" else part.mean(dim=-2, keepdim=True)
        return (x, *args[1:]), kwargs

    return hook


def head_ablation(loaded, ids: np.ndarray, heads: Iterable[tuple[int, int]], mode: str = "zero") -> InterventionResult:
    """Switch off attention heads, given as (layer, head) pairs: their output is replaced by
    zeros (``mode='zero'``) or by its mean over the positions of this text (``'mean'``)
    before the output projection mixes the heads."""
    if mode not in ("zero", "mean"):
        raise ValueError("mode is 'zero' or 'mean'")
    _check_scorable(loaded)
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(int(layer), []).append(int(head))
    projections = attention_output_projections(loaded.model)
    num = num_heads(loaded.model.config)
    for layer, hs in by_layer.items():
        if not (0 <= layer < len(projections)) or any(not 0 <= h < num for h in hs):
            raise ValueError(f"layer {layer} heads {hs}: the model has {len(projections)} layers of {num} heads")
    hooks = [(projections[layer], "pre", _ablate_heads_hook(hs, num, mode)) for layer, hs in by_layer.items()]
    with exclusive(loaded):
        base = _logits(loaded, ids)
        with _attached(hooks):
            modified = _logits(loaded, ids)
    names = ", ".join(f"L{layer}H{h}" for layer, hs in sorted(by_layer.items()) for h in hs)
    return compare(
        f"heads {names} {'zeroed' if mode == 'zero' else 'mean-ablated'}", ids, base, modified, _causal(loaded)
    )


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
    mask = sink_free_mask(len(ids), _causal(loaded), loaded.model.dtype).to(loaded.device)
    with exclusive(loaded):
        base = _logits(loaded, ids)
        modified = _logits(loaded, ids, attention_mask=mask)
    return compare("attention to the first token removed (renormalised)", ids, base, modified, _causal(loaded))


# --- activation patching -----------------------------------------------------------------------


def blocks(model) -> torch.nn.ModuleList:
    """The transformer blocks of a decoder-only, MoE or encoder model, in order."""
    for _, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == model.config.num_hidden_layers:
            return module
    raise ValueError(f"no block list found in {type(model).__name__}")


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


def residual_stream(loaded, ids: np.ndarray) -> torch.Tensor:
    """[L+1, T, D] the residual stream at every depth, captured with the patching hooks
    themselves (so a patch writes back exactly what was read). Call inside ``exclusive``."""
    stack = blocks(loaded.model)
    captured: dict[int, torch.Tensor] = {}

    def reader(depth):
        def edit(hidden):
            captured[depth] = hidden[0].detach().clone()
            return hidden

        return edit

    with _attached(_residual_hook(stack, d, reader(d)) for d in range(len(stack) + 1)):
        loaded.model(input_ids=as_batch(ids, loaded.device))
    return torch.stack([captured[d] for d in range(len(stack) + 1)])


def patched_logits(
    loaded, clean_ids: np.ndarray, corrupted_ids: np.ndarray, depth: int, positions: Iterable[int]
) -> np.ndarray:
    """[T, V] logits of the corrupted prompt with the clean residual stream copied in at
    ``depth`` for every position in ``positions`` at once."""
    positions = list(positions)
    with exclusive(loaded):
        clean = residual_stream(loaded, clean_ids)

        def edit(hidden):
            hidden = hidden.clone()
            hidden[:, positions] = clean[depth, positions]
            return hidden

        with _attached([_residual_hook(blocks(loaded.model), depth, edit)]):
            return _logits(loaded, corrupted_ids)


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
    (``'probability'``, e.g. of the masked token). Batched: copy t patches position t."""
    if metric not in ("logit_diff", "probability"):
        raise ValueError("metric is 'logit_diff' or 'probability'")
    _check_scorable(loaded)
    clean_ids, corrupted_ids = np.asarray(clean_ids), np.asarray(corrupted_ids)
    if clean_ids.shape != corrupted_ids.shape:
        raise ValueError(
            f"clean ({len(clean_ids)} tokens) and corrupted ({len(corrupted_ids)} tokens) must have equal "
            "length: choose words that are one token each"
        )
    t = len(clean_ids)
    position = position % t
    stack = blocks(loaded.model)

    def measure(logits):  # [..., T, V] -> [...]
        row = logits[..., position, :]  # [..., V]
        if metric == "probability":
            return np.exp(log_softmax(row)[..., clean_answer])
        return row[..., clean_answer] - row[..., corrupted_answer]

    # Batches of copies of the corrupted prompt, copy t patching position t; a batch's logits
    # [copies, T, V] are kept under PATCH_BATCH_FLOATS (a 49k vocabulary fills memory fast).
    per_batch = max(1, PATCH_BATCH_FLOATS // (t * int(loaded.model.config.vocab_size)))
    patched = np.zeros((len(stack) + 1, t))
    with exclusive(loaded):
        clean = residual_stream(loaded, clean_ids)  # [L+1, T, D]
        clean_metric = float(measure(_logits(loaded, clean_ids)))
        corrupted_metric = float(measure(_logits(loaded, corrupted_ids)))
        for depth in range(len(stack) + 1):
            for first in range(0, t, per_batch):
                rows = torch.arange(first, min(first + per_batch, t))  # the positions this batch patches
                copies = torch.arange(len(rows))

                def edit(hidden, depth=depth, rows=rows, copies=copies):  # hidden [copies, T, D]
                    hidden = hidden.clone()
                    hidden[copies, rows] = clean[depth, rows]
                    return hidden

                batch = as_batch(corrupted_ids, loaded.device).expand(len(rows), t)  # [copies, T]
                with _attached([_residual_hook(stack, depth, edit)]):
                    patched[depth, rows.numpy()] = measure(to_numpy(loaded.model(input_ids=batch).logits))
    return PatchingResult(
        clean_ids=clean_ids,
        corrupted_ids=corrupted_ids,
        clean_answer=int(clean_answer),
        corrupted_answer=int(corrupted_answer),
        position=position,
        metric=metric,
        clean_metric=clean_metric,
        corrupted_metric=corrupted_metric,
        patched=patched,
    )


# --- mixture of experts ------------------------------------------------------------------------


def router_modules(model) -> list[torch.nn.Module]:
    """The router of every MoE layer, in execution order (Mixtral, Qwen2-MoE, OLMoE: each
    returns (logits [B*T, E], gate weights [B*T, K], expert indices [B*T, K]))."""
    if model.config.model_type == "switch_transformers":
        raise ValueError("Switch Transformers routes with expert capacity; these interventions cover top-k routers")
    cls = moe.router_class(model)
    return [m for m in model.modules() if isinstance(m, cls)]


def _route_hook(
    config,
    layer: int,
    k: int,
    drop: tuple[int, ...],
    force: list[tuple[int, int]],
    table: np.ndarray | None,
    token_ids: np.ndarray,
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
            # the forced expert takes the first slot and its gate weight; the others move down
            others = [int(i) for i in indices[position] if int(i) != expert][: k - 1]
            indices[position] = torch.tensor([expert, *others], dtype=indices.dtype)
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
) -> InterventionResult:
    """Run an MoE decoder with its routing changed, every MoE layer re-deciding from its own
    router's probabilities (recomputed exactly as the router does):

    top_k        experts per token instead of the trained k
    drop         experts no token may use (their tokens go to the next choice)
    force        (moe_layer or None for every layer, position, expert): that token's first choice
    token_table  [M, V, E] router probabilities per token id (nan rows: unknown id), e.g. from
                 ``cards.mean_probs_by_token``: every token routed by its id alone
    """
    _check_scorable(loaded)
    config = loaded.model.config
    routers = router_modules(loaded.model)
    num_experts = int(getattr(config, "num_local_experts", None) or config.num_experts)
    k = top_k or moe.top_k(config)
    drop = tuple(sorted(set(int(e) for e in drop)))
    if not 1 <= k <= num_experts - len(drop):
        raise ValueError(f"top-k {k} with {len(drop)} experts dropped out of {num_experts}")
    force = [(layer, int(position) % len(ids), int(expert)) for layer, position, expert in force]
    hooks = []
    for layer, router in enumerate(routers):
        here = [(p, e) for lay, p, e in force if lay is None or lay == layer]
        hooks.append((router, "post", _route_hook(config, layer, k, drop, here, token_table, np.asarray(ids))))
    with exclusive(loaded):
        base = _logits(loaded, ids)
        with _attached(hooks):
            modified = _logits(loaded, ids)
    parts = (
        [f"top-{k}"]
        + ([f"experts {list(drop)} dropped"] if drop else [])
        + ([f"forced {force}"] if force else [])
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
        raise ValueError("cross-attention removal needs a text encoder-decoder (BART, Marian, T5)")
    mask = torch.ones(1, length, dtype=torch.long, device=loaded.device)
    if span is not None:
        start, stop = span
        if not 0 <= start < stop <= length or stop - start == length:
            raise ValueError(f"span {span} must leave some of the {length} source tokens")
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
    with exclusive(loaded):
        encoded = model.get_encoder()(input_ids=as_batch(source_ids, device), attention_mask=visible)
        decoder_ids = as_batch(target_ids, device)
        base = to_numpy(model(encoder_outputs=encoded, attention_mask=visible, decoder_input_ids=decoder_ids).logits[0])
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
    among them). The encoder reads the whole source once."""
    model, device = loaded.model, loaded.device
    mask = _source_mask(loaded, len(source_ids), span)
    stop = seq2seq.eos_ids(loaded)
    out = [int(i) for i in seq2seq.start_ids(loaded)]
    with exclusive(loaded):
        encoded = model.get_encoder()(input_ids=as_batch(source_ids, device))
        for n in range(max_new_tokens):
            decoder_ids = as_batch(np.asarray(out), device)
            scores = model(encoder_outputs=encoded, attention_mask=mask, decoder_input_ids=decoder_ids).logits[0, -1]
            scores[list(seq2seq.suppressed_ids(loaded, first_step=n == 0))] = -float("inf")  # [V]
            out.append(int(scores.argmax()))
            if out[-1] in stop:
                break
    return np.asarray(out, dtype=np.int64)
