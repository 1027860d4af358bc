"""Answers side by side: one column per answer, each rendered from markdown (sanitized)."""

from __future__ import annotations

from ..textsafe import strip_controls
from .html import escape_text, render_markdown


class SideBySide:
    """Displays as an HTML table with one column per answer; readable as text and markdown too."""

    def __init__(self, answers: dict[str, str]):
        self.answers = {str(title): str(text) for title, text in answers.items()}

    def _repr_html_(self) -> str:
        width = 100 // max(len(self.answers), 1)
        head = "".join(f'<th style="text-align:left;width:{width}%">{escape_text(t)}</th>' for t in self.answers)
        cells = "".join(
            f'<td style="vertical-align:top;text-align:left">{render_markdown(text)}</td>'
            for text in self.answers.values()
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody><tr>{cells}</tr></tbody></table>"

    def _repr_markdown_(self) -> str:
        return "\n\n".join(f"**{title}**\n\n{text}" for title, text in self.answers.items())

    def __repr__(self) -> str:  # what a terminal prints: no control sequences from the model
        return strip_controls("\n\n".join(f"== {title} ==\n{text}" for title, text in self.answers.items()))


def side_by_side(**answers: str) -> SideBySide:
    """Show answers next to each other: ``side_by_side(tutor=a, critic=b)``."""
    return SideBySide(answers)
