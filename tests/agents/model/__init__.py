"""The model wires, clients, factory and the scripted model's HTTP app."""
