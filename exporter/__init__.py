"""Prometheus exporter for AWS EMR Serverless interactive sessions."""

__version__ = "0.1.0"
