"""Read a CTranslate2 Whisper ``model.bin`` and turn it into a Hugging Face Whisper model.

transformers cannot read CTranslate2 files, so this module parses the binary format with
numpy and maps each variable onto ``WhisperForConditionalGeneration``'s state dict.
The conversion runs once; the result is saved as a normal Hugging Face folder in the cache and
loaded from there afterwards. It is saved in float32 (the float16 values widen exactly), the dtype
the explorer computes in, so loading memory-maps the file instead of converting a private copy:
replicas of the app share those pages.

File layout (little-endian): uint32 version; (v>=2) name string + uint32 revision;
uint32 variable count; per variable: name, uint8 rank, rank x uint32 dims, uint8 dtype,
uint32 byte count, raw bytes; (v>=3) uint32 alias count, then (alias, target) string pairs.
A string is a uint16 length followed by that many bytes, NUL-padded.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
from functools import partial
from pathlib import Path

import numpy as np

_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
_BFLOAT16 = 5


def read_ct2_variables(path: Path) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 model file, aliases resolved, as numpy arrays."""
    data = Path(path).read_bytes()
    offset = 0

    def unpack(fmt: str):
        nonlocal offset
        (value,) = struct.unpack_from("<" + fmt, data, offset)
        offset += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal offset
        n = unpack("H")
        raw = data[offset : offset + n]
        offset += n
        return raw.rstrip(b"\0").decode("utf-8")

    version = unpack("I")
    if version > 6:
        raise ValueError(f"CTranslate2 format version {version} is newer than this reader knows (<= 6)")
    if version >= 2:
        string()  # spec name, e.g. "WhisperSpec"
        unpack("I")  # spec revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(unpack("I")):
        name = string()
        rank = unpack("B")
        dims = [unpack("I") for _ in range(rank)]
        dtype_code = unpack("B")
        nbytes = unpack("I")
        raw = data[offset : offset + nbytes]
        offset += nbytes
        if dtype_code == _BFLOAT16:
            # bfloat16 is the upper half of a float32
            array = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dtype_code in _CT2_DTYPES:
            array = np.frombuffer(raw, dtype=_CT2_DTYPES[dtype_code])
        else:
            raise ValueError(f"variable {name}: unknown CTranslate2 dtype code {dtype_code}")
        variables[name] = array.reshape(dims)
    if version >= 3:
        for _ in range(unpack("I")):
            alias, target = string(), string()
            variables[alias] = variables[target]
    return variables


def _split_rows(array: np.ndarray, parts: int) -> list[np.ndarray]:
    return np.split(array, parts, axis=0)


def whisper_state_dict(v: dict[str, np.ndarray], encoder_layers: int, decoder_layers: int) -> dict[str, np.ndarray]:
    """Map CTranslate2 Whisper variables onto Hugging Face Whisper parameter names.

    CTranslate2 fuses q,k,v of self-attention into one [3D, D] projection and k,v of
    cross-attention into one [2D, D]; Whisper's k projection has no bias (CTranslate2 stores
    zeros there), so that slice is dropped.
    """
    sd: dict[str, np.ndarray] = {}
    attention = partial(_attention, sd, v)
    layer_norm = partial(_layer_norm, sd, v)
    ffn = partial(_ffn, sd, v)
    for conv in ("conv1", "conv2"):
        sd[f"model.encoder.{conv}.weight"] = v[f"encoder/{conv}/weight"]
        sd[f"model.encoder.{conv}.bias"] = v[f"encoder/{conv}/bias"]
    sd["model.encoder.embed_positions.weight"] = v["encoder/position_encodings/encodings"]
    for i in range(encoder_layers):
        ct2, hf = f"encoder/layer_{i}", f"model.encoder.layers.{i}"
        attention(f"{ct2}/self_attention", f"{hf}.self_attn", fused_qkv=True)
        layer_norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
        ffn(f"{ct2}/ffn", hf)
    layer_norm("encoder/layer_norm", "model.encoder.layer_norm")

    sd["model.decoder.embed_tokens.weight"] = v["decoder/embeddings/weight"]
    sd["model.decoder.embed_positions.weight"] = v["decoder/position_encodings/encodings"]
    for i in range(decoder_layers):
        ct2, hf = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        attention(f"{ct2}/self_attention", f"{hf}.self_attn", fused_qkv=True)
        layer_norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
        attention(f"{ct2}/attention", f"{hf}.encoder_attn", fused_qkv=False)
        layer_norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
        ffn(f"{ct2}/ffn", hf)
    layer_norm("decoder/layer_norm", "model.decoder.layer_norm")
    return sd


