"""Section 4 of the paper: structure discovery in two-layer (and deeper) networks."""

__version__ = "2026.12"     # the code version a run records where no git checkout names the commit
