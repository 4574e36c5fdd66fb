"""A view exported as a handout: one HTML file that opens offline and says what a student needs to
read its figures again later (the page's lead, the input, the model and its card line, the settings,
each figure with its caption and "how to read"), in the app's colours. Pure Python + Plotly."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import plotly.graph_objects as go
import plotly.io as pio
from markdown_it import MarkdownIt

# Streamlit's default theme, so the handout looks like the page it came from
PRIMARY, INK, MUTED, PANEL = "#FF4B4B", "#31333F", "#555867", "#F0F2F6"
_MARKDOWN = MarkdownIt("commonmark", {"html": False})  # raw HTML in a lead or a caption stays text


@dataclass(frozen=True)
class HandoutFigure:
    caption: str
    figure: go.Figure
    how_to_read: str | None = None


@dataclass(frozen=True)
class HandoutQuestion:
    """A lesson's question on the handout: as asked, with the learner's or the class's answers and, once
    revealed, the model's answer and why. Every string is shown as text (a question may quote typed text)."""

    title: str  # "Step 2 of 4: How sure is it?"
    question: str
    choices: tuple[str, ...] = ()
    model_answer: str = ""  # empty until the answer is revealed
    explanation: str = ""
    learner_answer: str = ""  # what a learner alone committed
    learner_right: bool | None = None
    class_votes: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()  # (round, ((answer, votes), ...))


@dataclass(frozen=True)
class Handout:
    title: str  # the page's headline
    lead: str = ""  # the page's intro (Markdown written by the project)
    model: str = ""  # the model id
    card: str = ""  # one line on where the model comes from (its catalogue entry)
    input_text: str | None = None  # what the student typed (escaped: never Markdown)
    settings: tuple[tuple[str, str], ...] = ()  # (name, value) in the order the page declares them
    figures: tuple[HandoutFigure, ...] = field(default_factory=tuple)
    link: str | None = None  # the view's shareable query string
    questions: tuple[HandoutQuestion, ...] = ()  # a lesson's questions, before its figures


def _markdown(text: str) -> str:
    return _MARKDOWN.render(text)


def handout_html(handout: Handout) -> str:
    """The handout as one HTML page; plotly.js is embedded once, so it opens offline."""
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{e(handout.title)}</title><style>",
        f"body{{font-family:'Source Sans Pro','Source Sans 3',Helvetica,Arial,sans-serif;color:{INK};",
        "max-width:1100px;margin:2rem auto;padding:0 1rem;line-height:1.5}",
        f"h1{{margin-bottom:.3rem}} h2{{border-bottom:3px solid {PRIMARY};padding-bottom:.2rem;margin-top:2rem}}",
        f".box{{background:{PANEL};border-radius:8px;padding:.8rem 1rem;margin:.6rem 0}}",
        f".caption{{color:{MUTED}}} .read{{border-left:4px solid {PRIMARY};padding-left:.8rem}}",
        "table{border-collapse:collapse} td{padding:.15rem .8rem .15rem 0} pre{white-space:pre-wrap;margin:0}",
        "</style></head><body>",
        f"<h1>{e(handout.title)}</h1>",
    ]
    if handout.lead:
        parts.append(f"<div class='lead'>{_markdown(handout.lead)}</div>")
    parts.append("<h2>What the model read</h2>")
    if handout.model:
        parts.append(
            f"<p><b>Model:</b> {e(handout.model)}" + (f" &middot; {e(handout.card)}" if handout.card else "") + "</p>"
        )
    if handout.input_text is not None:
        parts.append(f"<div class='box'><b>Input</b><pre>{e(handout.input_text)}</pre></div>")
    if handout.settings:
        rows = "".join(f"<tr><td>{e(name)}</td><td><b>{e(value)}</b></td></tr>" for name, value in handout.settings)
        parts.append(f"<p><b>Settings</b></p><table>{rows}</table>")
    if handout.link:
        parts.append(
            f"<p class='caption'>Open this view again: add <code>{e(handout.link)}</code> to the app's page "
            "address.</p>"
        )
    parts += [_question_html(item) for item in handout.questions]
    for index, item in enumerate(handout.figures):
        parts.append(f"<h2>Figure {index + 1}</h2>")
        parts.append(pio.to_html(item.figure, full_html=False, include_plotlyjs=index == 0))
        parts.append(f"<p class='caption'>{e(item.caption)}</p>")
        if item.how_to_read:
            parts.append(f"<div class='read'><b>How to read this</b>{_markdown(item.how_to_read)}</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _question_html(item: HandoutQuestion) -> str:
    e = html.escape
    parts = [f"<h2>{e(item.title)}</h2>", f"<p><b>{e(item.question)}</b></p>"]
    if item.choices:
        parts.append("<ul>" + "".join(f"<li>{e(c)}</li>" for c in item.choices) + "</ul>")
    if item.learner_answer:
        verdict = "" if item.learner_right is None else (" (right)" if item.learner_right else " (not the model's)")
        parts.append(f"<p><b>Your answer:</b> {e(item.learner_answer)}{verdict}</p>")
    for name, counts in item.class_votes:
        total = sum(n for _a, n in counts)
        rows = "".join(f"<tr><td>{e(a)}</td><td><b>{n}</b></td></tr>" for a, n in counts)
        parts.append(f"<p><b>The class, {e(name)}</b> ({total} votes)</p><table>{rows}</table>")
    if item.model_answer:
        parts.append(
            f"<div class='box'><b>The model's answer:</b> {e(item.model_answer)}<p>{e(item.explanation)}</p></div>"
        )
    else:
        parts.append("<p class='caption'>The model's answer was not revealed yet.</p>")
    return "\n".join(parts)
