"""The View at the top of every page: one object that owns what each page used to wire by hand.

A page declares ``VIEW = View(...)`` once, with its state keys (the URL restore and the
presenter tour go through them, so a renamed key fails a test), then calls it: ``VIEW.page``
loads the model with the sidebar pickers and runs the body behind the error boundary;
``VIEW.text_input``, ``VIEW.figure`` and ``VIEW.export`` handle shared links, the figure list
and the offline HTML export. ``cached`` is the one cache for a page's computations: it keys a
LoadedModel by (model id, device), so wrappers take the model itself.

Figures live in ``st.session_state`` (this object is shared by every session and holds no state).
"""

from __future__ import annotations

import contextlib
import html
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import streamlit as st

from explorer.adapters.common import display_token
from explorer.catalogue import load_catalogue
from explorer.decoding import DepthReadout
from explorer.handout import Handout, HandoutFigure, HandoutQuestion, handout_html
from explorer.linkvalues import format_value, parse_value
from explorer.models.building import LoadedModel
from explorer.models.structure import architecture_graph
from explorer.plots.architecture import architecture_figure
from explorer.plots.common import classroom_style, fit_title
from explorer.plots.decoding import depth_lens
from explorer.registry import FAMILIES, Family
from explorer.text import CleanText, InputError, clean_user_text, plain
from explorer.ui import picker
from explorer.ui.boundary import guarded, run_safely, show_callback_failure
from explorer.ui.doors import experiments_button, lessons_button
from explorer.ui.links import URL_VALUE_LIMIT, preset, publish_to_url, restore_from_url, take_once

log = logging.getLogger(__name__)

PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
FIGURES = "_view_figures"  # session key: (caption, figure) of this run, for the export
QUESTIONS = "_view_questions"  # session key: a lesson's questions of this run, for the export
PANELS = "_view_panels"  # session key: this run's (side, main) containers of a two-panel page
HEADING = "_view_heading"  # session key: each View's (headline, intro), for the handout
ANOTHER_RUN = "_view_another_run"  # session key: set during a run that asks for the next (Play)


def _model_key(loaded: LoadedModel) -> tuple[str, str]:
    return loaded.model_id, loaded.device


def cached(max_entries: int):
    """``st.cache_resource`` for a page's computations, shared read-only by every session (the
    results are frozen traces and read-only arrays, so reruns share them instead of copying).
    A LoadedModel argument is keyed by (model id, device); arguments named ``_x`` are not keyed."""
    return st.cache_resource(max_entries=max_entries, show_spinner=False, hash_funcs={LoadedModel: _model_key})


