"""mock-attacker: the C2 receiver that should never see a customer's data."""
