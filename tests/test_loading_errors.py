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
    assert "Local folders are off" in message(str(tmp_path))


def test_local_folder_outside_allowed_root(model_root, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere")
    assert "nor a model folder the operator allowed" in message(str(outside))


TRAVERSALS = [
    "assets/../../../../etc/shadow",
    "../../../../etc/passwd",
    "/etc/shadow",
    "/etc",
    "/no/such/folder",
    "~/.ssh/id_rsa",
    "~",
    "/proc/self/environ",
    "a/b/c",
    "./../x",
    "%2e%2e/etc",
]


@pytest.mark.parametrize("with_root", [False, True])
def test_paths_outside_the_root_get_one_sentence_and_no_file_system_read(with_root, tmp_path, monkeypatch):
    """A refusal cannot be an oracle: the same sentence whether the path exists or not, and no stat,
    lstat or open of anything outside the root on the way (issue 26: /etc/shadow answered at once)."""
    import os

    root = tmp_path / "root"
    root.mkdir()
    if with_root:
        monkeypatch.setenv(LOCAL_MODEL_ROOT_ENV, str(root))
    else:
        monkeypatch.delenv(LOCAL_MODEL_ROOT_ENV, raising=False)
    touched = []
    for name in ("stat", "lstat", "open", "listdir", "scandir"):
        real = getattr(os, name)
        monkeypatch.setattr(
            os, name, lambda path, *a, _real=real, **k: (touched.append(str(path)), _real(path, *a, **k))[1]
        )
    sentences = {message(payload).replace(payload, "<id>") for payload in TRAVERSALS}
    monkeypatch.undo()
    assert len(sentences) == 1, sentences
    # resolving the root itself reads its ancestors (the operator's setting, not the visitor's id)
    ancestors = {str(parent) for parent in root.parents}
    outside = [p for p in touched if not os.path.abspath(p).startswith((str(root), os.getcwd())) and p not in ancestors]
    assert outside == []


def test_symlinks_and_files_inside_the_root_are_refused_like_missing_paths(model_root, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    tiny_model("gpt2").save_pretrained(elsewhere / "model")
    (model_root / "link").symlink_to(elsewhere / "model")  # a link inside the root to a folder outside it
    (model_root / "file.json").write_text("{}")
    refusals = {
        message(str(model_root / name)).replace(str(model_root / name), "<id>")
        for name in ("link", "file.json", "missing")
    }
    assert len(refusals) == 1 and "nor a model folder the operator allowed" in refusals.pop()


@pytest.mark.parametrize("model_id", ["gpt2", "openai-community/gpt2", "Qwen/Qwen2-0.5B", "a.b_c-d/e.f"])
def test_hub_ids_follow_the_hubs_grammar(model_id):
    from explorer.models.loading import is_hub_id

    assert is_hub_id(model_id)


@pytest.mark.parametrize("model_id", ["a/b/c", "../x", "a//b", "-x", "x-", "a--b", "a..b", "x" * 97, "a b", "a/"])
def test_other_strings_are_not_hub_ids(model_id):
    from explorer.models.loading import is_hub_id

    assert not is_hub_id(model_id)


def test_a_wrong_family_embedded_id_is_refused_before_loading(monkeypatch):
    import explorer.models.embedded as embedded

    monkeypatch.setattr(embedded, "load_embedded", lambda *a: pytest.fail("loaded before the family was checked"))
    assert "Decoder-only page" in message("embedded:SmolLM2-135M-Instruct", family="moe")
    assert "Mixture of Experts page" in message("embedded:moe-tiny-austen", family="decoder")


def test_the_unknown_embedded_id_sentence_names_every_embedded_model():
    text = message("embedded:nope")
    for name in (
        "distilbert-grammar-mlm",
        "marian-en-pt-tiny",
        "moe-tiny-austen",
        "dense-twin-austen",
        "whisper-tiny.en",
    ):
        assert f"embedded:{name}" in text


def test_unsupported_architecture(model_root):
    (model_root / "vit").mkdir()
    (model_root / "vit" / "config.json").write_text(json.dumps({"model_type": "vit"}))
    text = message(str(model_root / "vit"))
    assert "does not support" in text and "BERT" in text


def test_remote_code_is_refused(model_root):
    folder = model_root / "custom"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps({"model_type": "my_custom", "auto_map": {"AutoConfig": "conf.MyConfig"}})
    )
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

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({f"w{i}": i for i in range(99)}, unk_token="w0"))
    )
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
