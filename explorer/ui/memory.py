"""The app's memory and CPU in a class: computing slots per page run, freed C heap handed back
after each run, and long-lived objects kept out of the per-run garbage collection."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import threading

import streamlit as st

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
def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _malloc_trim():
    return getattr(_libc(), "malloc_trim", None)  # glibc only


# glibc's mallopt parameter: how many heaps ("arenas") threads may allocate from.
_M_ARENA_MAX = -8
MALLOC_ARENAS = 2


def limit_malloc_arenas() -> None:
    """At most MALLOC_ARENAS C heaps (glibc only; what MALLOC_ARENA_MAX=2 sets at start-up).
    glibc gives threads up to 8 heaps per core, and every session's script thread that computes
    at once fills its own, so freed memory piles up in several heaps instead of being reused: 20
    sessions at once took the app 0.11 GB higher with the default than with two (benchmarks)."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


limit_malloc_arenas()  # once, when the app first imports this module: before its script threads compute


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
