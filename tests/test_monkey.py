"""A widget monkey per page (AppTest, embedded defaults): hypothesis drives every enabled widget to
its minimum, maximum or a random value and clicks buttons in random orders. No run may raise, no
view may fall back to the "Something went wrong" boundary, and the state stays consistent:
Back after Step restores the same tokens, Reset empties them, and a shared link restores the view."""

import random
import re

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import TESTING_KEY

from explorer.ui.common import URL_VALUE_LIMIT

TIMEOUT = 300
WIDGET_KINDS = (
    "button",
    "slider",
    "select_slider",
    "number_input",
    "toggle",
    "checkbox",
    "selectbox",
    "radio",
    "multiselect",
    "text_area",
    "text_input",
)
TEXTS = [
    "",
    "   ",
    "The bank of the river.",
    "<script>alert(1)</script> **bold** $x$",
    "مرحبا بالعالم",
    "猫が好きです",
    "👩‍👩‍👧 family",
    "[MASK] [SEP] [CLS] <|endoftext|>",
    "def fibonacci(n):\n    return n",
    "a" * 3000,
    "\x00\x07 control \u202e reversed",
]
# Each page, and the state keys whose values a shared link must bring back.
PAGES = {
    "encoder_page": ("encoder_text",),
    "decoder_page": ("decoder_prompt", "decoder_generated"),
    "seq2seq_page": ("s2s_generated",),
    "moe_page": ("moe_text",),
    "compare_page": ("compare_text",),
    "gallery_page": (),
    "experiments": ("exp_family", "exp_tool", "exp_text"),
    "home": (),
}
ACTION = st.tuples(st.integers(0, 10_000), st.sampled_from(["min", "max", "random"]), st.integers(0, 2**31))


def page(module: str) -> AppTest:
    return AppTest.from_string(f"from explorer.ui import {module}\n{module}.render()\n", default_timeout=TIMEOUT)


def assert_healthy(at: AppTest, what: str) -> None:
    assert not at.exception, (what, [e.value for e in at.exception])
    broken = [e.value for e in at.error if e.value.startswith("Something went wrong")]
    assert not broken, (what, broken)


def enabled_widgets(at: AppTest) -> list:
    return [w for kind in WIDGET_KINDS for w in getattr(at, kind) if not w.disabled and w.key]


def _number(low, high, choice: str, rng: random.Random, step):
    low = -1e6 if low is None else low
    high = 1e6 if high is None else high
    if choice == "min":
        return low
    if choice == "max":
        return high
    if isinstance(step, int) or (isinstance(low, int) and isinstance(high, int)):
        return rng.randint(int(low), int(high))
    return low + round(rng.random() * (high - low) / step) * step if step else rng.uniform(low, high)


def act(at: AppTest, widget, choice: str, rng: random.Random) -> str:
    """Drive one widget; returns what was done (for the failure message)."""
    kind = widget.type
    if getattr(widget, "options", None):
        # the wire carries the displayed strings: choose among them, displayed as they are
        at.session_state[TESTING_KEY][widget.id] = str
    if kind == "button":
        widget.click()
    elif kind in ("toggle", "checkbox"):
        widget.set_value({"min": False, "max": True}.get(choice, rng.random() < 0.5))
    elif kind in ("selectbox", "radio"):
        n = len(widget.options)
        widget.set_value(widget.options[{"min": 0, "max": n - 1}.get(choice, rng.randrange(n))]) if n else None
    elif kind == "multiselect":
        options = widget.options
        chosen = {"min": [], "max": options[:4]}.get(choice, rng.sample(options, min(len(options), rng.randint(0, 3))))
        widget.set_value(chosen)
    elif kind in ("slider", "select_slider"):
        if widget.options:
            widget.set_value(widget.options[{"min": 0, "max": -1}.get(choice, rng.randrange(len(widget.options)))])
        else:
            widget.set_value(_number(widget.min, widget.max, choice, rng, widget.step))
    elif kind == "number_input":
        widget.set_value(_number(widget.min, widget.max, choice, rng, widget.step))
    elif kind in ("text_area", "text_input"):
        widget.input({"min": "", "max": TEXTS[-2]}.get(choice, rng.choice(TEXTS)))
    return f"{kind} {widget.key} -> {choice}"


