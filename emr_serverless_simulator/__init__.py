"""A local EMR Serverless endpoint speaking the real REST-JSON wire protocol, sessions and job runs.

    store = build_scenario("demo")            # or Store(...) filled by hand
    with Simulator(store, port=0) as sim:
        boto3.client("emr-serverless", endpoint_url=sim.url, ...)
"""

from emr_serverless_simulator.errors import ApiError
from emr_serverless_simulator.faults import Fault
from emr_serverless_simulator.job_runs import FINAL_JOB_RUN_STATES, JOB_RUN_STATES, JobRunLifecycle
from emr_serverless_simulator.lifecycle import Lifecycle
from emr_serverless_simulator.scenarios import SCENARIOS, build_scenario
from emr_serverless_simulator.server import Simulator
from emr_serverless_simulator.store import JobRunView, SessionView, Store
from emr_serverless_simulator.throttle import AWS_QUOTAS, Throttle, TokenBucket

__all__ = [
    "AWS_QUOTAS",
    "FINAL_JOB_RUN_STATES",
    "JOB_RUN_STATES",
    "SCENARIOS",
    "ApiError",
    "Fault",
    "JobRunLifecycle",
    "JobRunView",
    "Lifecycle",
    "SessionView",
    "Simulator",
    "Store",
    "Throttle",
    "TokenBucket",
    "build_scenario",
]
