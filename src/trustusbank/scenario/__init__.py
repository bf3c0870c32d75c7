"""What the user runs: the walk-throughs and, later, the three acts."""
