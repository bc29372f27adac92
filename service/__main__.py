"""``python -m service``: the same as the ``backprop-serve`` command."""

from .cli import main

main()
