"""``python -m hnlab`` runs the CLI."""

from hnlab.cli import main

main()
