"""Lessons (issue 24): predict, then watch the model. Guided labs whose answers the live model computes, for a
learner alone or a class that votes (explorer.ui.lessons_class).

A learner picks a lab and steps through it. Each step asks a question about a view of a page; "Open this view"
presets that view on its page (through the page's View, as the presenter tour does) and brings the step's
figure into view. The learner commits an answer, then sees the model's own answer, measured on the family's
chosen model and the view as set up (the lab's text, or the learner's own: the answer follows), and why.

State: plain session keys, which a visit to another page keeps, and the link: ?lab= and ?step= (the lab and the
step, from 1), ?text= (the learner's own text for the step), and the class's ?class=, ?me= or ?teach=.
"""

from __future__ import annotations

import copy

import streamlit as st

from explorer.lessons.asking import class_question, tolerance_note, whole_number
from explorer.lessons.core import CHOICE, Answer, Lab, LabRefused, Step
from explorer.lessons.labs import BY_ID, LABS
from explorer.models.building import LoadedModel
from explorer.registry import FAMILIES
from explorer.text import InputError, clean_user_text, plain
from explorer.ui import lessons_class as klass
from explorer.ui import picker
from explorer.ui.boundary import guarded, run_safely
from explorer.ui.doors import LESSON_CHOOSING, LESSON_FAMILY, LESSON_LAB, LESSON_LANDING, LESSON_STEP, switch_to
from explorer.ui.links import take_once
from explorer.ui.pages import views_by_url
from explorer.ui.view import View, cached

TEXT = "lessons_text"  # the learner's own text for the step (None: the lab's)
TEXT_BOX = "lessons_text_box"
QUESTION_ANCHOR = "lessons_question"  # the container of a step's question (the presenter tour lands on it)
GIVEN = "_lessons_given"  # question id -> the answer this learner committed (as the question stores it)
SEEN = "_lessons_seen"  # lab id -> {step id: its Answer as last shown}, for the handout
LAST_FAMILY = "_lessons_last_family"
MOVES = "_lessons_moves"
MAX_STEPS = max(len(lab.steps) for lab in LABS)

VIEW = View(
    "Lessons view",
    keys={
        "lab": LESSON_LAB,
        "step": LESSON_STEP,
        "text": TEXT,
        "class": klass.CLASS,
        "me": klass.ME,
        "teach": klass.TEACHER,
    },
    settings={LESSON_LAB: "choice " + "|".join(BY_ID), LESSON_STEP: f"int 1 {MAX_STEPS}", TEXT: "str"},
    private=("me", "teach"),
)
HEADLINE = "Lessons: predict, then watch the model"
INTRO = (
    "Each lab asks you to **predict** what a real model does on a view (which word fills a gap, where a token "
    "looks, which expert a word goes to), then **checks it live**: the answer is computed by the model you "
    "chose for that family, on the text as it is set up. Change the text and the answer follows.\n\n"
    "**With a class**: *Teach this lab to a class* gives a code; students join from their own browsers and "
    "vote on each question (anonymously). The teacher's screen shows the live histogram, then *Discuss and "
    "vote again* and the shift between the two votes, then the reveal: peer instruction (Crouch & Mazur 2001)."
)


def render() -> None:
    VIEW.heading(HEADLINE, INTRO)
    VIEW.start()
    klass.restore_people(take_once)
    klass.show_note()
    role = klass.role()
    family = None
    if role == "student":
        klass.student_screen()
    elif role == "joining" or st.session_state.get(LESSON_CHOOSING) or _lab() is None:
        _chooser(role)
    else:
        family = _lesson(_lab(), role)
    klass.publish()
    _publish()
    VIEW.export(family)


def _lab() -> Lab | None:
    return BY_ID.get(st.session_state.get(LESSON_LAB))


def _step_number(lab: Lab) -> int:
    number = st.session_state.get(LESSON_STEP)
    number = number if isinstance(number, int) and not isinstance(number, bool) else 1
    st.session_state[LESSON_STEP] = min(max(number, 1), len(lab.steps))
    return st.session_state[LESSON_STEP]


