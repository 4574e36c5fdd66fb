"""The sidebar's model and device pickers, and the model cache behind them."""

from __future__ import annotations

import logging

import streamlit as st

from explorer.catalogue import FamilyEntry, load_catalogue
from explorer.models.loading import LoadedModel, ModelLoadError, available_devices, default_device, load_model
from explorer.text import plain
from explorer.ui.links import publish_to_url, restore_from_url
from explorer.ui.memory import freeze_long_lived_objects

log = logging.getLogger(__name__)

OTHER = "Other Hugging Face id…"


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
    return st.sidebar.radio(
        "Device",
        devices,
        index=devices.index(default_device()),
        key="device",
        format_func=str.upper,
        horizontal=True,
        help="Models run on the GPU when one is present; switch to compare.",
    )


def custom_model_key(family_key: str) -> str:
    """State key of the typed model id; a shared link's ?model= restores it."""
    return f"{family_key}_model_custom"


def model_choice_key(family_key: str) -> str:
    """State key of the sidebar's model selectbox."""
    return f"{family_key}_model_choice"


def choose_model(family_key: str, model_id: str) -> None:
    """Select a catalogue model in the family's picker from a callback (it loads on the rerun)."""
    st.session_state[model_choice_key(family_key)] = model_id


def model_picker(family: FamilyEntry) -> str:
    """Sidebar choice of a catalogue model or any Hugging Face id; returns the id."""
    labels = {m.id: m.label for m in family.models}
    options = [m.id for m in family.models] + [OTHER]
    shared = restore_from_url("model", custom_model_key(family.key))
    if shared is not None:
        st.session_state[model_choice_key(family.key)] = shared if shared in options else OTHER
    choice = st.sidebar.selectbox(
        "Model",
        options,
        index=options.index(family.default),
        key=model_choice_key(family.key),
        format_func=lambda x: labels.get(x, x),
        help="Embedded models work offline; the others download from the Hugging Face Hub.",
    )
    if choice == OTHER:
        typed = st.sidebar.text_input(
            "Hugging Face id", key=custom_model_key(family.key), placeholder="e.g. gpt2", max_chars=200
        ).strip()
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
        with st.spinner(
            f"Loading {plain(model_id)} on {device.upper()}… (the first load of an embedded model converts it "
            "once; later loads take seconds)"
        ):
            loaded = cached_model(model_id, device, family_key)
    except ModelLoadError as error:
        log.info("model %s not loaded on %s: %s", model_id, device, error)  # the cause was logged by loading
        st.error(plain(error), icon="⚠️")
        previous = st.session_state.get(last_ok)
        if previous and previous != (model_id, device):
            st.info(plain(f"Still showing the previous model, {previous[0]}."))
            return cached_model(previous[0], previous[1], family_key)
        return None
    st.session_state[last_ok] = (model_id, device)
    describe_model(family, loaded)
    return loaded


def describe_model(family: FamilyEntry, loaded: LoadedModel) -> None:
    entry = family.find(loaded.model_id)
    params = sum(p.numel() for p in loaded.model.parameters())
    lines = [
        f"**{plain(loaded.model_id)}** · {loaded.arch.display} · {params / 1e6:.1f} M parameters · "
        f"{loaded.device.upper()}"
    ]
    if entry is not None and entry.trained_by:
        lines.append(f"Trained by: {entry.trained_by}. Source: {entry.source}. License: {entry.license}.")
    if entry is not None and entry.metrics:
        lines.append(f"Measured: {entry.metrics}")
    st.sidebar.caption("  \n".join(lines))
    if loaded.note:
        st.sidebar.warning(plain(loaded.note))
