"""``python -m dpg.cli``: the ``dpg`` command."""

from dpg.cli.main import main

main()
