"""The validation boundary: the typed shape of every object the EMR Serverless API returns, checked once
on arrival. Imports only ``exporter.common``."""