def _attention(sd: dict, v: dict, ct2: str, hf: str, fused_qkv: bool) -> None:
    """One attention block's q/k/v/out projections into ``sd`` (Whisper's k has no bias: CTranslate2's zeros are
    dropped)."""
    if fused_qkv:
        q_w, k_w, v_w = _split_rows(v[f"{ct2}/linear_0/weight"], 3)
        q_b, _k_b, v_b = _split_rows(v[f"{ct2}/linear_0/bias"], 3)
        out = "linear_1"
    else:
        q_w, q_b = v[f"{ct2}/linear_0/weight"], v[f"{ct2}/linear_0/bias"]
        k_w, v_w = _split_rows(v[f"{ct2}/linear_1/weight"], 2)
        _k_b, v_b = _split_rows(v[f"{ct2}/linear_1/bias"], 2)
        out = "linear_2"
    sd.update(
        {
            f"{hf}.q_proj.weight": q_w,
            f"{hf}.q_proj.bias": q_b,
            f"{hf}.k_proj.weight": k_w,
            f"{hf}.v_proj.weight": v_w,
            f"{hf}.v_proj.bias": v_b,
            f"{hf}.out_proj.weight": v[f"{ct2}/{out}/weight"],
            f"{hf}.out_proj.bias": v[f"{ct2}/{out}/bias"],
        }
    )


def _layer_norm(sd: dict, v: dict, ct2: str, hf: str) -> None:
    sd[f"{hf}.weight"] = v[f"{ct2}/gamma"]
    sd[f"{hf}.bias"] = v[f"{ct2}/beta"]


def _ffn(sd: dict, v: dict, ct2: str, hf: str) -> None:
    _layer_norm(sd, v, f"{ct2}/layer_norm", f"{hf}.final_layer_norm")
    for i, name in ((0, "fc1"), (1, "fc2")):
        sd[f"{hf}.{name}.weight"] = v[f"{ct2}/linear_{i}/weight"]
        sd[f"{hf}.{name}.bias"] = v[f"{ct2}/linear_{i}/bias"]


def _count_layers(variables: dict[str, np.ndarray], stack: str) -> int:
    return len({m.group(1) for name in variables if (m := re.match(rf"{stack}/layer_(\d+)/", name))})


def _whisper_config(variables: dict[str, np.ndarray], enc_layers: int, dec_layers: int, special: dict[str, int]):
    """The WhisperConfig of the converted model, read from the shapes of its CTranslate2 variables."""
    from transformers import WhisperConfig

    vocab, d_model = variables["decoder/embeddings/weight"].shape
    ffn_dim = variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]
    return WhisperConfig(
        vocab_size=int(vocab),
        num_mel_bins=int(variables["encoder/conv1/weight"].shape[1]),
        d_model=int(d_model),
        encoder_layers=enc_layers,
        decoder_layers=dec_layers,
        encoder_attention_heads=int(variables["encoder/num_heads"]),
        decoder_attention_heads=int(variables["decoder/num_heads"]),
        encoder_ffn_dim=int(ffn_dim),
        decoder_ffn_dim=int(ffn_dim),
        max_source_positions=int(variables["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(variables["decoder/position_encodings/encodings"].shape[0]),
        bos_token_id=special["<|endoftext|>"],
        eos_token_id=special["<|endoftext|>"],
        pad_token_id=special["<|endoftext|>"],
        decoder_start_token_id=special["<|startoftranscript|>"],
        tie_word_embeddings=True,
    )


def convert_ct2_whisper(ct2_dir: Path, out_dir: Path) -> Path:
    """Convert a CTranslate2 Whisper folder into a Hugging Face folder at ``out_dir``."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizerFast,
    )

    ct2_dir, out_dir = Path(ct2_dir), Path(out_dir)
    variables = read_ct2_variables(ct2_dir / "model.bin")
    ct2_config = json.loads((ct2_dir / "config.json").read_text())
    enc_layers, dec_layers = _count_layers(variables, "encoder"), _count_layers(variables, "decoder")
    n_mels = variables["encoder/conv1/weight"].shape[1]
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(ct2_dir / "tokenizer.json"))
    special = {
        t: tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>")
    }
    config = _whisper_config(variables, enc_layers, dec_layers, special)
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    # np.array: writable copies, since the CTranslate2 arrays are read-only views of the file's bytes
    state = {k: torch.from_numpy(np.array(a)) for k, a in whisper_state_dict(variables, enc_layers, dec_layers).items()}
    model.load_state_dict(state, strict=False, assign=True)
    model.tie_weights()
    missing = [n for n, p in model.named_parameters() if p.is_meta]
    if missing:
        raise ValueError(f"conversion left parameters without weights: {missing[:5]}")
    model.generation_config = GenerationConfig(
        decoder_start_token_id=special["<|startoftranscript|>"],
        eos_token_id=special["<|endoftext|>"],
        pad_token_id=special["<|endoftext|>"],
        no_timestamps_token_id=special["<|notimestamps|>"],
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [])),
        alignment_heads=ct2_config.get("alignment_heads"),
        max_length=config.max_target_positions,
    )
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.to(torch.float32).save_pretrained(tmp, safe_serialization=True)
    WhisperProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=int(n_mels)), tokenizer=tokenizer
    ).save_pretrained(tmp)
    tmp.rename(out_dir)  # atomic: a half-written folder is never taken for a finished one
    return out_dir
