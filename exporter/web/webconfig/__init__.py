"""The web configuration of ``--web.config.file``: TLS, mutual TLS, basic auth, response headers and a
request rate limit.

The format and semantics are the Prometheus exporter-toolkit's (docs/web-configuration.md), which
node_exporter and every official exporter read and ``promtool check web-config`` checks. By
responsibility:

- ``schema``: reading and checking the file (every mistake is a ``WebConfigError``: one line naming
  the file and the key), into a ``WebConfig``;
- ``tls``: the TLS settings and the ``ssl.SSLContext`` made of them, the client SAN check;
- ``basic_auth``: ``Authorization: Basic`` against bcrypt hashes, with a bounded cache;
- ``watcher``: the configuration in force, read again when a file changed (a renewed certificate, a new
  password hash) without a restart, as exporter-toolkit does;
- ``files``: the one way its files are read, and ``WebConfigError``.

Where Python's ``ssl`` module cannot do what Go's crypto/tls does, the setting is refused with a
clear reason instead of being silently weakened: ``RequireAnyClientCert`` (Python cannot ask for a
certificate without verifying it) and more than one entry in ``curve_preferences``.
"""