def _publish() -> None:
    """Keys without a value leave the link (the View writes the others)."""
    for param, key in (("lab", LESSON_LAB), ("step", LESSON_STEP), ("text", TEXT)):
        if st.session_state.get(key) is None and param in st.query_params:
            del st.query_params[param]


# --- choosing a lab -------------------------------------------------------------------------------------


def _start(lab_id: str) -> None:
    """Callback of a lab's Start: its first step, with its own text (a teacher's class follows)."""
    st.session_state[LESSON_LAB], st.session_state[LESSON_STEP], st.session_state[TEXT] = lab_id, 1, None
    st.session_state[LESSON_CHOOSING] = False
    klass.follow_lab(lab_id)


def _chooser(role: str) -> None:
    if role == "joining":
        klass.join_form()
        st.button("Do a lab on my own instead", key="lessons_alone", on_click=klass.leave)
        return
    lab = _lab()
    top, join = st.columns([7, 5])
    with top:
        st.subheader("Choose a lab")
        sizes = sorted(len(x.steps) for x in LABS)
        st.caption(
            f"Each lab asks {sizes[0]} to {sizes[-1]} questions about one family's model, answered by that model live."
        )
        if lab is not None:
            st.button(
                plain(f"Continue: {lab.title}, step {_step_number(lab)}"),
                key="lessons_continue",
                icon=":material/play_arrow:",
                on_click=lambda: st.session_state.update({LESSON_CHOOSING: False}),
            )
    with join:
        if role == "teacher":
            st.info(
                f"You are teaching class {st.session_state[klass.CLASS]}: the lab you start now is the one it follows."
            )
        else:
            klass.join_form()
    first = st.session_state.get(LESSON_FAMILY)
    order = sorted(
        LABS,
        key=lambda x: (x.family != first, list(FAMILIES).index(x.family) if x.family in FAMILIES else len(FAMILIES)),
    )
    columns = st.columns(3)
    for n, item in enumerate(order):
        with columns[n % 3].container(border=True):
            _lab_card(item)


def _family_title(family: str) -> str:
    return FAMILIES[family].title if family in FAMILIES else "Experiments"


def _lab_card(lab: Lab) -> None:
    st.markdown(f"**{plain(lab.title)}**")
    st.caption(plain(f"{_family_title(lab.family)} · {len(lab.steps)} steps"))
    st.markdown(plain(lab.summary))
    st.button(
        "Start",
        key=f"lessons_start_{lab.id}",
        icon=":material/play_arrow:",
        on_click=guarded(_start),
        args=(lab.id,),
        width="stretch",
    )


# --- one step of a lab ----------------------------------------------------------------------------------


def _go(number: int, lab: Lab) -> None:
    """Callback of Previous / Next: the learner's own text stays when the next step asks about the same text."""
    before = lab.steps[_step_number(lab) - 1]
    after = lab.steps[min(max(number, 1), len(lab.steps)) - 1]
    if _preset_text(before) != _preset_text(after):
        st.session_state[TEXT] = None
    st.session_state[LESSON_STEP] = number


def _text_key(step: Step) -> str | None:
    return views_by_url()[step.page].text_key


def _preset_text(step: Step) -> str | None:
    value = step.preset.get(_text_key(step))
    return value if isinstance(value, str) else None


def _overrides(step: Step) -> tuple:
    """What the learner changed on the step's view, as the cache keys it: ((state key, value),)."""
    text = st.session_state.get(TEXT)
    if text and _preset_text(step) is not None and text != _preset_text(step):
        return ((_text_key(step), text),)
    return ()


