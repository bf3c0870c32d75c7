"""The embedded runtime: `up` reads deploy/ and runs it as pods on three simulated nodes."""
