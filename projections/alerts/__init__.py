"""Alerts: deadline thresholds and findings, planned from the read models, kept in a
persistent outbox and delivered to webhooks, Kafka and Server-Sent Events.

See docs/alerts.md for the thresholds, the alert ids and the delivery guarantee.
"""
