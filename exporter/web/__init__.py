"""HTTP: the WSGI application, the hardened server, and the exporter-toolkit web configuration (TLS,
basic auth, headers, rate limit). Imports ``render`` and below."""
