"""Tables and documents for subcommand output: markdown for notebooks, aligned text for terminals."""

from __future__ import annotations

from collections.abc import Sequence

from .static import rich_bundle


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("\n", " ").replace("|", "\\|")


def table_bundle(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None) -> dict[str, str]:
    """A table as markdown (with its sanitized HTML) and as aligned ``text/plain``."""
    cells = [[_cell(v) for v in row] for row in rows]
    md = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    md += ["| " + " | ".join(row) + " |" for row in cells]
    widths = [max([len(h)] + [len(row[i].replace("\\|", "|")) for row in cells]) for i, h in enumerate(headers)]
    plain = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    plain.append("  ".join("-" * w for w in widths))
    plain += ["  ".join(c.replace("\\|", "|").ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    if title:
        md.insert(0, f"**{title}**\n")
        plain.insert(0, title)
    return rich_bundle("\n".join(md), "\n".join(plain))