@dataclass(frozen=True)
class View:
    """One page. ``keys`` maps each URL parameter the page shares to the state key it restores."""

    name: str  # the export's title ("Decoder-only view")
    family: Family | None = None
    text_key: str | None = None
    keys: dict[str, str] = field(default_factory=dict)
    # Settings drawn below the text: kept when a run does not draw them (an empty or too-short text stops
    # the page before them, and Streamlit forgets the state of a widget that a run does not draw)
    keep: tuple[str, ...] = ()
    # Settings a link carries, by state key: how the URL value is read (explorer/linkvalues.py). The View
    # restores them once per session and writes them back each run; the declared keys without one (text,
    # model, generated tokens) are read by their own code.
    settings: dict[str, str] = field(default_factory=dict)
    # URL parameters that belong to one person (a class's teacher key): never written into a handout's link
    private: tuple[str, ...] = ()

    @classmethod
    def of_family(
        cls, key: str, text_key: str, keep: tuple[str, ...] = (), settings: dict | None = None, **keys: str
    ) -> View:
        family = FAMILIES[key]
        declared = {"text": text_key, "model": picker.custom_model_key(key), **keys}
        settings = dict(settings or {})
        declared |= {state_key.split("_", 1)[1]: state_key for state_key in settings}
        return cls(f"{family.title} view", family, text_key, declared, tuple(keep) + tuple(settings), settings)

    # -- declared state --------------------------------------------------------------------
    def declares(self, state_key: str) -> bool:
        return state_key in self.keys.values()

    def param_of(self, state_key: str) -> str:
        return next(param for param, key in self.keys.items() if key == state_key)

    def preset(self, state_key: str, value) -> None:
        """Set a declared key from outside the page (the presenter tour); a stale URL loses."""
        if not self.declares(state_key):
            raise KeyError(f"{self.name} declares no state key {state_key!r} (it has {sorted(self.keys.values())})")
        preset(state_key, value)

    def _restore_settings(self) -> None:
        """Once per session: the settings a shared link carries, each checked (a bad one is ignored)."""
        for param, key in self.keys.items():
            spec = self.settings.get(key)
            raw = take_once(param, key) if spec else None
            if raw is None:
                continue
            try:
                st.session_state[key] = parse_value(spec, raw)
            except ValueError as refusal:
                log.info("a link's %s=%r ignored: %s", param, raw[:40], refusal)

    def publish_settings(self) -> None:
        """The settings in the URL, so that a copied link restores this exact view."""
        for param, key in self.keys.items():
            spec = self.settings.get(key)
            if spec and key in st.session_state and st.session_state[key] is not None:
                publish_to_url(**{param: format_value(spec, st.session_state[key])})

    @staticmethod
    def within(key: str, low, high) -> None:
        """Clamp a setting to a widget's range before the widget is drawn (a link or the previous
        text may have left it beyond a range that depends on the model or the text)."""
        value = st.session_state.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            st.session_state[key] = type(value)(min(max(value, low), high))

    # -- the page --------------------------------------------------------------------------
    def start(self) -> None:
        """A fresh figure list for the export, and the sentence of a control that failed just before."""
        show_callback_failure()
        st.session_state[FIGURES] = []
        st.session_state[QUESTIONS] = []
        st.session_state[PANELS] = None
        self._restore_settings()
        for key in (*self.keys.values(), *self.keep):
            if key in st.session_state:  # re-set: a widget this run does not draw keeps its value (Streamlit's way)
                st.session_state[key] = st.session_state[key]

    def page(
        self,
        headline: str,
        intro: str,
        body: Callable[[LoadedModel], None],
        choose_family: Callable[[], str] | None = None,
        lessons: str | None = None,
    ) -> None:
        """The page skeleton: title, the model from the sidebar, the body and (on a family's own page)
        the model's architecture each behind the error boundary, then the export. A page about any
        family (the experiments) passes ``choose_family``, which draws the choice and returns the
        family's key, and ``lessons``, whose labs its sidebar offers."""
        self.heading(headline, intro)
        self.start()
        family_key = self.family.key if choose_family is None else choose_family()
        loaded = picker.load_for_page(family_key)
        if loaded is None:
            return
        if choose_family is None:
            experiments_button(family_key)
        lessons_button(lessons or family_key)
        run_safely(lambda: body(loaded))
        if choose_family is None:
            run_safely(lambda: self.architecture(loaded))
        self.export()
        if st.session_state.pop(ANOTHER_RUN, False):  # Play: the next token once this one is on screen
            st.rerun()

    @staticmethod
    def another_run() -> None:
        """Ask for one more run of the page once this one has drawn everything (an animation's next frame)."""
        st.session_state[ANOTHER_RUN] = True

    def text_page(
        self,
        headline: str,
        intro: str,
        label: str,
        examples: list[str],
        body: Callable[[LoadedModel, str], None],
        example_notes: dict[str, str] | None = None,
    ) -> None:
        """A family page whose body reads the page's text area (opening on the first example); ``example_notes``
        say what each example shows (its button's help; "Where it fails…" marks it ⚠)."""

        def with_text(loaded: LoadedModel) -> None:
            with self.panels():
                cleaned = self.text_input(label, examples[0], examples, example_notes=example_notes)
            if cleaned is not None:
                body(loaded, cleaned.text)

        self.page(headline, intro, with_text)

    safely = staticmethod(run_safely)

    def heading(self, headline: str, intro: str) -> None:
        """The title, then the intro folded away: on a 1280x720 projector the page's first figure
        must show without scrolling, and a paragraph above it pushed it below the fold."""
        st.session_state.setdefault(HEADING, {})[self.name] = (headline, intro)
        st.title(headline)
        with st.expander("About this page", icon=":material/info:"):
            st.markdown(intro)

    # -- two panels: the input and its controls beside the page's main figure ------------------
    @staticmethod
    @contextlib.contextmanager
    def panels():
        """Open the page's two panels (input and controls left, main figure right, both above the
        fold on a projector); what runs inside draws in the left one. Later, ``side()`` and
        ``main()`` draw into them; everything else goes full width below."""
        side, main = st.columns([4, 8] if st.session_state.get("classroom_on") else [5, 7], gap="medium")
        st.session_state[PANELS] = (side, main)
        with side:
            yield

    @staticmethod
    def side():
        """Draw into the left panel (the input's controls); inline when the page has no panels."""
        panels = st.session_state.get(PANELS)
        return panels[0] if panels else contextlib.nullcontext()

    @staticmethod
    def main():
        """Draw into the right panel (the page's main figure); inline when the page has no panels."""
        panels = st.session_state.get(PANELS)
        return panels[1] if panels else contextlib.nullcontext()

    # -- inputs ----------------------------------------------------------------------------
    def text_input(
        self,
        label: str,
        default: str,
        examples: list[str],
        height: int = 76,
        example_notes: dict[str, str] | None = None,
    ) -> CleanText | None:
        """The page's text area with clickable examples; returns cleaned text, or None after showing why not."""
        key = self.text_key
        restore_from_url("text", key)
        if key not in st.session_state:
            st.session_state[key] = default
        cols = st.columns(2 if st.session_state.get(PANELS) else min(len(examples), 4))  # a panel is narrow
        for i, example in enumerate(examples):
            fails = (example_notes or {}).get(example, "").lower().startswith("where it fails")
            cols[i % len(cols)].button(
                ("⚠ " if fails else "") + (example if len(example) < 48 else example[:45] + "…"),
                key=f"{key}_example_{i}",
                on_click=guarded(_use_example),
                args=(key, example),
                help=f"{(example_notes or {}).get(example, '')}\n\nUse this example: {example}".strip(),
                width="stretch",
            )
        classroom_height = height + 34 if st.session_state.get("classroom_on") else height  # 24 px text: 2 lines
        raw = st.text_area(label, key=key, height=classroom_height, max_chars=20_000)
        if not publish_to_url(text=raw):
            st.caption(
                f"This text is longer than a link can carry ({URL_VALUE_LIMIT:,} characters): a copied link "
                "opens the page's example text instead."
            )
        try:
            cleaned = clean_user_text(raw)
        except InputError as error:
            st.warning(plain(error))
            return None
        notes(cleaned.notices)
        return cleaned

    # -- figures and export ----------------------------------------------------------------
    def figure(self, fig, key: str, caption: str, how_to_read: str | None = None) -> None:
        """A Plotly figure with its caption (and a 'How to read this' expander), kept for the export."""
        classroom = bool(st.session_state.get("classroom_on"))
        fig = classroom_style(fig) if classroom else fit_title(fig, chars=70, line_px=17)  # a fresh figure each run
        # Streamlit's theme would redraw every text grey (#808495, 3.7:1) at its own size: not in Classroom mode
        st.plotly_chart(fig, key=key, config=PLOTLY_CONFIG, width="stretch", theme=None if classroom else "streamlit")
        st.session_state.setdefault(FIGURES, []).append(HandoutFigure(caption, fig, how_to_read))
        st.caption(caption)
        if how_to_read:
            with st.expander("How to read this"):
                st.markdown(how_to_read)

    def depth_lens(self, readout: DepthReadout, tokenizer, title: str, key: str, caption: str, how_to_read: str):
        """A lens figure from what the head reads at every depth of one position."""
        self.figure(
            depth_lens(
                [display_token(tokenizer, int(i)) for i in readout.top_ids],
                readout.top_probs,
                display_token(tokenizer, readout.final_id),
                readout.final_probs,
                title,
            ),
            key=key,
            caption=caption,
            how_to_read=how_to_read,
        )

    def architecture(self, loaded: LoadedModel) -> None:
        """The loaded model's own structure as a diagram (in an expander: tall for deep models)."""
        with st.expander(f"Architecture of {plain(loaded.model_id)}, drawn from the loaded model", expanded=False):
            graph = _architecture(loaded)
            params = sum(d["params"] for _n, d in graph.nodes(data=True)) / 1e6
            self.figure(
                architecture_figure(
                    graph, f"{loaded.arch.display}: {graph.number_of_nodes()} parts, {params:,.1f} M parameters"
                ),
                key=f"architecture_{loaded.family}",
                caption=(
                    "Each dot is a part of the real model (size ~ its share of parameters); hover for parameter "
                    "counts and tensor shapes. Dotted orange lines: the decoder's cross-attention reading the "
                    "encoder's output."
                ),
            )

    @staticmethod
    def question(item: HandoutQuestion) -> None:
        """A lesson's question (with its answers) for this run's handout."""
        st.session_state.setdefault(QUESTIONS, []).append(item)

    def handout(self, family_key: str | None = None) -> Handout:
        """This run's view as a handout: the page's lead, input, model, settings, questions and figures.
        ``family_key``: the family whose model the handout names, on a page without one of its own."""
        headline, intro = st.session_state.get(HEADING, {}).get(self.name, (self.name, ""))
        model, card = "", ""
        family_key = self.family.key if self.family is not None else family_key
        if family_key is not None and st.session_state.get(f"{family_key}_last_loaded"):
            model = st.session_state[f"{family_key}_last_loaded"][0]
            entry = load_catalogue()[family_key].find(model)
            card = (
                "; ".join(
                    x for x in (entry.trained_by and f"trained by {entry.trained_by}", entry.source, entry.metrics) if x
                )
                if entry
                else ""
            )
        settings = tuple(
            (param.replace("_", " "), format_value(spec, st.session_state[key]))
            for param, key in self.keys.items()
            if (spec := self.settings.get(key)) and st.session_state.get(key) is not None
        )
        shared = [(k, v) for k, v in st.query_params.items() if k not in self.private]
        link = "?" + "&".join(f"{k}={v}" for k, v in shared) if shared else None
        return Handout(
            headline,
            intro,
            model,
            card,
            st.session_state.get(self.text_key) if self.text_key else None,
            settings,
            tuple(st.session_state.get(FIGURES, [])),
            link,
            tuple(st.session_state.get(QUESTIONS, [])),
        )

    def export(self, family_key: str | None = None) -> None:
        """A download of every figure (and a lesson's questions) of this view as one offline HTML file (built
        on click)."""
        self.publish_settings()
        handout = self.handout(family_key)
        title = self.name

        def build() -> str:  # runs on click, outside the script: a failure becomes a page that says so
            try:
                return handout_html(handout)
            except Exception as error:
                log.error("export of %s failed", title, exc_info=error)
                return f"<p>The export of this view failed ({html.escape(type(error).__name__)}); please try again.</p>"

        if handout.figures or handout.questions:
            st.download_button(
                "Download this view as a handout (HTML, works offline)",
                data=build,
                file_name=f"{title.lower().replace(' ', '-')}.html",
                mime="text/html",
                key="export_view",
                on_click="ignore",
                icon=":material/download:",
            )


def _use_example(key: str, text: str) -> None:
    st.session_state[key] = text


def notes(items) -> None:
    for item in items:
        st.info(plain(item))


@cached(max_entries=8)
def _architecture(loaded: LoadedModel):
    return architecture_graph(loaded.model, loaded.family)
