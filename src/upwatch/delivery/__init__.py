"""Sending notifications: one attempt at a delivery (transports.py), and the sender
chore that claims due deliveries from the outbox (sender.py)."""
