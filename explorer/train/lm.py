"""A small Mixture-of-Experts language model and its dense twin, trained on the corpus.

Both share the tokenizer (byte-level BPE trained here on the training split), the
attention, the data order and the seed. The MoE (Mixtral class) has 8 experts per layer
and top-2 routing with the load-balancing loss; the twin (Llama class, the same attention)
has one dense FFN as wide as two experts, so both spend the same compute per token.

Balancing: transformers' Mixtral auxiliary loss pools every layer's router together, so a
layer can stay unbalanced while the pooled load looks even (the first run here: one expert
took 40% of a layer). The MoE is trained instead with the Switch loss (Fedus et al. 2021,
eq. 4, first choices) computed per layer and averaged over layers, plus the ST-MoE router
z-loss (Zoph et al. 2022, eq. 5), which keeps router logits small.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, MixtralConfig, MixtralForCausalLM, PreTrainedTokenizerFast

from explorer.train.corpus import load_corpus
from explorer.train.recipe import device, lr_scale

EOS = "<|endoftext|>"
SHAPE = dict(
    vocab_size=4096,
    hidden_size=160,
    num_hidden_layers=4,
    num_attention_heads=5,
    num_key_value_heads=5,
    max_position_embeddings=256,
    tie_word_embeddings=True,
    rms_norm_eps=1e-5,
)
EXPERT_WIDTH = 192
NUM_EXPERTS, TOP_K = 8, 2
BALANCE_COEF, Z_LOSS_COEF = 0.01, 1e-3  # 0.05 balanced harder but cost perplexity (101.7 vs 96.4)


def train_tokenizer(documents: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(documents, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token=EOS, bos_token=EOS, unk_token=EOS, pad_token=EOS
    )


def build(kind: str):
    if kind == "moe":
        config = MixtralConfig(
            **SHAPE,
            intermediate_size=EXPERT_WIDTH,
            num_local_experts=NUM_EXPERTS,
            num_experts_per_tok=TOP_K,
            router_aux_loss_coef=0.0,
            output_router_logits=False,
            attn_implementation="eager",
        )
        return MixtralForCausalLM(config)
    if kind == "dense":
        config = LlamaConfig(**SHAPE, intermediate_size=TOP_K * EXPERT_WIDTH, attn_implementation="eager")
        return LlamaForCausalLM(config)
    raise ValueError(kind)


def per_layer_balance_loss(router_logits: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Mean over MoE layers of N * sum_i f_i * P_i (1.0 when balanced), each layer on its own.

    router_logits: one [B*T, N] tensor per MoE layer. f_i is the share of tokens whose first
    choice is expert i (no gradient, as in Switch), P_i the mean router probability of i.
    """
    losses = []
    for logits in router_logits:
        probs = logits.float().softmax(dim=-1)  # [B*T, N]
        n = probs.shape[-1]
        first_share = torch.nn.functional.one_hot(probs.argmax(dim=-1), n).float().mean(dim=0)  # [N]
        losses.append(n * (first_share * probs.mean(dim=0)).sum())
    return torch.stack(losses).mean()


def router_z_loss(router_logits: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """ST-MoE z-loss: mean over layers and tokens of logsumexp(router logits)^2."""
    return torch.stack([torch.logsumexp(logits.float(), dim=-1).pow(2).mean() for logits in router_logits]).mean()


def first_choice_entropy(model, data: np.ndarray, batch: int = 16) -> list[float]:
    """Per MoE layer: entropy of the first-choice load over ``data`` divided by ln N (1 = uniform)."""
    model.eval()
    counts = None
    with torch.no_grad():
        for i in range(0, len(data), batch):
            x = torch.as_tensor(data[i : i + batch], device=model.device)
            logits = model(input_ids=x, output_router_logits=True).router_logits  # per layer [B*T, N]
            layer_counts = torch.stack([torch.bincount(lg.argmax(-1), minlength=lg.shape[-1]) for lg in logits])
            counts = layer_counts if counts is None else counts + layer_counts
    model.train()
    share = counts.double() / counts.sum(dim=1, keepdim=True)  # [M, N]
    entropy = -(share * share.clamp_min(1e-12).log()).sum(dim=1) / math.log(share.shape[1])
    return [round(float(e), 4) for e in entropy]


def token_stream(tokenizer, documents: list[str]) -> np.ndarray:
    ids = tokenizer([d + EOS for d in documents])["input_ids"]
    return np.fromiter((i for doc in ids for i in doc), dtype=np.int64)


def rows(stream: np.ndarray, seq_len: int) -> np.ndarray:
    n = len(stream) // seq_len
    return stream[: n * seq_len].reshape(n, seq_len)


@torch.no_grad()
def held_out_loss(model, data: np.ndarray, batch: int = 16) -> float:
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(data), batch):
        x = torch.as_tensor(data[i : i + batch], device=model.device)
        out = model(input_ids=x, labels=x)
        n = x.numel() - x.shape[0]
        total += out.loss.item() * n
        count += n
    model.train()
    return total / count


