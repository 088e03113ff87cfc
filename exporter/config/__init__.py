"""The YAML configuration: its schema, the checks on every value, and the safe YAML file reader that the
web configuration shares. Imports ``exporter.common`` and ``exporter.model`` (the API's vocabularies)."""
