"""`python -m promptyard` runs the command line."""

from promptyard.cli.main import main

main()
