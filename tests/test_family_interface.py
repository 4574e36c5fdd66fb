"""One family interface (explorer/adapters/family.py): every registered family's adapter meets it, and a
fifth family defined only here (its Family record, architecture, catalogue entry, adapter and page body,
each registered for the test alone) renders its page, its experiments and its compare column with no
other file changed."""

import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import streamlit as st
import torch
import transformers
from streamlit.testing.v1 import AppTest

from explorer.adapters import decoder, family
from explorer.adapters.common import display_tokens, tokenize
from explorer.adapters.family import FamilyAdapter, problems
from explorer.adapters.lookup import adapter_for, adapter_of
from explorer.catalogue import ASSETS, CatalogueEntry, FamilyEntry, load_catalogue
from explorer.experiments import measure
from explorer.plots import encoder as encoder_plots
from explorer.registry import ARCHITECTURES, FAMILIES, Architecture, Family
from explorer.ui.view import View

TIMEOUT = 300
FIFTH = "fifth"
MODEL_ID = "./fifth-tiny"  # a folder under the operator's local model root (EXPLORER_LOCAL_MODEL_ROOT)
MODEL_TYPE = "qwen2"  # the architecture the fifth family claims (no default model of another family is one)


# --- every registered family --------------------------------------------------------------------


@pytest.mark.parametrize("key", list(FAMILIES))
def test_every_family_record_names_an_adapter_that_meets_the_interface(key):
    adapter = adapter_of(key)
    assert isinstance(adapter, FamilyAdapter) and problems(adapter) == []
    assert adapter.key == key
    assert adapter.causal == (not FAMILIES[key].encoder_only)  # the registry's flag, for the models layer below


def test_an_adapter_missing_a_member_or_with_another_signature_is_told_what():
    class Partial(FifthAdapter):
        def trace(self, loaded, ids):  # no notes, no with_logits
            return None

    assert problems(Partial()) == ["trace('loaded', 'ids') instead of trace('loaded', 'ids', 'notes', 'with_logits')"]
    assert "missing card_steps" in problems(object())


def test_the_pages_and_the_cards_cover_every_experiment_and_card_step():
    from explorer.ui import experiments

    assert set(experiments.TOOLS) == set(family.EXPERIMENTS)
    assert all(callable(tool.body) and tool.label for tool in experiments.TOOLS.values())
    assert all(experiments.TOOLS[slug].families() for slug in family.EXPERIMENTS)  # each offered by some family
    assert set(measure.STEPS) == set(family.CARD_STEPS)


# --- a fifth family, defined here -----------------------------------------------------------------


class FifthAdapter:
    """A decoder read as a family of its own: every answer of the interface, from the decoder's functions."""

    key = FIFTH
    causal = True
    answer = family.NEXT
    keep_end = False
    head_modes = family.HEAD_MODES_CAUSAL
    experiments = (family.SINK, family.HEADS, family.PATCHING, family.ATTRIBUTION, family.CARDS)

    def trace(self, loaded, ids, notes=(), with_logits=True):
        return decoder.trace_ids(loaded, ids, notes)

    def lens(self, loaded, hidden):
        return decoder.logit_lens(loaded, hidden)

    def routed(self, loaded):
        return False

    def encoder_decoder(self, loaded):
        return False

    def card_steps(self, loaded):
        return (family.SENTENCES, family.WORDS, family.RANDOM_TOKENS)

    def compare_run(self, loaded, text, new_tokens=8, speech=None):
        ids, notes = tokenize(loaded, text)
        run = decoder.greedy_run(loaded, ids, new_tokens, "the fifth family: a decoder by another name",
                                 decoder.dense_parameters(loaded))  # fmt: skip
        return replace(run, notes=notes)


ADAPTER = FifthAdapter()
VIEW: View | None = None  # the page's View, made once the family is registered (View.of_family reads it)


def render() -> None:
    """The fifth family's page body: its text, its adapter's trace, the first block's attention."""
    VIEW.text_page("The fifth family", "A decoder by another name.", "Text", ["The cat sat on the mat."], _body)


