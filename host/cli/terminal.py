"""Text on its way to a person's terminal: what a channel sent must not drive the terminal.

A title or a name may carry escape sequences (ESC, the 8-bit CSI, BEL...) that change the
window title, clear the screen, rewrite earlier lines or hide text; bidirectional overrides
reorder what is shown. They are shown as visible escapes instead (``\\x1b``), so staff see
that something odd was sent. Newlines and tabs are kept: the host's own output uses them.
"""

from __future__ import annotations

import re

_UNSAFE_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# JSON already escapes U+0000-U+001F; these pass through it raw with ensure_ascii=False
_UNSAFE_JSON = re.compile(r"[\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: str) -> str:
    """``text`` with every character that would drive the terminal shown as an escape."""
    return _UNSAFE_TEXT.sub(_visible, text) if _UNSAFE_TEXT.search(text) else text


def clean_json(text: str) -> str:
    """Encoded JSON with the characters JSON leaves raw written as ``\\u`` escapes (still JSON)."""
    return _UNSAFE_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text) if _UNSAFE_JSON.search(text) else text
