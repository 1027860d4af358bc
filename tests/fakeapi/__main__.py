"""``PYTHONPATH=tests python -m fakeapi [--port N] [--script FILE]``: run the fake server on its own."""

from .server import main

main()
