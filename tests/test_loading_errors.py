"""Every way a model can fail to load ends in one readable sentence (ModelLoadError)."""

import json

import pytest

from explorer.models.loading import LOCAL_MODEL_ROOT_ENV, ModelLoadError, load_model
from tiny_models import tiny_model


@pytest.fixture
def model_root(tmp_path, monkeypatch):
    monkeypatch.setenv(LOCAL_MODEL_ROOT_ENV, str(tmp_path))
    return tmp_path


def message(model_id, **kwargs) -> str:
    with pytest.raises(ModelLoadError) as info:
        load_model(model_id, device="cpu", **kwargs)
    text = str(info.value)
    assert "Traceback" not in text and "\n" not in text
    return text


def test_hub_id_without_network_says_offline():
    assert "cannot be reached" in message("gpt2")


def test_empty_id():
    assert "enter a model id" in message("  ")


def test_unknown_embedded_id():
    assert "not one of the embedded models" in message("embedded:nope")


def test_local_folders_refused_unless_operator_allows(tmp_path, monkeypatch):
    monkeypatch.delenv(LOCAL_MODEL_ROOT_ENV, raising=False)
    assert "Local folders are disabled" in message(str(tmp_path))


def test_local_folder_outside_allowed_root(model_root, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere")
    assert "outside the folder" in message(str(outside))


def test_unsupported_architecture(model_root):
    (model_root / "vit").mkdir()
    (model_root / "vit" / "config.json").write_text(json.dumps({"model_type": "vit"}))
    text = message(str(model_root / "vit"))
    assert "does not support" in text and "BERT" in text


def test_remote_code_is_refused(model_root):
    folder = model_root / "custom"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "my_custom", "auto_map": {"AutoConfig": "conf.MyConfig"}}))
    assert "trust_remote_code" in message(str(folder))


def test_folder_without_weights(model_root):
    folder = model_root / "bare"
    tiny_model("bert").config.save_pretrained(folder)
    assert "no safetensors weights" in message(str(folder))


def test_pickle_weights_are_not_loaded(model_root):
    folder = model_root / "pickle"
    import torch

    model = tiny_model("bert")
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # a pickle file, as old checkpoints ship
    assert "no safetensors weights" in message(str(folder))


def test_corrupted_weights(model_root):
    folder = model_root / "corrupt"
    tiny_model("bert").save_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"\x00\x01 not a safetensors file")
    assert "could not be read" in message(str(folder))


def test_wrong_family_points_to_the_right_page(model_root):
    folder = model_root / "bert"
    tiny_model("bert").save_pretrained(folder)
    text = message(str(folder), family="decoder")
    assert "Encoder-only page" in text


def test_too_large_for_memory(model_root, monkeypatch):
    import explorer.models.loading as loading

    folder = model_root / "big"
    tiny_model("gpt2").save_pretrained(folder)
    monkeypatch.setattr(loading, "_free_bytes", lambda device: 1000)
    assert "more than the" in message(str(folder))


def test_a_valid_local_folder_loads(model_root):
    folder = model_root / "ok"
    tiny_model("gpt2").save_pretrained(folder)
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({f"w{i}": i for i in range(99)}, unk_token="w0")))
    tok.save_pretrained(folder)
    loaded = load_model(str(folder), device="cpu", family="decoder")
    assert loaded.arch.model_type == "gpt2" and loaded.load_seconds > 0


def test_out_of_memory_while_loading(model_root, monkeypatch):
    import transformers

    folder = model_root / "oom"
    tiny_model("gpt2").save_pretrained(folder)

    def exhausted(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", exhausted)
    assert "ran out of memory" in message(str(folder))
