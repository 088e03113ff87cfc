"""Every kind's metric table, in the order the exposition writes them: a new kind is its table module
(``exporter.metrics.sessions``) plus one entry here."""

from __future__ import annotations

from typing import Any

from exporter.metrics.families import KindTable
from exporter.metrics.job_runs import JOB_RUN_TABLE
from exporter.metrics.sessions import SESSION_TABLE

KIND_TABLES: tuple[KindTable[Any], ...] = (SESSION_TABLE, JOB_RUN_TABLE)
