"""A provider-neutral conversation, and clients that speak it to real model APIs."""
