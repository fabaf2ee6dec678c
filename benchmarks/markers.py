"""Write a benchmark's rendered results between its markers in a document."""

from __future__ import annotations

from pathlib import Path


def write_between(
    path: Path, start: str, end: str, body: str, *, section: str | None = None
) -> bool:
    """Replace what stands between ``start`` and ``end`` in ``path`` with ``body``.

    Args:
        path: the Markdown document.
        start: the opening marker (an HTML comment).
        end: the closing marker.
        body: the new text between them.
        section: a heading to append, with the markers, when they are absent (None: leave
            the document as it is).

    Returns:
        Whether the document was written.
    """
    text = path.read_text(encoding="utf-8")
    block = f"{start}\n{body}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    elif section is not None:
        text = text.rstrip("\n") + f"\n\n{section}\n\n{block}\n"
    else:
        return False
    path.write_text(text, encoding="utf-8")
    return True
