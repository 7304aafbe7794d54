"""Section 5.2 of the paper: learning Johnson-Lindenstrauss projections by derandomisation."""

__version__ = "2026.12"     # the code version a run records where no git checkout names the commit