def _body(loaded, text: str) -> None:
    adapter = adapter_for(loaded)
    ids, notes = tokenize(loaded, text, keep_end=adapter.keep_end)
    trace = adapter.trace(loaded, ids, notes)
    with VIEW.main():
        VIEW.figure(encoder_plots.layer_attention(trace, 0, None), key="fifth_attention",
                    caption="Attention of the first block, mean over heads.")  # fmt: skip
    st.markdown("Tokens: " + " ".join(display_tokens(loaded.tokenizer, ids)))


@pytest.fixture(scope="module")
def model_root(tmp_path_factory) -> Path:
    """A tiny random Qwen2 with the dense twin's tokenizer, saved as a plain folder."""
    root = tmp_path_factory.mktemp("models")
    folder = root / MODEL_ID.removeprefix("./")
    twin = ASSETS / "models" / "dense-twin-austen"
    config = transformers.Qwen2Config(
        vocab_size=4096, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=37, max_position_embeddings=256, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.Qwen2ForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(twin / name, folder / name)
    return root


@pytest.fixture
def fifth(monkeypatch, model_root):
    """The fifth family registered for one test: its record, its architecture, its catalogue entry
    (the adapter and the page body are this module, named by the record)."""
    module = sys.modules[__name__]
    monkeypatch.setitem(
        FAMILIES,
        FIFTH,
        Family(
            FIFTH,
            "The fifth family",
            "fifth",
            ":material/looks_5:",
            module.__name__,
            module.__name__,
            "a decoder by another name.",
        ),
    )
    monkeypatch.setitem(ARCHITECTURES, MODEL_TYPE, Architecture(MODEL_TYPE, FIFTH, "AutoModelForCausalLM", "Qwen2"))
    entry = CatalogueEntry(MODEL_ID, "tiny random Qwen2 (the fifth family)")
    monkeypatch.setitem(load_catalogue(), FIFTH, FamilyEntry(FIFTH, "The fifth family", MODEL_ID, (entry,)))
    monkeypatch.setenv("EXPLORER_LOCAL_MODEL_ROOT", str(model_root))
    monkeypatch.setattr(module, "VIEW", View.of_family(FIFTH, "fifth_text"))
    yield FAMILIES[FIFTH]


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_the_fifth_family_meets_the_interface(fifth):
    assert problems(adapter_of(FIFTH)) == [] and adapter_of(FIFTH) is ADAPTER


def test_the_fifth_family_page_renders_through_its_record(fifth):
    script = "from explorer.registry import FAMILIES\nfrom explorer.ui.pages import lazy_render\n" \
             "lazy_render(FAMILIES['fifth'].page)()\n"  # fmt: skip
    at = AppTest.from_string(script, default_timeout=TIMEOUT).run()
    no_errors(at)
    assert at.title[0].value == "The fifth family"
    assert any(m.value.startswith("Tokens: ") for m in at.markdown)


def test_the_fifth_family_experiments_run_each_tool(fifth):
    from explorer.ui import experiments

    at = AppTest.from_string("from explorer.ui import experiments\nexperiments.render()\n",
                             default_timeout=TIMEOUT)  # fmt: skip
    at.session_state["exp_family"] = FIFTH
    at.run()
    no_errors(at)
    offered = experiments.tools(FIFTH)
    assert offered == list(adapter_of(FIFTH).experiments)
    assert at.radio(key="exp_tool").options == [experiments.TOOLS[slug].label for slug in offered]
    clicks = {family.HEADS: "exp_suggest", family.CARDS: "exp_run_cards"}
    for tool in offered:
        at.radio(key="exp_tool").set_value(tool).run()
        no_errors(at)
        if tool in clicks:
            at.button(key=clicks[tool]).click().run()
            no_errors(at)
        if tool != family.ATTRIBUTION:  # attribution waits for its own click
            assert at.get("plotly_chart"), f"{tool}: a figure"
    assert at.table, "the cards' table"


def test_the_fifth_family_has_its_compare_column(fifth):
    at = AppTest.from_string("from explorer.ui import compare_page\ncompare_page.render()\n",
                             default_timeout=TIMEOUT).run()  # fmt: skip
    no_errors(at)
    table = at.table[0].value
    assert len(table) == len(FAMILIES) == 5
    assert list(table["family"])[-1] == "The fifth family" and list(table["model"])[-1] == MODEL_ID
