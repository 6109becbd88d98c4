"""Text normalisation used to compare names typed by people (case, accents, spacing)."""

from __future__ import annotations

import unicodedata


def collapse_spaces(text: str) -> str:
    return " ".join(text.split())


def fold(text: str) -> str:
    """Case-, accent- and spacing-insensitive form: "  José  PÉREZ " → "jose perez"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return collapse_spaces("".join(ch for ch in decomposed if not unicodedata.combining(ch)))
