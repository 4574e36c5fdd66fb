"""The trace: what a model computed on one input, as frozen numpy arrays.

This is the contract between the adapters (which run torch) and everything above them
(plots, views, tests). Nothing here imports torch. Shapes use these letters:

    L   transformer blocks (layers) of the stack the trace belongs to
    H   attention heads per layer
    T   token positions (queries), S source positions (keys of cross-attention)
    D   hidden width
    V   vocabulary size
    M   MoE layers (only the blocks whose FFN is sparse), E experts, K experts per token

Indexing pitfall: ``hidden_states[0]`` is the embedding output, ``hidden_states[i]`` the
output of block ``i`` (1-based), so there are L+1 entries while ``attentions`` has L.
In transformers 5 the last entry of models with a final norm (Llama, Mixtral, Qwen2, GPT-2's
ln_f, ...) is taken AFTER that norm (``model.norm(block_L_output)``), not the raw output of the
last block; BERT-style encoders have no final norm, so theirs is the last block's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _read_only(obj) -> None:
    """Lock every array field: one trace object is cached and shared by every session."""
    for value in vars(obj).values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False


@dataclass(frozen=True)
class RouterTrace:
    """Routing decisions of every sparse (MoE) layer for every position.

    layer_indices  [M]        index of the transformer block each MoE layer sits in
    probs          [M, T, E]  router softmax over all experts (rows sum to 1)
    chosen         [M, T, K]  experts that process the token, best first
    gates          [M, T, K]  weight of each chosen expert in the mixture
    kept           [M, T, K]  False where the expert was over capacity and dropped the
                              token (Switch Transformers); all True for dropless routers
    """

    layer_indices: np.ndarray
    probs: np.ndarray
    chosen: np.ndarray
    gates: np.ndarray
    kept: np.ndarray
    top_k: int

    def __post_init__(self) -> None:
        m, t, e = self.probs.shape
        _check(self.chosen.shape == (m, t, self.top_k), f"chosen {self.chosen.shape} != {(m, t, self.top_k)}")
        _check(self.gates.shape == self.chosen.shape, "gates and chosen differ in shape")
        _check(self.kept.shape == self.chosen.shape, "kept and chosen differ in shape")
        _check(self.layer_indices.shape == (m,), "one layer index per MoE layer")
        _read_only(self)

    @property
    def num_experts(self) -> int:
        return int(self.probs.shape[2])

    def expert_load(self) -> np.ndarray:
        """[M, E] fraction of (token, slot) assignments each expert received."""
        m, t, k = self.chosen.shape
        load = np.zeros((m, self.num_experts))
        for layer in range(m):
            np.add.at(load[layer], self.chosen[layer].ravel(), 1.0)
        return load / max(t * k, 1)


@dataclass(frozen=True)
class ForwardTrace:
    """One forward pass of one stack (an encoder, a decoder, or a decoder-only model).

    tokens         [T]              display strings of the input tokens (or audio frames)
    token_ids      [T]              int ids fed to the model (-1 for audio frames)
    hidden_states  [L+1, T, D]      embedding output, then each block's output
    attentions     [L, H, T, T]     softmax attention (rows sum to 1), or None when not kept
                                    (a Whisper encoder's 1500x1500 maps are too large to ship)
    logits         [T, V]           final next-token / masked-token logits, or None
    router         RouterTrace      present when some FFN layers are sparse
    causal         True when a position may only attend to itself and earlier ones
    """

    tokens: tuple[str, ...]
    token_ids: np.ndarray
    hidden_states: np.ndarray
    attentions: np.ndarray | None
    logits: np.ndarray | None
    causal: bool
    router: RouterTrace | None = None
    notes: tuple[str, ...] = ()  # e.g. that the input was truncated to the model's limit

    def __post_init__(self) -> None:
        t = len(self.tokens)
        _check(self.token_ids.shape == (t,), f"token_ids {self.token_ids.shape} for {t} tokens")
        _check(
            self.hidden_states.ndim == 3 and self.hidden_states.shape[1] == t,
            f"hidden_states {self.hidden_states.shape}",
        )
        if self.attentions is not None:
            a = self.attentions
            _check(a.ndim == 4 and a.shape[2:] == (t, t), f"attentions {a.shape} for {t} tokens")
            _check(a.shape[0] == self.num_layers, "one attention map per block (L), hidden states have L+1")
        if self.logits is not None:
            _check(self.logits.shape[0] == t, f"logits {self.logits.shape} for {t} tokens")
        if self.router is not None:
            _check(self.router.probs.shape[1] == t, "router covers every position")
        _read_only(self)

    @property
    def num_layers(self) -> int:
        return int(self.hidden_states.shape[0] - 1)

    @property
    def num_heads(self) -> int:
        return 0 if self.attentions is None else int(self.attentions.shape[1])


@dataclass(frozen=True)
class Seq2SeqTrace:
    """An encoder-decoder forward: the encoder reads the source once, the decoder reads
    its own tokens and cross-attends to every encoder position.

    cross_attentions [L_dec, H, T_dec, S]   rows sum to 1 over the S encoder positions
    """

    encoder: ForwardTrace
    decoder: ForwardTrace
    cross_attentions: np.ndarray

    def __post_init__(self) -> None:
        c = self.cross_attentions
        _check(c.ndim == 4, f"cross_attentions {c.shape}")
        _check(
            c.shape[2] == len(self.decoder.tokens) and c.shape[3] == len(self.encoder.tokens),
            f"cross_attentions {c.shape}",
        )
        _read_only(self)


@dataclass(frozen=True)
class DecodingStep:
    """The model's view at one point of autoregressive decoding.

    context_ids      [T]           every token fed so far (prompt + generated)
    logits           [V]           raw next-token logits at the last position
    probs            [V]           softmax(logits), the full next-token distribution
    last_attention   [L, H, T]     attention of the newest position over the context
    last_hidden      [L+1, D]      the newest position's hidden state after each block
    cross_attention  [L, H, S]     (encoder-decoder) newest position over the source
    seconds          wall-clock time of the forward that produced this step
    """

    context_ids: np.ndarray
    logits: np.ndarray
    probs: np.ndarray
    last_attention: np.ndarray
    last_hidden: np.ndarray
    cross_attention: np.ndarray | None = None
    seconds: float = 0.0

    def __post_init__(self) -> None:
        _check(self.logits.shape == self.probs.shape and self.logits.ndim == 1, "logits and probs are [V]")
        _check(self.last_attention.shape[-1] == self.context_ids.shape[0], "attention covers the whole context")
        _read_only(self)


@dataclass(frozen=True)
class EncoderPass:
    """The encoder-decoder's single encoder pass, kept so every decoder step reuses it.

    last_hidden  [S, D]   the encoder output the decoder cross-attends to
    """

    trace: ForwardTrace
    last_hidden: np.ndarray
    seconds: float
    source_kind: str = "text"  # "text" or "audio"
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        _read_only(self)
