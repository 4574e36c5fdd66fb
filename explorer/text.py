"""Checking what a user typed before any model sees it (pure Python)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# Characters beyond this are cut before tokenising: enough for any model here, and it keeps
# a pasted novel from costing a tokeniser pass of minutes.
MAX_INPUT_CHARS = 5000


class InputError(ValueError):
    """Input that cannot be traced; the message is shown to the user as is."""


@dataclass(frozen=True)
class CleanText:
    text: str
    notices: tuple[str, ...]


def clean_user_text(raw: str | None, max_chars: int = MAX_INPUT_CHARS) -> CleanText:
    """Normalise and bound the text; raise InputError with a readable reason if unusable.

    Control characters (other than newline and tab) are removed because tokenisers treat
    them inconsistently; text is NFC-normalised so that combining marks compose the same
    way for every model.
    """
    notices: list[str] = []
    text = raw or ""
    if len(text) > max_chars:
        notices.append(f"The text had {len(text):,} characters; only the first {max_chars:,} are used.")
        text = text[:max_chars]
    removed = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\t")
    if removed:
        text = "".join(ch for ch in text if not (unicodedata.category(ch) == "Cc" and ch not in "\n\t"))
        notices.append(f"{removed} control character(s) were removed.")
    text = unicodedata.normalize("NFC", text)
    if not text.strip():
        raise InputError("Please type some text: the input is empty.")
    return CleanText(text=text, notices=tuple(notices))
