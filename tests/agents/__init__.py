"""Tests for the agents: model clients and wires, the scripted model, the runtime."""