def train_lm(
    kind: str,
    corpus: Path,
    out: Path,
    steps: int,
    batch: int = 32,
    seq_len: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    eval_every: int = 100,
    eval_rows: int = 96,
    tokenizer_dir: Path | None = None,
    progress=None,
    balance_coef: float = BALANCE_COEF,
) -> dict:
    """Train ``kind`` ('moe' or 'dense'); the tokenizer is trained once and reused from
    ``tokenizer_dir`` when it exists so both models read the same tokens."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tokenizer, train, held = _lm_data(corpus, seq_len, eval_rows, tokenizer_dir)
    torch.manual_seed(seed)
    where = device()
    model = build(kind).to(where)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    config = dict(steps=steps, batch=batch, seq_len=seq_len, lr=lr, seed=seed, device=where)
    log = _lm_log(kind, model, config, len(train), len(held), balance_coef)
    start = time.perf_counter()
    log["steps"].append({"step": 0, "tokens": 0, "seconds": 0.0, "held_out_loss": held_out_loss(model, held)})
    warmup = max(1, steps // 20)
    for step in range(1, steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = lr * lr_scale(step, warmup, steps, floor=0.1)
        x = torch.as_tensor(train[rng.integers(0, len(train), size=batch)], device=where)
        losses = _lm_step(model, optimizer, x, balance_coef)
        entry = {"step": step, "tokens": step * batch * seq_len, "seconds": time.perf_counter() - start, **losses}
        if step % eval_every == 0 or step == steps:
            entry["held_out_loss"] = held_out_loss(model, held)
            if kind == "moe":
                entry["first_choice_entropy"] = first_choice_entropy(model, held)
        if step % 10 == 0 or "held_out_loss" in entry:
            log["steps"].append(entry)
        if progress:
            progress(step, steps, entry["train_loss"], entry.get("held_out_loss"), entry.get("first_choice_entropy"))
    log["seconds"] = time.perf_counter() - start
    _lm_export(model, tokenizer, log, out)
    return log


def _lm_log(kind: str, model, config: dict, train_rows: int, eval_rows: int, balance_coef: float) -> dict:
    """The training log as it starts: the model's size, the run's settings (``config`` plus threads and rows) and,
    for the MoE, how its experts are balanced."""
    log = {
        "kind": kind,
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": [],
        "config": dict(**config, threads=torch.get_num_threads(), train_rows=int(train_rows), eval_rows=int(eval_rows)),
    }
    if kind == "moe":
        log["config"]["balancing"] = (
            f"per-layer Switch loss (first choices) x {balance_coef}, averaged over layers, "
            f"+ router z-loss x {Z_LOSS_COEF}; transformers' pooled aux loss off"
        )
    return log


def _lm_data(corpus: Path, seq_len: int, eval_rows: int, tokenizer_dir: Path | None):
    """(tokenizer, train rows [N, seq_len], held-out rows [eval_rows, seq_len]); the tokenizer is
    read from ``tokenizer_dir`` when it holds one, else trained on the training split (and saved there)."""
    split = load_corpus(corpus)
    if tokenizer_dir is not None and (tokenizer_dir / "tokenizer.json").exists():
        tokenizer = PreTrainedTokenizerFast.from_pretrained(tokenizer_dir)
    else:
        tokenizer = train_tokenizer(split.train, SHAPE["vocab_size"])
        if tokenizer_dir is not None:
            tokenizer.save_pretrained(tokenizer_dir)
    train = rows(token_stream(tokenizer, split.train), seq_len)
    held = rows(token_stream(tokenizer, split.held_out), seq_len)
    return tokenizer, train, held[np.random.default_rng(1234).permutation(len(held))[:eval_rows]]


def _lm_step(model, optimizer, x: torch.Tensor, balance_coef: float) -> dict:
    """One optimiser step on the batch ``x`` [B, T]; its losses (the MoE adds its balancing terms)."""
    moe = isinstance(model, MixtralForCausalLM)
    result = model(input_ids=x, labels=x, **({"output_router_logits": True} if moe else {}))
    loss = result.loss  # router_aux_loss_coef is 0: result.loss is the LM loss
    if moe:
        balance, z = per_layer_balance_loss(result.router_logits), router_z_loss(result.router_logits)
        loss = loss + balance_coef * balance + Z_LOSS_COEF * z
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    losses = {"train_loss": float(result.loss.detach())}
    if moe:
        losses["balance_loss"], losses["z_loss"] = float(balance.detach()), float(z.detach())
    return losses


def _lm_export(model, tokenizer, log: dict, out: Path) -> None:
    """Float16 weights, tokenizer and training_log.json (with the final held-out loss) in ``out``."""
    log["held_out_loss"] = log["steps"][-1]["held_out_loss"]
    log["held_out_perplexity"] = math.exp(log["held_out_loss"])
    out.mkdir(parents=True, exist_ok=True)
    model.config.output_router_logits = False
    model.to("cpu", torch.float16).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "training_log.json").write_text(json.dumps(log, indent=1))