def run_monkey(module: str, actions) -> AppTest:
    at = page(module).run()
    assert_healthy(at, "first run")
    done = []
    for index, choice, seed in actions:
        widgets = enabled_widgets(at)
        if not widgets:
            break
        done.append(act(at, widgets[index % len(widgets)], choice, random.Random(seed)))
        at.run()
        assert_healthy(at, done)
    return at


def check_stepper(at: AppTest, prefix: str) -> None:
    """Back after Step restores the tokens; Reset empties them."""
    key = f"{prefix}_generated"
    step, back, reset = (at.button(key=f"{prefix}_{b}") for b in ("step", "back", "reset"))
    before = list(at.session_state[key])
    if not step.disabled:
        step.click().run()
        assert_healthy(at, "step")
        after = list(at.session_state[key])
        assert after[: len(before)] == before and len(after) in (len(before), len(before) + 1)
        if len(after) == len(before) + 1:
            at.button(key=f"{prefix}_back").click().run()
            assert list(at.session_state[key]) == before
    if not reset.disabled or not back.disabled:
        at.button(key=f"{prefix}_reset").click().run()
        assert_healthy(at, "reset")
        assert list(at.session_state[key]) == []


def shown(markdown: str) -> str:
    """A message as the page shows it: Markdown escapes and the word joiners that stop autolinks removed."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def check_shared_link(at: AppTest, module: str, keys: tuple[str, ...]) -> None:
    """A fresh session opened on this session's URL shows the same text and tokens."""
    fresh = page(module)
    for name, value in at.query_params.items():
        fresh.query_params[name] = value if isinstance(value, str) else value[0]
    fresh.run()
    assert_healthy(fresh, "shared link")
    for key in keys:
        value = at.session_state[key] if key in at.session_state else None
        if isinstance(value, str) and len(value) > URL_VALUE_LIMIT:
            assert "text" not in at.query_params  # too long for a link: the link carries none, not a stale one
        elif key in at.session_state and key not in fresh.session_state:
            model = at.query_params.get("model")
            model = model if isinstance(model, str) or model is None else model[0]
            if fresh.error:
                # the link names a model this machine cannot load (a hub id, offline): the fresh session has no
                # previous model to fall back on, so it shows the one-sentence load error (escaped) instead
                assert model and model in shown(fresh.error[0].value), (key, model)
            else:  # the restored view does not draw this key (an experiments tool without text): the link keeps it
                linked = at.query_params.get("text")
                linked = linked if isinstance(linked, str) or linked is None else linked[0]
                assert key.endswith("_text") and linked == at.session_state[key], (key, linked)
        elif key in at.session_state:
            assert (
                list(fresh.session_state[key]) == list(at.session_state[key])
                if key.endswith("generated")
                else fresh.session_state[key] == at.session_state[key]
            ), key


def monkey(examples: int):
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
    )  # no shrinking: each step is a page run


@pytest.mark.parametrize("module", [m for m in PAGES if m != "compare_page"])
@monkey(5)
@given(actions=st.lists(ACTION, min_size=1, max_size=5))
def test_widget_monkey(module, actions):
    check_page(module, actions)


@monkey(2)  # the compare page runs all four models and speech synthesis on every new text
@given(actions=st.lists(ACTION, min_size=1, max_size=3))
def test_widget_monkey_compare_page(actions):
    check_page("compare_page", actions)


def check_page(module, actions):
    at = run_monkey(module, actions)
    if PAGES[module]:
        check_shared_link(at, module, PAGES[module])
    steppers = [k.removesuffix("_generated") for k in PAGES[module] if k.endswith("_generated")]
    for prefix in steppers:
        if f"{prefix}_generated" in at.session_state and any(b.key == f"{prefix}_step" for b in at.button):
            check_stepper(at, prefix)
