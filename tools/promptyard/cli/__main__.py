"""`python -m promptyard.cli` runs the command line."""

from promptyard.cli.main import main

main()
