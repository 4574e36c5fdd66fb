"""Sampling you can see (issue 21) on the real embedded decoder, SmolLM2-135M-Instruct: the decoder
page's bars show what Step draws from, and at the frontier mark exactly the token Step appends."""

import numpy as np
import pytest
from test_plots import bar_values

from explorer.adapters import decoder
from explorer.decoding import SamplingSettings
from explorer.models.loading import load_model
from explorer.session import DecodingSession
from explorer.ui import stepper

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def loaded():
    return load_model("embedded:SmolLM2-135M-Instruct", device="cpu")


@pytest.fixture(scope="module")
def step_fn(loaded):
    cache = {}

    def step(context: tuple[int, ...]):
        if context not in cache:
            cache[context] = decoder.step(loaded, np.asarray(context, dtype=np.int64))
        return cache[context]

    return step


def make_session(loaded, step_fn, rules: SamplingSettings) -> DecodingSession:
    return DecodingSession(
        decoder.prompt_ids(loaded, PROMPT)[0],
        step_fn,
        lambda _i: rules,
        decoder.eos_ids(loaded),
        max_tokens=32,
        generated=[],
    )


def labels(ids):
    return {i: f"t{i}" for i in ids}


def test_the_bars_sharpen_and_flatten_a_real_distribution(loaded, step_fn):
    top_drawn = []
    for t in (0.1, 1.0, 2.0):
        result = make_session(loaded, step_fn, SamplingSettings(greedy=False, temperature=t)).snapshot()
        step = result.steps[-1]
        values = bar_values(stepper.bars_figure(result, len(result.steps), labels))
        top = int(step.probs.argmax())
        top_drawn.append(values["drawn"][top])
        assert values["raw"][top] == pytest.approx(float(step.probs[top]))  # grey: the model at T=1
    assert top_drawn[0] > top_drawn[1] > top_drawn[2]
    assert top_drawn[1] == pytest.approx(values["raw"][top], rel=1e-5)  # T=1, nothing removed: blue == grey


@pytest.mark.parametrize(
    "rules",
    [
        SamplingSettings(greedy=False, temperature=1.5, seed=7),
        SamplingSettings(greedy=False, temperature=0.8, top_k=20, top_p=0.9, seed=123),
        SamplingSettings(),
    ],
)
def test_the_frontier_mark_is_what_step_appends(loaded, step_fn, rules):
    session = make_session(loaded, step_fn, rules)
    for _ in range(5):
        result = session.snapshot()
        frontier = len(result.steps)
        marked, is_next = stepper.marked_token(result, frontier)
        fig = stepper.bars_figure(result, frontier, labels)
        orange = [t for t in fig.data if t.name.startswith("next: ")]
        assert is_next and len(orange) == 1 and int(orange[0].customdata[0][1]) == marked
        session.advance(1)  # what the Step button does
        assert session.generated[-1] == marked
        if session.finished():
            break
    earlier = session.snapshot()
    assert stepper.marked_token(earlier, 1) == (session.generated[0], False)  # earlier steps: the token chosen


def test_the_decoder_page_marks_what_its_step_button_appends():
    """Through the page itself: sampling on, the bars' orange 'next' token is the token Step appends."""
    import json

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string("from explorer.ui import decoder_page\ndecoder_page.render()\n", default_timeout=300).run()
    at.toggle(key="decoder_greedy").set_value(False).run()
    at.slider(key="decoder_temperature").set_value(1.6)
    at.number_input(key="decoder_seed").set_value(11).run()
    assert not at.exception and not at.error
    for _ in range(2):
        chart = json.loads(next(c for c in at.get("plotly_chart") if "Step draws from" in c.proto.spec).proto.spec)
        (marked,) = [t for t in chart["data"] if t["name"].startswith("next: ")]
        assert "temperature T=1.6" in chart["layout"]["title"]["text"] + "".join(t["name"] for t in chart["data"])
        at.button(key="decoder_step").click().run()
        generated = at.session_state["decoder_generated"]
        assert generated[-1] == int(marked["customdata"][0][1])
        assert at.slider(key="decoder_inspect").value == len(generated) + 1  # Inspect follows the new frontier
