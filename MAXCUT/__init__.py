"""Section 5.1 of the paper: derandomising Goemans-Williamson rounding for MAXCUT."""
