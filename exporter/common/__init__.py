"""Foundations every stage may use: structured logs, redaction of secrets, the token bucket, and the
malloc arena limit. Imports nothing else of the exporter."""
