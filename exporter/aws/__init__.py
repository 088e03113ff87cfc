"""The EMR Serverless API as the exporter uses it: client construction, error codes, calls with retries
and paging, and the rate limits of each AWS quota. Imports ``config``, ``model`` and ``common``."""
