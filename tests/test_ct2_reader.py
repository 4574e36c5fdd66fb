"""The CTranslate2 reader on a file written here in the documented layout."""

import struct

import numpy as np
import pytest

from explorer.models.whisper_ct2 import read_ct2_variables, whisper_state_dict


def _string(s: str) -> bytes:
    raw = s.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_ct2(path, variables: dict, aliases: dict, version: int = 6) -> None:
    codes = {
        np.dtype(np.float32): 0,
        np.dtype(np.int8): 1,
        np.dtype(np.int16): 2,
        np.dtype(np.int32): 3,
        np.dtype(np.float16): 4,
    }
    out = struct.pack("<I", version) + _string("TestSpec") + struct.pack("<I", 1) + struct.pack("<I", len(variables))
    for name, array in variables.items():
        out += _string(name) + struct.pack("<B", array.ndim) + b"".join(struct.pack("<I", d) for d in array.shape)
        out += struct.pack("<B", codes[array.dtype]) + struct.pack("<I", array.nbytes) + array.tobytes()
    out += struct.pack("<I", len(aliases)) + b"".join(_string(a) + _string(t) for a, t in aliases.items())
    path.write_bytes(out)


def test_reader_round_trips_dtypes_shapes_and_aliases(tmp_path):
    variables = {
        "a/weight": np.arange(6, dtype=np.float16).reshape(2, 3),
        "b/bias": np.array([1.5, -2.0], dtype=np.float32),
        "c/count": np.array(7, dtype=np.int32),
        "d/q": np.array([[-3, 4]], dtype=np.int8),
    }
    path = tmp_path / "model.bin"
    write_ct2(path, variables, {"e/alias": "a/weight"})
    read = read_ct2_variables(path)
    for name, array in variables.items():
        assert read[name].dtype == array.dtype and np.array_equal(read[name], array)
    assert np.array_equal(read["e/alias"], variables["a/weight"])


def test_reader_refuses_unknown_versions(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(struct.pack("<I", 99))
    with pytest.raises(ValueError, match="version 99"):
        read_ct2_variables(path)


def test_fused_projections_are_split_in_q_k_v_order():
    d = 4
    rng = np.random.default_rng(0)
    v = {}

    def lin(name, rows):
        v[f"{name}/weight"] = rng.standard_normal((rows, d)).astype(np.float32)
        v[f"{name}/bias"] = rng.standard_normal(rows).astype(np.float32)

    def ln(name):
        v[f"{name}/gamma"], v[f"{name}/beta"] = np.ones(d, np.float32), np.zeros(d, np.float32)

    for conv in ("conv1", "conv2"):
        v[f"encoder/{conv}/weight"], v[f"encoder/{conv}/bias"] = (
            np.zeros((d, d, 3), np.float32),
            np.zeros(d, np.float32),
        )
    v["encoder/position_encodings/encodings"] = np.zeros((6, d), np.float32)
    v["decoder/embeddings/weight"] = np.zeros((10, d), np.float32)
    v["decoder/position_encodings/encodings"] = np.zeros((5, d), np.float32)
    for stack in ("encoder", "decoder"):
        lin(f"{stack}/layer_0/self_attention/linear_0", 3 * d)
        lin(f"{stack}/layer_0/self_attention/linear_1", d)
        ln(f"{stack}/layer_0/self_attention/layer_norm")
        lin(f"{stack}/layer_0/ffn/linear_0", 2 * d)
        lin(f"{stack}/layer_0/ffn/linear_1", d)
        ln(f"{stack}/layer_0/ffn/layer_norm")
        ln(f"{stack}/layer_norm")
    lin("decoder/layer_0/attention/linear_0", d)
    lin("decoder/layer_0/attention/linear_1", 2 * d)
    lin("decoder/layer_0/attention/linear_2", d)
    ln("decoder/layer_0/attention/layer_norm")
    sd = whisper_state_dict(v, 1, 1)
    fused = v["encoder/layer_0/self_attention/linear_0/weight"]
    assert np.array_equal(sd["model.encoder.layers.0.self_attn.q_proj.weight"], fused[:d])
    assert np.array_equal(sd["model.encoder.layers.0.self_attn.k_proj.weight"], fused[d : 2 * d])
    assert np.array_equal(sd["model.encoder.layers.0.self_attn.v_proj.weight"], fused[2 * d :])
    kv = v["decoder/layer_0/attention/linear_1/weight"]
    assert np.array_equal(sd["model.decoder.layers.0.encoder_attn.k_proj.weight"], kv[:d])
    assert np.array_equal(sd["model.decoder.layers.0.encoder_attn.v_proj.weight"], kv[d:])
    assert "model.encoder.layers.0.self_attn.k_proj.bias" not in sd  # Whisper's k projection has no bias
