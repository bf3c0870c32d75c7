"""Images: what bytes a build is made of (its digest) and what tools it advertises."""
