"""``%%mistral`` and ``%mistral``: thin glue from a cell to a request, a renderer and a turn."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from ..cells import CellTracker
from ..config import MistralConfig
from ..errors import audience
from .cellflags import cell_parser
from .commands import subcommand_help

if TYPE_CHECKING:
    from ..session import Session


@magics_class
class MistralMagics(Magics, MistralConfig):
    """Ask a Mistral (or any OpenAI-compatible) chat model from a notebook cell."""

    def __init__(self, shell: Any = None, **kwargs: Any):
        super().__init__(shell=shell, **kwargs)
        self.cells = CellTracker(shell)  # fed by the shell's pre_run_cell event (see extension.load)
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        """This kernel's session, made on first use (loading the extension imports none of it)."""
        if self._session is None:
            from ..session import Session

            self._session = Session(self)
            self._session.replays.locate = self.notebook_file
        return self._session

    @property
    def has_session(self) -> bool:
        """Whether a cell or subcommand has used the session yet."""
        return self._session is not None

    def notebook_file(self) -> Path | None:
        """The notebook this kernel runs, as Jupyter Server or VS Code tells the kernel."""
        from ..replay import find_notebook

        namespace = self.shell.user_ns if self.shell is not None else {}
        return find_notebook(namespace, os.environ, Path.cwd())

    @no_var_expand
    @line_cell_magic
    def mistral(self, line: str, cell: str | None = None) -> None:
        with audience("notebook"):
            if cell is None:
                from ..render.select import publish
                from .commands import Commands

                Commands(self.session, publish, self.help_text(), self.cells.current()).run(line)
            else:
                from .cell import ask_cell

                ask_cell(self, line, cell)

    def show_local_banner(self) -> None:
        """Under the first answer after ``base_url=local`` started the local model server."""
        banner = self.session.local.take_banner()
        if banner is not None:
            print(banner)

    def help_text(self) -> str:
        return f"{cell_parser().format_help()}\n{subcommand_help()}"


MistralMagics.mistral.__doc__ = f"""Ask a Mistral chat model; each %%mistral cell is one turn of a conversation.

{cell_parser().format_help()}
{subcommand_help()}

Cell text: {{name}}, {{name.attr}} and {{name[key]}} are replaced by notebook variables (once);
anything else in braces stays as written; {{{{text}}}} gives a literal {{text}}; --raw turns it off.
Settings (later wins): defaults < MISTRAL_API_KEY, MISTRAL_BASE_URL, MISTRAL_MODEL
< %config MistralMagics.<name> / %mistral config name=value < the cell's flags.
"""
