"""Section 4 of the paper: structure discovery in two-layer (and deeper) networks."""
