"""The command line: a click group and one module per command (parsing and printing only)."""
