"""Widgets and caches every page shares. Only this package and app.py import streamlit."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import html
import logging
import threading
from collections.abc import Callable

import streamlit as st

from explorer.catalogue import FamilyEntry, load_catalogue
from explorer.models.loading import LoadedModel, ModelLoadError, available_devices, default_device, load_model
from explorer.text import CleanText, InputError, clean_user_text

log = logging.getLogger(__name__)

OTHER = "Other Hugging Face id…"
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


# Page runs that compute at once. Threads share one interpreter lock and each model runs one
# forward at a time, so more simultaneous runs add no speed, only memory (each holds its own
# traces and figures): 20 sessions at once took the app from 1.9 to 2.4 GiB without this.
PAGE_SLOTS = 4
_page_slots = threading.BoundedSemaphore(PAGE_SLOTS)


@contextlib.contextmanager
def page_slot():
    """Wait for one of PAGE_SLOTS computing slots (with a note when others hold them all)."""
    if not _page_slots.acquire(blocking=False):
        with st.spinner("Other visitors' views are being computed; yours comes next…"):
            _page_slots.acquire()
    try:
        yield
    finally:
        _page_slots.release()
        _return_freed_memory()


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def _return_freed_memory() -> None:
    """Hand the C heap's free pages back to the system after a run (glibc only): the
    temporaries of a forward pass otherwise stay counted in the app's resident memory."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def freeze_long_lived_objects() -> None:
    """Streamlit runs a full garbage collection after every script run; over the objects of
    torch, transformers, plotly and a loaded model that took ~0.4 s per interaction here.
    Objects that live as long as the process (modules, models) are moved out of the
    collector's sight once; what a script run creates is still collected."""
    gc.collect()
    gc.freeze()


@st.cache_resource(max_entries=6, show_spinner=False)
def cached_model(model_id: str, device: str, family: str) -> LoadedModel:
    """One instance per (model, device), shared read-only by every session and thread."""
    loaded = load_model(model_id, device=device, family=family)
    freeze_long_lived_objects()
    return loaded


def device_picker() -> str:
    devices = available_devices()
    if len(devices) == 1:
        st.sidebar.caption(f"Device: **{devices[0].upper()}** (no GPU found)")
        return devices[0]
    return st.sidebar.radio("Device", devices, index=devices.index(default_device()), key="device",
                            format_func=str.upper, horizontal=True,
                            help="Models run on the GPU when one is present; switch to compare.")


def restore_from_url(param: str, state_key: str) -> str | None:
    """Once per session: a shared link's query parameter becomes the widget's state.
    Returns the value restored (None when the link did not carry it)."""
    flag = f"_restored_{state_key}"
    if st.session_state.get(flag):
        return None
    st.session_state[flag] = True
    value = st.query_params.get(param)
    if value is not None:
        st.session_state[state_key] = value
    return value


URL_VALUE_LIMIT = 2000  # characters of one value a shared link carries; browsers and proxies cut long URLs


def publish_to_url(**values: str) -> bool:
    """Keep the URL in step with the state, so copying it shares this exact view. A value too
    long for a link is taken out of the URL (a stale one would restore another view); returns
    False when that happened."""
    fits = True
    for param, value in values.items():
        if value is None:
            continue
        if len(value) > URL_VALUE_LIMIT:
            fits = False
            if param in st.query_params:
                del st.query_params[param]
        elif st.query_params.get(param) != value:
            st.query_params[param] = value
    return fits


def model_picker(family: FamilyEntry) -> str:
    """Sidebar choice of a catalogue model or any Hugging Face id; returns the id."""
    labels = {m.id: m.label for m in family.models}
    options = [m.id for m in family.models] + [OTHER]
    shared = restore_from_url("model", f"{family.key}_model_custom")
    if shared is not None:
        st.session_state[f"{family.key}_model_choice"] = shared if shared in options else OTHER
    choice = st.sidebar.selectbox("Model", options, index=options.index(family.default), key=f"{family.key}_model_choice",
                                  format_func=lambda x: labels.get(x, x),
                                  help="Embedded models work offline; the others download from the Hugging Face Hub.")
    if choice == OTHER:
        typed = st.sidebar.text_input("Hugging Face id", key=f"{family.key}_model_custom", placeholder="e.g. gpt2",
                                      max_chars=200).strip()
        choice = typed or family.default
    publish_to_url(model=choice)
    return choice