def _lesson(lab: Lab, role: str) -> str:
    """The lab's current step; returns the family whose model answers it."""
    number = _step_number(lab)
    step = lab.steps[number - 1]
    _lesson_header(lab, number, role)
    if role == "teacher":
        run_safely(klass.class_banner)
    st.subheader(plain(f"Step {number} of {len(lab.steps)}: {step.title}"))
    if st.session_state.get(LAST_FAMILY, step.family) != step.family and "model" in st.query_params:
        del st.query_params["model"]  # it names the previous family's model: this family's picker must not read it
    st.session_state[LAST_FAMILY] = step.family
    loaded = picker.load_for_page(step.family)
    if loaded is not None:
        run_safely(lambda: _step_body(lab, step, loaded, role))
    _step_buttons(lab, number)
    _record_handout(lab)
    return step.family


def _lesson_header(lab: Lab, number: int, role: str) -> None:
    back, title, teach = st.columns([2, 7, 3], vertical_alignment="center")
    back.button(
        "All labs",
        key="lessons_all",
        icon=":material/arrow_back:",
        on_click=lambda: st.session_state.update({LESSON_CHOOSING: True}),
    )
    title.markdown(plain(f"{lab.title} · {_family_title(lab.family)}"))
    title.progress(number / len(lab.steps))
    if role == "alone":
        teach.button(
            "Teach this lab to a class",
            key="lessons_teach",
            icon=":material/groups:",
            on_click=guarded(klass.start_class),
            args=(lab.id,),
            width="stretch",
            help="A class code for students to join from their own browsers and vote on each question.",
        )


@cached(max_entries=128)
def step_answer(loaded: LoadedModel, lab_id: str, step_id: str, overrides: tuple) -> Answer | str:
    """The model's answer on the view as set up, or the sentence saying why this view cannot answer."""
    try:
        return BY_ID[lab_id].answer(step_id, loaded, dict(overrides))
    except LabRefused as refusal:
        return str(refusal)


@cached(max_entries=64)
def step_state(loaded: LoadedModel, lab_id: str, step_id: str, overrides: tuple) -> dict:
    """The state the step presets on its page (values only the model knows computed from it)."""
    return BY_ID[lab_id].step(step_id).view(loaded, dict(overrides))


def _step_body(lab: Lab, step: Step, loaded: LoadedModel, role: str) -> None:
    overrides = _overrides(step)
    _own_text(step)
    with st.spinner("The model is answering…"):
        answer = step_answer(loaded, lab.id, step.id, overrides)
    if isinstance(answer, str):
        st.warning(plain(answer))
        return
    st.session_state.setdefault(SEEN, {}).setdefault(lab.id, {})[step.id] = answer
    with st.container(key=QUESTION_ANCHOR):  # the presenter tour's landing on a lab
        if role == "teacher":  # the question and its controls beside the class's votes, as a family page's panels
            left, right = st.columns([5, 7], gap="medium")
            with left:
                st.markdown("### " + plain(answer.question))
                _open_button(lab, step, loaded, overrides)
            klass.teacher_step(answer, VIEW, left, right)
            return
        question, open_view = st.columns([9, 3], vertical_alignment="top")
        question.markdown("### " + plain(answer.question))
        with open_view:
            _open_button(lab, step, loaded, overrides)
        _solo(answer, step)


def _open_button(lab: Lab, step: Step, loaded: LoadedModel, overrides: tuple) -> None:
    if st.button(
        "Open this view",
        key="lessons_open_view",
        icon=":material/open_in_new:",
        width="stretch",
        help=f"The {step.page} page with this step's settings; come back with 'Back to the lesson'",
    ):
        _open_view(lab, step, loaded, overrides)


def _open_view(lab: Lab, step: Step, loaded: LoadedModel, overrides: tuple) -> None:
    """Preset the step's view on its page, through that page's View (as the presenter tour does), and go."""
    view = views_by_url()[step.page]
    for key, value in step_state(loaded, lab.id, step.id, overrides).items():
        view.preset(key, copy.deepcopy(value))  # the cached state is shared by every session
    moves = st.session_state.get(MOVES, 0) + 1
    st.session_state[MOVES] = moves
    st.session_state[LESSON_LANDING] = (step.figure, 1_000_000 + moves)  # the tour's moves count from 0
    switch_to(step.page)


