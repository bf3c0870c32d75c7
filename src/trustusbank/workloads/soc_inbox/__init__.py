"""The SOC's mailbox: an SMTP server that keeps every message, and a page and API to read them."""