def load_for_page(family_key: str) -> LoadedModel | None:
    """Sidebar pickers, then the model: with a spinner while it loads, and a clear error
    (falling back to the last model that worked on this page) when it cannot load."""
    family = load_catalogue()[family_key]
    model_id = model_picker(family)
    device = device_picker()
    last_ok = f"{family_key}_last_loaded"
    try:
        with st.spinner(f"Loading {model_id} on {device.upper()}… (the first load of an embedded model converts it once; later loads take seconds)"):
            loaded = cached_model(model_id, device, family_key)
    except ModelLoadError as error:
        log.warning("model %s could not load on %s", model_id, device, exc_info=error)
        st.error(str(error), icon="⚠️")
        previous = st.session_state.get(last_ok)
        if previous and previous != (model_id, device):
            st.info(f"Still showing the previous model, {previous[0]}.")
            return cached_model(previous[0], previous[1], family_key)
        return None
    st.session_state[last_ok] = (model_id, device)
    describe_model(family, loaded)
    return loaded


def describe_model(family: FamilyEntry, loaded: LoadedModel) -> None:
    entry = family.find(loaded.model_id)
    params = sum(p.numel() for p in loaded.model.parameters())
    lines = [f"**{html.escape(loaded.model_id)}** · {loaded.arch.display} · {params / 1e6:.1f} M parameters · {loaded.device.upper()}"]
    if entry is not None and entry.trained_by:
        lines.append(f"Trained by: {entry.trained_by}. Source: {entry.source}. License: {entry.license}.")
    if entry is not None and entry.metrics:
        lines.append(f"Measured: {entry.metrics}")
    st.sidebar.caption("  \n".join(lines))
    if loaded.note:
        st.sidebar.warning(loaded.note)


def text_input(key: str, label: str, default: str, examples: list[str], height: int = 90) -> CleanText | None:
    """A text area with clickable examples; returns cleaned text, or None after showing why not."""
    restore_from_url("text", key)
    if key not in st.session_state:
        st.session_state[key] = default

    def use_example(text: str) -> None:
        st.session_state[key] = text

    cols = st.columns(min(len(examples), 4))
    for i, example in enumerate(examples):
        cols[i % len(cols)].button(example if len(example) < 48 else example[:45] + "…", key=f"{key}_example_{i}",
                                   on_click=guarded(use_example), args=(example,), help=f"Use this example: {example}",
                                   width="stretch")
    raw = st.text_area(label, key=key, height=height, max_chars=20_000)
    if not publish_to_url(text=raw):
        st.caption(f"This text is longer than a link can carry ({URL_VALUE_LIMIT:,} characters): a copied link "
                   "opens the page's example text instead.")
    try:
        cleaned = clean_user_text(raw)
    except InputError as error:
        st.warning(str(error))
        return None
    for notice in cleaned.notices:
        st.info(notice)
    return cleaned


def show_figure(fig, key: str, caption: str, how_to_read: str | None = None) -> None:
    from explorer.plots.common import classroom_style

    if st.session_state.get("classroom_on"):
        fig = classroom_style(fig)
    st.plotly_chart(fig, key=key, config=PLOTLY_CONFIG, width="stretch")
    st.session_state.setdefault("_view_figures", []).append((caption, fig))
    st.caption(caption)
    if how_to_read:
        with st.expander("How to read this"):
            st.markdown(how_to_read)


CALLBACK_FAILURE = "_callback_failure"


def explain_failure(error: Exception) -> tuple[str, str]:
    """Log ``error`` with its traceback on the server; return (kind, one sentence) for the visitor,
    kind being 'warning' (the input) or 'error' (a model or the app)."""
    if isinstance(error, InputError):
        log.info("input refused: %s", error, exc_info=error)
        return "warning", str(error)
    if isinstance(error, ModelLoadError):
        log.warning("model failed to load: %s", error, exc_info=error)
        return "error", str(error)
    log.error("unexpected failure while computing a view", exc_info=error)
    detail = str(error).splitlines()[0][:200] if str(error) else "no details"
    return "error", (f"Something went wrong while computing this view ({type(error).__name__}: {detail}). "
                     "Try another input or model; the rest of the page and your settings are kept.")


def _show_failure(kind: str, message: str) -> None:
    (st.warning if kind == "warning" else st.error)(message)


def run_safely(action: Callable[[], None]) -> None:
    """Run a page body; unexpected errors become one readable message, never a traceback
    (which goes to the server log). Streamlit's rerun/stop signals are BaseExceptions and pass."""
    try:
        action()
    except Exception as error:  # last line of defence for the classroom
        _show_failure(*explain_failure(error))