def _set_text(preset: str) -> None:
    """Callback of the text box: the learner's own text (checked as every page checks it), or the lab's."""
    text = clean_user_text(st.session_state.get(TEXT_BOX)).text
    st.session_state[TEXT] = None if text == preset else text


def _own_text(step: Step) -> None:
    preset = _preset_text(step)
    if preset is None:
        return
    st.session_state[TEXT_BOX] = st.session_state.get(TEXT) or preset
    with st.expander("Ask it about your own text (the model's answer follows)", expanded=bool(_overrides(step))):
        st.text_area(
            "Text",
            key=TEXT_BOX,
            max_chars=5000,
            on_change=guarded(_set_text),
            args=(preset,),
            help="Press Ctrl+Enter or click outside the box: the question and its answer are computed again.",
        )
        if _overrides(step):
            st.button(
                "Back to the lab's text",
                key="lessons_text_reset",
                on_click=lambda: st.session_state.update({TEXT: None}),
            )


def _solo(answer: Answer, step: Step) -> None:
    """A learner alone: commit an answer, then the reveal."""
    question = class_question(answer)
    given = st.session_state.get(GIVEN, {}).get(question.id)
    if given is None:
        key = f"lessons_answer_{question.id}"
        if answer.kind == CHOICE:
            st.radio("Your prediction", answer.choices, index=None, key=key)
        else:
            unit = f" (in {answer.unit})" if answer.unit else ""
            st.number_input(
                f"Your prediction{unit}", value=None, key=key, format="%g", step=1.0 if whole_number(answer) else 0.1
            )
        st.button(
            "Commit my answer",
            key="lessons_commit",
            icon=":material/check:",
            type="primary",
            on_click=guarded(_commit),
            args=(question, key),
        )
        return
    _reveal(answer, given)


def _commit(question, key: str) -> None:
    value = st.session_state.get(key)
    if value is None:
        raise InputError("Choose or type your prediction first.")
    st.session_state.setdefault(GIVEN, {})[question.id] = question.check(value)  # one sentence if it cannot be


def _reveal(answer: Answer, given: str) -> None:
    tolerance = tolerance_note(answer)
    if answer.accepts(given):
        st.success(plain(f"Right. You predicted {given}; the model's answer is {answer.shown}{tolerance}."))
    else:
        st.warning(plain(f"Not this time. You predicted {given}; the model's answer is {answer.shown}{tolerance}."))
    st.markdown(plain(answer.explanation))


def _step_buttons(lab: Lab, number: int) -> None:
    back, _gap, forward = st.columns([3, 6, 3])
    back.button(
        "Previous step",
        key="lessons_previous",
        icon=":material/arrow_back:",
        disabled=number == 1,
        on_click=guarded(_go),
        args=(number - 1, lab),
        width="stretch",
    )
    if number < len(lab.steps):
        forward.button(
            "Next step",
            key="lessons_next",
            icon=":material/arrow_forward:",
            type="primary",
            on_click=guarded(_go),
            args=(number + 1, lab),
            width="stretch",
        )
    else:
        forward.button(
            "Choose another lab",
            key="lessons_done",
            icon=":material/done_all:",
            width="stretch",
            on_click=lambda: st.session_state.update({LESSON_CHOOSING: True}),
        )


def _record_handout(lab: Lab) -> None:
    """Every step of the lab shown so far, in order, on the handout (the model's answers once revealed)."""
    seen = st.session_state.get(SEEN, {}).get(lab.id, {})
    given = st.session_state.get(GIVEN, {})
    for number, step in enumerate(lab.steps, start=1):
        answer = seen.get(step.id)
        if answer is not None:
            title = f"{lab.title}, step {number} of {len(lab.steps)}: {step.title}"
            VIEW.question(klass.handout_question(title, answer, given.get(class_question(answer).id)))
