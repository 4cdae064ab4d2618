"""``python -m clockface``: the same as the ``clockface`` command."""

from clockface.cli import main

main()
