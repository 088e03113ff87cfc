"""Prices of EMR Serverless resources, so that PromQL can turn billed use into money.

AWS prices vCPU-hours, GB-hours of memory and GB-hours of storage (ephemeral storage beyond the
20 GB each worker gets free), by region and architecture (X86_64, ARM64 "Graviton"). They change, and
contracts differ: they come from the configuration (``metrics.prices``), whose default is a dated
estimate for common regions (``exporter.config.schema.DEFAULT_PRICES``). ``exporter.metrics.families`` exposes them
per application (its target's region, its architecture) in the units of the usage counters.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.config.schema import PricesConfig

# An application without an architecture runs on AWS's default.
DEFAULT_ARCHITECTURE = "X86_64"


@dataclass(frozen=True)
class Price:
    """What an hour of one vCPU, one GB of memory and one GB of storage cost, as AWS prices them."""

    currency: str
    vcpu_hour: float
    memory_gb_hour: float
    storage_gb_hour: float


class PriceTable:
    """Prices by (region, architecture), from the configuration."""

    def __init__(self, config: PricesConfig) -> None:
        self._prices = {
            (entry.region, entry.architecture): Price(
                config.currency, entry.vcpu_hour, entry.memory_gb_hour, entry.storage_gb_hour
            )
            for entry in config.table
        }

    def get(self, region: str, architecture: str) -> Price | None:
        """The price for an application, or None where the table has none (no price series then)."""
        return self._prices.get((region, architecture or DEFAULT_ARCHITECTURE))
