"""Section 5.2 of the paper: learning Johnson-Lindenstrauss projections by derandomisation."""