def guarded(callback: Callable) -> Callable:
    """A widget callback that cannot take the page down: callbacks run before the script,
    outside every page's boundary, so a failure is logged and kept for show_callback_failure()."""

    @functools.wraps(callback)
    def run(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except Exception as error:
            st.session_state[CALLBACK_FAILURE] = explain_failure(error)

    return run


def show_callback_failure() -> None:
    """Show (once) the sentence of a callback that failed before this run."""
    failure = st.session_state.pop(CALLBACK_FAILURE, None)
    if failure is not None:
        _show_failure(*failure)


def notes(items) -> None:
    for item in items:
        st.info(item)


def show_depth_lens(probs, tokenizer, title: str, key: str, caption: str, how_to_read: str) -> None:
    """A lens figure from per-depth probabilities [L+1, V] of one position."""
    from explorer.adapters.common import display_token
    from explorer.plots.decoding import depth_lens

    final = int(probs[-1].argmax())
    show_figure(
        depth_lens([display_token(tokenizer, int(i)) for i in probs.argmax(-1)], probs.max(-1),
                   display_token(tokenizer, final), probs[:, final], title),
        key=key, caption=caption, how_to_read=how_to_read,
    )


@st.cache_resource(max_entries=8, show_spinner=False)
def _architecture(_loaded, model_id: str, device: str):
    from explorer.models.structure import architecture_graph

    return architecture_graph(_loaded.model, _loaded.family)


def show_architecture(loaded: LoadedModel) -> None:
    """The loaded model's own structure as a diagram (in an expander: tall for deep models)."""
    from explorer.plots.architecture import architecture_figure

    with st.expander(f"Architecture of {loaded.model_id}, drawn from the loaded model", expanded=False):
        graph = _architecture(loaded, loaded.model_id, loaded.device)
        show_figure(
            architecture_figure(graph, f"{loaded.arch.display}: {graph.number_of_nodes()} parts, "
                                       f"{sum(d['params'] for _n, d in graph.nodes(data=True)) / 1e6:,.1f} M parameters"),
            key=f"architecture_{loaded.family}",
            caption="Each dot is a part of the real model (size ~ its share of parameters); hover for parameter counts "
                    "and tensor shapes. Dotted orange lines: the decoder's cross-attention reading the encoder's output.",
        )


CLASSROOM_CSS = """<style>
html, body, [data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li { font-size: 1.3rem !important; }
h1 { font-size: 3rem !important; } [data-testid="stCaptionContainer"] { font-size: 1.1rem !important; color: #222 !important; }
</style>"""


def persistent_toggle(label: str, key: str, help: str) -> bool:
    """A sidebar toggle whose value survives page switches: widget state is dropped when
    the page changes, so the value also lives under a plain session key ('<key>_on')."""
    store = f"{key}_on"

    def remember() -> None:  # runs before the script, right after the user flips the switch
        st.session_state[store] = st.session_state[key]

    st.session_state[key] = st.session_state.get(store, False)
    st.sidebar.toggle(label, key=key, help=help, on_change=guarded(remember))
    return st.session_state.get(store, False)


def classroom_switch() -> None:
    """In app.py, before the page runs, so the switch is on every page."""
    if persistent_toggle("Classroom mode", "classroom", "Large fonts and high-contrast figures for a projector."):
        st.html(CLASSROOM_CSS)


def start_view() -> None:
    """Called at the top of every page: a fresh list of this view's figures (for the export), and
    the sentence of a control that failed just before this run."""
    show_callback_failure()
    st.session_state["_view_figures"] = []


def export_view(title: str) -> None:
    """A download of every figure of this view as one offline HTML file (built on click)."""
    from explorer.plots.common import standalone_html

    figures = list(st.session_state.get("_view_figures", []))

    def build() -> str:  # runs on click, outside the script: a failure becomes a page that says so
        try:
            return standalone_html(figures, title)
        except Exception as error:
            log.error("export of %s failed", title, exc_info=error)
            return f"<p>The export of this view failed ({html.escape(type(error).__name__)}); please try again.</p>"

    if figures:
        st.download_button("Download this view as HTML (works offline)", data=build,
                           file_name=f"{title.lower().replace(' ', '-')}.html", mime="text/html", key="export_view",
                           on_click="ignore", icon=":material/download:")
