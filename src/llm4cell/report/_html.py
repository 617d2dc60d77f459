"""The parts every llm4cell HTML report shares: the style sheet, the page frame, escaping
and PNG images embedded as base64 (so a report is one file that works offline)."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

__all__ = ["CSS", "PNG_DPI", "embed_png", "escape", "figure", "page", "png_bytes"]

#: Base style of every report; a report adds its own rules through :func:`page`.
CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.25em;margin-top:1.6em;
border-bottom:1px solid #ddd;padding-bottom:.2em}
.meta{color:#666} table{border-collapse:collapse;width:100%;font-size:.86em}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4} tr:nth-child(even) td{background:#fafafa}
.bar{display:inline-block;height:.7em;background:#4a90d9;vertical-align:middle}
.unknown{color:#b00} code{background:#f4f4f4;padding:1px 3px}
figure{margin:0;display:inline-block;vertical-align:top} img{max-width:100%}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.82em}
"""

#: Resolution of every figure drawn for a report.
PNG_DPI = 110


def escape(value: object) -> str:
    """``value`` as text safe inside HTML elements and attribute values."""
    return html.escape(str(value), quote=True)


def png_bytes(fig: Any, *, tight: bool = True) -> bytes:
    """A matplotlib figure as PNG bytes at :data:`PNG_DPI` (``tight``: trim the margins)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI, bbox_inches="tight" if tight else None)
    return buf.getvalue()


def embed_png(data: bytes) -> str:
    """PNG bytes as a ``data:`` URL for an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure(data: bytes, alt: str, *, caption: str | None = None) -> str:
    """A ``<figure>`` holding the PNG ``data`` inline, with an optional caption."""
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption is not None else ""
    return f'<figure><img alt="{escape(alt)}" src="{embed_png(data)}">{cap}</figure>'


def page(title: str, body: str, *, css: str = "") -> str:
    """A whole HTML document: ``title`` in the head, :data:`CSS` plus ``css``, ``body``."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f"<title>{escape(title)}</title><style>{CSS}{css}</style></head><body>\n"
        f"{body}</body></html>\n"
    )
