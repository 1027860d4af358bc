"""The IPython face: the extension, the ``%%mistral`` / ``%mistral`` magics, the cell flags and the
subcommands. Everything below it works without IPython."""
