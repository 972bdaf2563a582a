"""Renderers: they read the report model only, never analyse."""


def shown(text: str) -> str:
    """Control characters (escape sequences, BEL, CR, NUL) written as escapes: names and IOCs are
    the sample's words, and must not drive the analyst's terminal or spreadsheet."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
