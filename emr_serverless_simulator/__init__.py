"""A local EMR Serverless endpoint speaking the real REST-JSON wire protocol (SPEC section 6).

    store = build_scenario("demo")            # or Store(...) filled by hand
    with Simulator(store, port=0) as sim:
        boto3.client("emr-serverless", endpoint_url=sim.url, ...)
"""

from emr_serverless_simulator.errors import ApiError
from emr_serverless_simulator.faults import Fault
from emr_serverless_simulator.lifecycle import Lifecycle
from emr_serverless_simulator.scenarios import SCENARIOS, build_scenario
from emr_serverless_simulator.server import Simulator
from emr_serverless_simulator.store import SessionView, Store
from emr_serverless_simulator.throttle import Throttle, TokenBucket

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
