"""Checking what a user typed before any model sees it (pure Python)."""

from __future__ import annotations

import re
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


# Every ASCII punctuation character may be backslash-escaped in CommonMark; escaping all of
# them also breaks GFM's bare-URL autolinks ("http\:\/\/…") and Streamlit's own ":red[…]",
# ":material/…:" and "$…$" syntax, so the text shows literally.
_MARKDOWN_ESCAPES = {ord(ch): "\\" + ch for ch in "\\`*_{}[]()<>#+-.!|:~$&=\"'/@%^;,?"}


# GFM links bare URLs and e-mail addresses after escapes are resolved ("https\:\/\/x" still becomes a
# link), so those patterns are broken with an invisible WORD JOINER (U+2060) instead.
_AUTOLINKS = re.compile(r"(?i)(https?|ftp|mailto|xmpp|www)(?=[:.])|(?<=\w)(?=@)")


def plain(text: object) -> str:
    """``text`` for a Markdown-rendering element (st.error, st.caption, st.markdown…), shown
    literally: no link, image, HTML, emphasis or Streamlit directive can come out of it (bare
    URLs and addresses get an invisible word joiner so they are not linked). Newlines become
    Markdown line breaks. Every message that quotes input goes through here."""
    unlinked = _AUTOLINKS.sub(lambda m: (m.group(1) or "") + "\u2060", str(text))
    escaped = unlinked.translate(_MARKDOWN_ESCAPES)
    return escaped.replace("\r\n", "\n").replace("\n", "  \n")


def code_span(text: object) -> str:
    """``text`` as a Markdown code span (monospace, shown literally): the fence is one backtick
    longer than the longest run of backticks inside, so the text cannot close it."""
    text = str(text).replace("\n", " ")
    runs = [len(part) for part in "".join("`" if ch == "`" else " " for ch in text).split()]
    fence = "`" * (max(runs, default=0) + 1)
    if not text.strip():
        return "` `"
    padded = text[0] in "` " or text[-1] in "` "  # CommonMark strips one space each side when both are there
    return f"{fence} {text} {fence}" if padded else f"{fence}{text}{fence}"
