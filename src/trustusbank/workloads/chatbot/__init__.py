"""The customer-facing chatbot: a chat page and an A2A proxy to the bank's agents."""
