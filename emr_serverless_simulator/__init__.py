"""A local EMR Serverless endpoint speaking the real REST-JSON wire protocol (SPEC section 6).

    store = build_scenario("demo")            # or Store(...) filled by hand
    with Simulator(store, port=0) as sim:
        boto3.client("emr-serverless", endpoint_url=sim.url, ...)
"""

from exporter.simulator.errors import ApiError
from exporter.simulator.faults import Fault
from exporter.simulator.lifecycle import Lifecycle
from exporter.simulator.scenarios import SCENARIOS, build_scenario
from exporter.simulator.server import Simulator
from exporter.simulator.store import SessionView, Store
from exporter.simulator.throttle import Throttle, TokenBucket

__all__ = [
    "SCENARIOS",
    "ApiError",
    "Fault",
    "Lifecycle",
    "SessionView",
    "Simulator",
    "Store",
    "Throttle",
    "TokenBucket",
    "build_scenario",
]
