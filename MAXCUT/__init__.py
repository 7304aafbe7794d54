"""Section 5.1 of the paper: derandomising Goemans-Williamson rounding for MAXCUT."""

__version__ = "2026.12"     # the code version a run records where no git checkout names the commit
