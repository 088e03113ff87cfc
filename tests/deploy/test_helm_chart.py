"""The Helm chart deploy/helm/emr-serverless-exporter: renders (helm_python, no helm binary), lints,
produces valid Kubernetes objects, and wires the exporter, its rules and its dashboard as documented.

Each values set is rendered once per module (the fixtures); the tests only inspect the results, except
the sharding test, which runs the exporter with the arguments the chart gives each pod."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from emr_serverless_simulator import Simulator, build_scenario
from exporter.config.schema import parse_config
from exporter.wiring import check_config
from tests.helpers.support import aws_env

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "deploy/helm/emr-serverless-exporter"
ALL_ON_VALUES_FILE = CHART_DIR / "ci/all-on-values.yaml"
RULES_FILE = ROOT / "deploy/prometheus/emr-serverless-exporter.rules.yaml"
DASHBOARD_FILE = ROOT / "deploy/grafana/emr-serverless-exporter.json"
RELEASE = "emr"
NAMESPACE = "monitoring"
KUBE_VERSION = "1.30"
CONFIG_DIR = "/etc/emr-serverless-exporter"
CONFIG_PATH = f"{CONFIG_DIR}/config.yaml"
WEB_CONFIG_DIR = "/etc/emr-serverless-exporter-web"
WEB_CONFIG = {
    "tls_server_config": {"cert_file": "tls.crt", "key_file": "tls.key"},
    "basic_auth_users": {"prometheus": "$2b$10$jaq83MwjOZAMm/L2N.gYoumpN7KVGQYdPj/0qlLSQu5m9C4PrTgz6"},
}
# HTTPS with basic auth, server certificate only: what most will run.
TLS_ON_VALUES: dict[str, Any] = {
    "webConfig": {"enabled": True, "content": WEB_CONFIG},
    "tls": {"enabled": True, "existingSecret": "exporter-tls"},
    "serviceMonitor": {
        "enabled": True,
        "tlsConfig": {"ca": {"secret": {"name": "exporter-tls", "key": "ca.crt"}}, "serverName": "emr"},
        "basicAuth": {"username": {"name": "scrape", "key": "username"},
                      "password": {"name": "scrape", "key": "password"}},
    },
}
OPERATOR_API = "monitoring.coreos.com/v1"
EXTRA_OBJECTS = "emr-serverless-exporter/templates/extra-objects.yaml"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
THREE_REPLICAS: dict[str, Any] = {"replicaCount": 3}

Manifests = list[dict[str, Any]]


class Rendered:
    """One render of the chart: the values, the raw template outputs and the parsed objects."""

    def __init__(self, chart: Any, values: dict[str, Any]) -> None:
        self.values = values
        self.merged = chart.merge_values(values)
        self.files: dict[str, str] = chart.render(values, name=RELEASE, namespace=NAMESPACE)
        self.sources: list[tuple[str, dict[str, Any]]] = [
            (path, doc)
            for path, text in self.files.items()
            if path.endswith((".yaml", ".yml"))
            for doc in yaml.safe_load_all(text)
            if doc
        ]
        self.objects: Manifests = [doc for _, doc in self.sources]
        # What the chart makes itself, without values.extraObjects.
        self.own_objects: Manifests = [doc for path, doc in self.sources if path != EXTRA_OBJECTS]
        self.notes = self.files["emr-serverless-exporter/templates/NOTES.txt"]

    def template(self, name: str) -> str:
        return self.files[f"emr-serverless-exporter/templates/{name}"]

    def of_kind(self, kind: str) -> Manifests:
        return [obj for obj in self.own_objects if obj["kind"] == kind]

    def one(self, kind: str, name_suffix: str = "") -> dict[str, Any]:
        found = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"].endswith(name_suffix)]
        if name_suffix == "" and kind == "ConfigMap":
            found = [obj for obj in found if "config.yaml" in obj.get("data", {})]
        assert len(found) == 1, f"expected one {kind}, got {[obj['metadata']['name'] for obj in found]}"
        return found[0]

    @property
    def workload(self) -> dict[str, Any]:
        """The Deployment (one pod) or the StatefulSet (sharding): never both."""
        found = self.of_kind("Deployment") + self.of_kind("StatefulSet")
        assert len(found) == 1, f"expected one Deployment or StatefulSet, got {[obj['kind'] for obj in found]}"
        return found[0]

    @property
    def pod_template(self) -> dict[str, Any]:
        template: dict[str, Any] = self.workload["spec"]["template"]
        return template

    @property
    def pod_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.pod_template["spec"]
        return spec

    @property
    def container(self) -> dict[str, Any]:
        """The exporter's container (values.extraContainers may add others)."""
        containers = self.pod_spec["containers"]
        assert containers[0]["name"] == "exporter"
        assert [c["name"] for c in containers[1:]] == [c["name"] for c in self.merged["extraContainers"]]
        container: dict[str, Any] = containers[0]
        return container


def value_keys(values: dict[str, Any], prefix: str = "", depth: int = 1) -> set[str]:
    """Keys down to the second level; a non-empty map below that is one key (the README's rule)."""
    keys: set[str] = set()
    for key, value in values.items():
        if isinstance(value, dict) and value and depth < 2:
            keys |= value_keys(value, f"{prefix}{key}.", depth + 1)
        else:
            keys.add(prefix + key)
    return keys


@pytest.fixture(scope="module")
def chart() -> Any:
    with helm_python.Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def all_on_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(ALL_ON_VALUES_FILE.read_text())
    return values


@pytest.fixture(scope="module")
def default(chart: Any) -> Rendered:
    return Rendered(chart, {})


@pytest.fixture(scope="module")
def all_on(chart: Any, all_on_values: dict[str, Any]) -> Rendered:
    return Rendered(chart, all_on_values)


@pytest.fixture(scope="module")
def tls_on(chart: Any) -> Rendered:
    return Rendered(chart, TLS_ON_VALUES)


@pytest.fixture(scope="module")
def three_replicas(chart: Any) -> Rendered:
    return Rendered(chart, THREE_REPLICAS)


@pytest.fixture(scope="module", params=["default", "all_on", "tls_on", "three_replicas"])
def rendered(request: pytest.FixtureRequest) -> Rendered:
    result: Rendered = request.getfixturevalue(request.param)
    return result


# --- the chart as a whole ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values_file", [None, ALL_ON_VALUES_FILE, "tls_on", "three_replicas"],
    ids=["default", "all_on", "tls_on", "three_replicas"],
)
def test_lint_is_clean(values_file: Path | str | None) -> None:
    if values_file == "tls_on":
        values = TLS_ON_VALUES
    elif values_file == "three_replicas":
        values = THREE_REPLICAS
    else:
        values = yaml.safe_load(values_file.read_text()) if isinstance(values_file, Path) else {}
    report = helm_python.lint(CHART_DIR, values, strict=True, kube_version=f"v{KUBE_VERSION}.0")
    assert report["errors"] == []
    # Severity 1 is informational ("icon is recommended"); warnings and errors are not accepted.
    assert [msg for msg in report["messages"] if msg["severity"] >= 2] == []


def test_chart_metadata(chart: Any) -> None:
    assert chart.metadata["apiVersion"] == "v2"
    assert chart.name == "emr-serverless-exporter"
    assert chart.metadata["appVersion"]


def test_values_schema_accepts_the_defaults_and_all_options(chart: Any, all_on_values: dict[str, Any]) -> None:
    chart.validate_schema({})
    chart.validate_schema(all_on_values)
    chart.validate_schema(TLS_ON_VALUES)
    chart.validate_schema(THREE_REPLICAS)


@pytest.mark.parametrize(
    "values",
    [
        {"log": {"level": "verbose"}},
        {"log": {"format": "text"}},
        {"serviceAccount": {"roleArn": "my-role"}},
        {"serviceMonitr": {"enabled": True}},
        {"service": {"port": "http"}},
        {"serviceMonitor": {"interval": "every minute"}},
        {"extraArgs": ["config.file=x"]},
        {"webConfig": {"enabled": "yes"}},
        {"webConfig": {"file": "web.yml"}},
        {"tls": {"existingSecret": 5}},
        {"serviceMonitor": {"basicAuth": {"user": "x"}}},
        {"replicaCount": "3"},
        {"sharding": {"enabled": "yes"}},
        {"sharding": {"shards": 3}},
        {"region": "Frankfurt"},
        {"region": ["us-east-1"]},
        {"image": {"digest": "latest"}},
        {"image": {"registry": "https://ghcr.io"}},
        {"commonLabels": {"tier": 1}},
        {"envFrom": [{"configMap": {"name": "x"}}]},
        {"extraContainers": [{"image": "busybox"}]},
        {"initContainers": "busybox"},
        {"topologySpreadConstraints": [{"maxSkew": 1}]},
        {"podDisruptionBudget": {"minAvailable": "half"}},
        {"podDisruptionBudget": {"maxUnavailable": -1}},
        {"podDisruptionBudget": {"unhealthyPodEvictionPolicy": "Never"}},
        {"networkPolicy": {"ingress": []}},
        {"networkPolicy": {"allowAllEgress": "true"}},
        {"serviceMonitor": {"honorLabels": "true"}},
        {"serviceMonitor": {"sampleLimit": -1}},
        {"prometheusRule": {"runbookUrl": "runbooks.example.com"}},
        {"prometheusRule": {"additionalRuleLabels": {"page": True}}},
        {"prometheusRule": {"alerts": {"EMRServerlessTargetDown": {"for": "10 minutes"}}}},
        {"prometheusRule": {"alerts": {"EMRServerlessTargetDown": {"threshold": "high"}}}},
        {"prometheusRule": {"alerts": {"EMRServerlessTargetDown": {"disabled": True}}}},
        {"prometheusRule": {"alerts": {"EMRServerlessTargetDown": False}}},
        {"prometheusRule": {"sampleLimitShare": 1.5}},
        {"prometheusRule": {"sampleLimitShare": 0}},
        {"config": {"metrics": {"allowlist": ["emr_serverless_job_run_state"], "denylist": ["emr_serverless_up"]}}},
        {"config": {"metrics": {"denylist": "emr_serverless_job_run_state"}}},
        {"config": {"discovery": {"max_terminated_job_runs_per_application": -1}}},
        {"config": {"discovery": {"max_terminated_sessions_per_application": "100"}}},
        {"extraObjects": [5]},
    ],
    ids=lambda values: json.dumps(values),
)
def test_values_schema_rejects_mistakes(chart: Any, values: dict[str, Any]) -> None:
    with pytest.raises(helm_python.HelmValuesError):
        chart.validate_schema(values)


def test_all_on_values_set_every_value(all_on_values: dict[str, Any]) -> None:
    # So that "all options on" keeps covering new values. The security contexts keep their
    # hardened defaults on purpose.
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    set_keys = value_keys(all_on_values)
    missing = {
        key
        for key in value_keys(defaults)
        if not key.startswith(("securityContext", "podSecurityContext"))
        and not any(other == key or other.startswith(f"{key}.") for other in set_keys)
    }
    assert not missing, f"ci/all-on-values.yaml does not set {sorted(missing)}"


def test_readme_lists_every_value() -> None:
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    readme = (CHART_DIR / "README.md").read_text()
    table = readme[readme.index("## Values") :]
    documented = re.findall(r"^\| `([^`]+)` \|", table, flags=re.MULTILINE)
    assert len(documented) == len(set(documented)), "a value is listed twice"
    assert set(documented) == value_keys(defaults)


def test_default_objects(default: Rendered) -> None:
    kinds = sorted(obj["kind"] for obj in default.objects)
    assert kinds == ["ConfigMap", "Deployment", "Service", "ServiceAccount"]


def test_all_on_objects(all_on: Rendered) -> None:
    kinds = sorted(obj["kind"] for obj in all_on.own_objects)
    assert kinds == [
        "ConfigMap",
        "ConfigMap",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "PrometheusRule",
        "Secret",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
        "StatefulSet",
    ]
    assert sorted(obj["kind"] for _, obj in all_on.sources if _ == EXTRA_OBJECTS) == ["ConfigMap", "Secret"]


def test_objects_are_valid_kubernetes(rendered: Rendered) -> None:
    for obj in rendered.objects:
        if obj["apiVersion"] == OPERATOR_API:
            continue  # CRDs: not in kubernetes_validate's schemas, checked structurally below
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    for obj in rendered.own_objects:
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert rendered.merged["commonLabels"].items() <= obj["metadata"]["labels"].items()


def test_notes(rendered: Rendered) -> None:
    assert rendered.pod_spec["serviceAccountName"] in rendered.notes


# --- the exporter's pod --------------------------------------------------------------------------------


def test_security_context(rendered: Rendered) -> None:
    pod = rendered.pod_spec["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == 65532
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    container = rendered.container["securityContext"]
    assert container["runAsNonRoot"] is True
    assert container["runAsUser"] == 65532
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
    assert "add" not in container["capabilities"]
    assert container["seccompProfile"] == {"type": "RuntimeDefault"}


def test_probes(rendered: Rendered) -> None:
    container = rendered.container
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http-metrics": 9865}
    # The probes need no credentials (/healthz and /readyz are never behind basic auth); with TLS they
    # speak HTTPS, and with required client certificates, which the kubelet lacks, they check TCP.
    tls = rendered.merged["tls"]
    scheme = "HTTPS" if tls["enabled"] else "HTTP"
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        if tls["clientCertificates"]:
            assert container[probe]["tcpSocket"] == {"port": "http-metrics"} and "httpGet" not in container[probe]
        else:
            assert container[probe]["httpGet"] == {"path": path, "port": "http-metrics", "scheme": scheme}
            assert "httpHeaders" not in container[probe]["httpGet"]
    for probe in ("livenessProbe", "readinessProbe"):
        for key, value in rendered.merged[probe].items():
            assert container[probe][key] == value


def test_args(rendered: Rendered) -> None:
    args = rendered.container["args"]
    assert f"--config.file={CONFIG_PATH}" in args
    assert f"--log.level={rendered.merged['log']['level']}" in args
    assert f"--log.format={rendered.merged['log']['format']}" in args
    assert "--web.listen-address=:9865" in args
    web_config_args = [arg for arg in args if arg.startswith("--web.config.file")]
    if rendered.merged["webConfig"]["enabled"]:
        assert web_config_args == [f"--web.config.file={WEB_CONFIG_DIR}/web.yml"]
    else:
        assert web_config_args == []
    extra = rendered.merged["extraArgs"]
    if extra:
        assert args[-len(extra) :] == extra


def test_all_on_pod_options(all_on: Rendered, all_on_values: dict[str, Any]) -> None:
    pod, container = all_on.pod_spec, all_on.container
    assert all_on.workload["spec"]["replicas"] == all_on_values["replicaCount"]
    image = all_on_values["image"]
    # With a digest the image is pulled by digest; the tag is ignored.
    assert container["image"] == f"{image['registry']}/{image['repository']}@{image['digest']}"
    assert container["imagePullPolicy"] == all_on_values["image"]["pullPolicy"]
    # region first, then the shard's index, then values.env in its order.
    names = [entry["name"] for entry in container["env"]]
    assert names == ["AWS_REGION", "AWS_DEFAULT_REGION", "SHARD", *(entry["name"] for entry in all_on_values["env"])]
    assert container["env"][-len(all_on_values["env"]) :] == all_on_values["env"]
    assert container["envFrom"] == all_on_values["envFrom"]
    assert pod["containers"][1:] == all_on_values["extraContainers"]
    assert pod["initContainers"] == all_on_values["initContainers"]
    assert container["resources"] == all_on_values["resources"]
    assert pod["nodeSelector"] == all_on_values["nodeSelector"]
    assert pod["tolerations"] == all_on_values["tolerations"]
    assert pod["affinity"] == all_on_values["affinity"]
    assert pod["imagePullSecrets"] == all_on_values["imagePullSecrets"]
    assert pod["priorityClassName"] == all_on_values["priorityClassName"]
    for mount in all_on_values["extraVolumeMounts"]:
        assert mount in container["volumeMounts"]
    for volume in all_on_values["extraVolumes"]:
        assert volume in pod["volumes"]
    template = all_on.pod_template["metadata"]
    assert all_on_values["podAnnotations"].items() <= template["annotations"].items()
    assert all_on_values["podLabels"].items() <= template["labels"].items()
    assert all_on_values["commonLabels"].items() <= template["labels"].items()


def test_default_image_is_the_app_version(chart: Any, default: Rendered) -> None:
    assert default.container["image"].endswith(f":{chart.metadata['appVersion']}")


# --- configuration -------------------------------------------------------------------------------------


def test_config_map_holds_values_config(rendered: Rendered) -> None:
    config_map = rendered.one("ConfigMap")
    assert yaml.safe_load(config_map["data"]["config.yaml"]) == rendered.merged["config"]


def test_the_config_map_is_a_configuration_the_exporter_accepts(rendered: Rendered) -> None:
    config = parse_config(rendered.one("ConfigMap")["data"]["config.yaml"])
    check_config(config)  # metrics.denylist names families that exist


def test_config_is_mounted_where_the_args_point(rendered: Rendered) -> None:
    config_map = rendered.one("ConfigMap")
    mounts = {mount["mountPath"]: mount for mount in rendered.container["volumeMounts"]}
    mount = mounts[CONFIG_DIR]
    volumes = {volume["name"]: volume for volume in rendered.pod_spec["volumes"]}
    assert volumes[mount["name"]]["configMap"]["name"] == config_map["metadata"]["name"]
    assert mount.get("readOnly") is True
    # A read-only root filesystem: /tmp is the one writable place.
    assert volumes[mounts["/tmp"]["name"]].get("emptyDir") is not None


def test_config_checksum_is_the_config_map_hash(rendered: Rendered) -> None:
    annotations = rendered.pod_template["metadata"]["annotations"]
    expected = hashlib.sha256(rendered.template("configmap.yaml").encode()).hexdigest()
    assert annotations["checksum/config"] == expected


def test_config_checksum_changes_with_the_config(chart: Any, default: Rendered) -> None:
    changed = Rendered(chart, {"config": {"discovery": {"terminated_session_max_age_seconds": 60}}})

    def checksum(rendered: Rendered) -> str:
        value: str = rendered.pod_template["metadata"]["annotations"]["checksum/config"]
        return value

    assert checksum(changed) != checksum(default)
    assert yaml.safe_load(changed.one("ConfigMap")["data"]["config.yaml"]) == {
        "discovery": {"terminated_session_max_age_seconds": 60}
    }


# --- AWS identity --------------------------------------------------------------------------------------


def test_irsa_annotation_when_a_role_is_set(all_on: Rendered, all_on_values: dict[str, Any]) -> None:
    account = all_on.one("ServiceAccount")
    annotations = account["metadata"]["annotations"]
    assert annotations["eks.amazonaws.com/role-arn"] == all_on_values["serviceAccount"]["roleArn"]
    assert all_on_values["serviceAccount"]["annotations"].items() <= annotations.items()
    assert account["metadata"]["name"] == all_on_values["serviceAccount"]["name"]
    assert all_on.pod_spec["serviceAccountName"] == all_on_values["serviceAccount"]["name"]


def test_no_irsa_annotation_by_default(default: Rendered) -> None:
    account = default.one("ServiceAccount")
    assert "annotations" not in account["metadata"]
    # Pod Identity: the association names this ServiceAccount, the pod runs as it.
    assert default.pod_spec["serviceAccountName"] == account["metadata"]["name"]
    assert account["automountServiceAccountToken"] is False
    assert default.pod_spec["automountServiceAccountToken"] is False


# --- Service, ServiceMonitor, PrometheusRule, dashboard --------------------------------------------------


def test_service_selects_the_pods(rendered: Rendered) -> None:
    service = rendered.one("Service")
    pod_labels = rendered.pod_template["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert rendered.workload["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert service["spec"]["ports"] == [
        {"name": "http-metrics", "port": 9865, "targetPort": "http-metrics", "protocol": "TCP"}
    ]


def test_service_monitor(all_on: Rendered, all_on_values: dict[str, Any]) -> None:
    monitor = all_on.one("ServiceMonitor")
    service = all_on.one("Service")
    assert monitor["apiVersion"] == OPERATOR_API
    assert monitor["metadata"]["namespace"] == all_on_values["serviceMonitor"]["namespace"]
    assert all_on_values["serviceMonitor"]["labels"].items() <= monitor["metadata"]["labels"].items()
    spec = monitor["spec"]
    assert set(spec) <= {"jobLabel", "namespaceSelector", "selector", "endpoints", "sampleLimit"}
    assert spec["sampleLimit"] == all_on_values["serviceMonitor"]["sampleLimit"]
    assert spec["endpoints"][0]["honorLabels"] is True
    assert spec["endpoints"][0]["scheme"] == "https"
    assert spec["endpoints"][0]["tlsConfig"] == all_on_values["serviceMonitor"]["tlsConfig"]
    assert spec["endpoints"][0]["basicAuth"] == all_on_values["serviceMonitor"]["basicAuth"]
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert spec["namespaceSelector"] == {"matchNames": [service["metadata"]["namespace"]]}
    port_names = {port["name"] for port in service["spec"]["ports"]}
    assert len(spec["endpoints"]) == 1
    endpoint = spec["endpoints"][0]
    assert endpoint["port"] in port_names
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == all_on_values["serviceMonitor"]["interval"]
    assert endpoint["scrapeTimeout"] == all_on_values["serviceMonitor"]["scrapeTimeout"]
    assert endpoint["relabelings"] == all_on_values["serviceMonitor"]["relabelings"]
    assert endpoint["metricRelabelings"] == all_on_values["serviceMonitor"]["metricRelabelings"]


def test_service_monitor_job_matches_the_exporter_alerts(all_on: Rendered) -> None:
    # The job is the value of the Service label named by jobLabel; it must match the job matcher of
    # the rules about the exporter itself, even with nameOverride set (as in the all-on values).
    job = all_on.one("Service")["metadata"]["labels"][all_on.one("ServiceMonitor")["spec"]["jobLabel"]]
    matchers = set(re.findall(r'up\{job=~"([^"]+)"\}', RULES_FILE.read_text()))
    assert matchers, "no alert on the exporter's own up series"
    for matcher in matchers:
        assert re.fullmatch(matcher, job), f"job {job!r} does not match {matcher!r}"


def test_prometheus_rule_carries_the_rules_file(chart: Any) -> None:
    # Without alert options the PrometheusRule is the rules file as it is.
    rule = Rendered(chart, {"prometheusRule": {"enabled": True}}).one("PrometheusRule")
    assert rule["apiVersion"] == OPERATOR_API
    assert set(rule["spec"]) == {"groups"}
    assert rule["spec"]["groups"] == yaml.safe_load(RULES_FILE.read_text())["groups"]


# The threshold an alert option replaces: the one number the expression compares with (as the template).
COMPARISON = re.compile(r"(==|!=|>=|<=|>|<)(\s*)-?[0-9][0-9.eE+-]*")


def rules_by_name(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {rule.get("alert") or rule["record"]: rule for group in groups for rule in group["rules"]}


def test_prometheus_rule_applies_the_alert_options(all_on: Rendered, all_on_values: dict[str, Any]) -> None:
    options = all_on_values["prometheusRule"]
    rule = all_on.one("PrometheusRule")
    assert rule["metadata"]["namespace"] == options["namespace"]
    assert options["labels"].items() <= rule["metadata"]["labels"].items()
    original = rules_by_name(yaml.safe_load(RULES_FILE.read_text())["groups"])
    edited = rules_by_name(rule["spec"]["groups"])
    disabled = {name for name, alert in options["alerts"].items() if alert.get("enabled") is False}
    assert disabled and set(edited) == set(original) - disabled
    for name, got in edited.items():
        want = dict(original[name])
        if "record" in want:
            assert got == want, f"recording rule {name} changed"
            continue
        alert = options["alerts"].get(name, {})
        if name == "EMRServerlessListingBehind":  # no threshold set: the chart's, 12 collections of 2 minutes
            assert "threshold" not in alert and options["listingBehindCollections"] == 12
            alert = {**alert, "threshold": 1440}
        if name == "EMRServerlessExporterNearSampleLimit":  # no threshold set: 0.75 of the sample limit, 200000
            assert "threshold" not in alert and options["sampleLimitShare"] == 0.75
            alert = {**alert, "threshold": 150000}
        if "expr" in alert:
            want["expr"] = alert["expr"]
        if "threshold" in alert:
            assert len(COMPARISON.findall(want["expr"])) == 1
            want["expr"] = COMPARISON.sub(rf"\g<1>\g<2>{alert['threshold']}", want["expr"])
        if "for" in alert:
            want["for"] = alert["for"]
        want["labels"] = {**want.get("labels", {}), **options["additionalRuleLabels"],
                          **({"severity": alert["severity"]} if "severity" in alert else {}),
                          **alert.get("labels", {})}
        want["annotations"] = {**want.get("annotations", {}),
                               "runbook_url": options["runbookUrl"] + name.lower(),
                               **alert.get("annotations", {})}
        assert got == want, name
    high = edited["EMRServerlessApplicationHighVCPU"]
    assert re.search(r"> 128\s*$", high["expr"]) and high["for"] == "1h" and high["labels"]["severity"] == "critical"
    assert edited["EMRServerlessSessionFailed"]["annotations"]["runbook_url"].startswith("https://wiki.example.com/")


def test_the_edited_rules_pass_promtool(all_on: Rendered, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": all_on.one("PrometheusRule")["spec"]["groups"]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("values", "threshold"),
    [
        ({}, "600"),  # 10 scrapes of 60 s: the rules file's own number
        ({"serviceMonitor": {"interval": "1m30s"}}, "900"),
        ({"serviceMonitor": {"interval": "15s"}, "prometheusRule": {"listingBehindCollections": 20}}, "300"),
        ({"config": {"collection": {"min_interval_seconds": 120}}}, "1200"),  # scrapes share collections
        ({"config": {"collection": {"interval_seconds": 300}}, "serviceMonitor": {"interval": "15s"}}, "3000"),
        ({"prometheusRule": {"alerts": {"EMRServerlessListingBehind": {"threshold": 999}}}}, "999"),
    ],
    ids=["defaults", "scrape-90s", "scrape-15s-x20", "min-interval", "background", "explicit"],
)
def test_listing_behind_threshold_is_collections_of_the_collection_interval(
    chart: Any, values: dict[str, Any], threshold: str
) -> None:
    values = {**values, "prometheusRule": {"enabled": True, **values.get("prometheusRule", {})}}
    rule = rules_by_name(Rendered(chart, values).one("PrometheusRule")["spec"]["groups"])["EMRServerlessListingBehind"]
    assert COMPARISON.findall(rule["expr"]) == [(">", " ")], rule["expr"]
    assert rule["expr"].rstrip().endswith(f"> {threshold}"), rule["expr"]


@pytest.mark.parametrize(
    ("values", "threshold"),
    [
        ({}, "500000"),  # no sample limit: the rules file's own number
        ({"serviceMonitor": {"sampleLimit": 100000}}, "80000"),
        ({"serviceMonitor": {"sampleLimit": 1000000}, "prometheusRule": {"sampleLimitShare": 0.9}}, "900000"),
        ({"serviceMonitor": {"sampleLimit": 100000},
          "prometheusRule": {"alerts": {"EMRServerlessExporterNearSampleLimit": {"threshold": 12345}}}}, "12345"),
    ],
    ids=["no-limit", "limit", "limit-share", "explicit"],
)
def test_near_sample_limit_threshold_is_a_share_of_the_sample_limit(
    chart: Any, values: dict[str, Any], threshold: str
) -> None:
    values = {**values, "prometheusRule": {"enabled": True, **values.get("prometheusRule", {})}}
    groups = Rendered(chart, values).one("PrometheusRule")["spec"]["groups"]
    rule = rules_by_name(groups)["EMRServerlessExporterNearSampleLimit"]
    assert rule["expr"].rstrip().endswith(f"> {threshold}"), rule["expr"]


def test_alert_options_that_cannot_apply_fail_the_render(chart: Any) -> None:
    def render(alerts: dict[str, Any]) -> None:
        chart.render({"prometheusRule": {"enabled": True, "alerts": alerts}}, name=RELEASE, namespace=NAMESPACE)

    unknown = r"prometheusRule\.alerts\.EMRServerlessNoSuchAlert: no such alert"
    with pytest.raises(helm_python.HelmRenderError, match=unknown):
        render({"EMRServerlessNoSuchAlert": {"enabled": False}})
    # A threshold is only replaced where the expression compares with exactly one number.
    ambiguous = [name for name, rule in rules_by_name(yaml.safe_load(RULES_FILE.read_text())["groups"]).items()
                 if "alert" in rule and len(COMPARISON.findall(rule["expr"])) != 1]
    assert ambiguous, "every alert compares with one number: test the refusal another way"
    with pytest.raises(helm_python.HelmRenderError, match=rf"prometheusRule\.alerts\.{ambiguous[0]}\.threshold: "):
        render({ambiguous[0]: {"threshold": 5}})


def test_dashboard_config_map(all_on: Rendered, all_on_values: dict[str, Any]) -> None:
    options = all_on_values["grafanaDashboard"]
    dashboard = all_on.one("ConfigMap", "-dashboard")
    assert dashboard["metadata"]["labels"][options["labelKey"]] == options["labelValue"]
    assert dashboard["metadata"]["namespace"] == options["namespace"]
    assert dashboard["metadata"]["annotations"] == options["annotations"]
    assert list(dashboard["data"]) == ["emr-serverless-exporter.json"]
    assert json.loads(dashboard["data"]["emr-serverless-exporter.json"]) == json.loads(DASHBOARD_FILE.read_text())


def test_dashboard_sidecar_label_defaults(chart: Any) -> None:
    defaults = chart.values["grafanaDashboard"]
    assert (defaults["labelKey"], defaults["labelValue"]) == ("grafana_dashboard", "1")


def test_rules_and_dashboard_have_one_source() -> None:
    # deploy/prometheus and deploy/grafana link to the chart's files: one copy, which Helm can read.
    for path in (RULES_FILE, DASHBOARD_FILE):
        assert path.is_symlink(), f"{path} should be a symlink into the chart"
        assert path.resolve().parent == (CHART_DIR / "files").resolve()
    assert {entry["name"] for entry in helm_python.Chart.load(CHART_DIR).files} >= {
        "files/emr-serverless-exporter.rules.yaml",
        "files/emr-serverless-exporter.json",
    }


# --- web config: TLS and basic auth ------------------------------------------------------------------------


def test_web_config_and_certificates_are_mounted_from_secrets(tls_on: Rendered) -> None:
    secret = tls_on.one("Secret")
    assert secret["metadata"]["name"] == f"{RELEASE}-emr-serverless-exporter-web-config"
    assert secret["type"] == "Opaque"
    assert yaml.safe_load(secret["stringData"]["web.yml"]) == WEB_CONFIG
    mounts = {mount["mountPath"]: mount for mount in tls_on.container["volumeMounts"]}
    mount = mounts[WEB_CONFIG_DIR]
    assert mount["readOnly"] is True
    volume = {volume["name"]: volume for volume in tls_on.pod_spec["volumes"]}[mount["name"]]
    sources = volume["projected"]["sources"]
    # web.yml and the keys of the TLS Secret side by side: web.yml names them as tls.crt and tls.key.
    assert sources == [
        {"secret": {"name": secret["metadata"]["name"], "items": [{"key": "web.yml", "path": "web.yml"}]}},
        {"secret": {"name": "exporter-tls"}},
    ]


def test_an_existing_web_config_secret_is_used_as_is(chart: Any) -> None:
    rendered = Rendered(chart, {"webConfig": {"enabled": True, "existingSecret": "my-web-config"}})
    assert rendered.of_kind("Secret") == []
    volume = {volume["name"]: volume for volume in rendered.pod_spec["volumes"]}["web-config"]
    assert volume["projected"]["sources"][0]["secret"]["name"] == "my-web-config"
    assert rendered.container["livenessProbe"]["httpGet"]["scheme"] == "HTTP"  # basic auth only, no TLS


def test_service_monitor_follows_tls_and_basic_auth(tls_on: Rendered, default: Rendered, chart: Any) -> None:
    endpoint = tls_on.one("ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == TLS_ON_VALUES["serviceMonitor"]["tlsConfig"]
    assert endpoint["basicAuth"] == TLS_ON_VALUES["serviceMonitor"]["basicAuth"]
    plain = Rendered(chart, {"serviceMonitor": {"enabled": True}}).one("ServiceMonitor")["spec"]["endpoints"][0]
    assert plain["scheme"] == "http" and "tlsConfig" not in plain and "basicAuth" not in plain
    assert tls_on.container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"


def test_the_rendered_web_config_passes_promtool(tmp_path: Path, tls_on: Rendered) -> None:
    import subprocess

    from tests.helpers.certs import make_authority

    server = make_authority(tmp_path).issue("server", server=True)
    server.cert.rename(tmp_path / "tls.crt")
    server.key.rename(tmp_path / "tls.key")
    web = tmp_path / "web.yml"
    web.write_text(tls_on.one("Secret")["stringData"]["web.yml"])
    result = subprocess.run(["promtool", "check", "web-config", str(web)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"tls": {"enabled": True}}, "tls.enabled needs webConfig.enabled"),
        ({"webConfig": {"enabled": True}}, "webConfig.enabled needs webConfig.existingSecret or webConfig.content"),
        ({"webConfig": {"enabled": True, "content": WEB_CONFIG}, "tls": {"clientCertificates": True}},
         "tls.clientCertificates needs tls.enabled"),
    ],
)
def test_contradicting_web_settings_fail_the_render(chart: Any, values: dict[str, Any], reason: str) -> None:
    with pytest.raises(Exception, match=re.escape(reason)):
        chart.render(values, name=RELEASE, namespace=NAMESPACE)


# --- sharding: replicas split the applications, as kube-state-metrics' automatic sharding ----------------


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' expansion of container args: $(VAR) from the container's env, $$ escapes, the rest stays."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m[0] == "$$" else env.get(m[1], m[0]), text)


def pod_env(container: dict[str, Any], pod: dict[str, Any]) -> dict[str, str]:
    """The container's environment in a pod, the downward API resolved as the kubelet does."""
    env: dict[str, str] = {}
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = expand(entry["value"], env)
            continue
        path = entry["valueFrom"]["fieldRef"]["fieldPath"]
        label = re.fullmatch(r"metadata\.labels\['([^']+)'\]", path)
        if label:
            env[entry["name"]] = pod["metadata"]["labels"].get(label[1], "")
        else:
            env[entry["name"]] = {"metadata.name": pod["metadata"]["name"],
                                  "metadata.namespace": pod["metadata"]["namespace"]}[path]
    return env


def statefulset_pods(rendered: Rendered) -> list[dict[str, Any]]:
    """The pods the StatefulSet controller makes: name <set>-N, labels with the pod index N (1.28+)."""
    workload = rendered.workload
    assert workload["kind"] == "StatefulSet"
    pods = []
    for index in range(workload["spec"]["replicas"]):
        name = f"{workload['metadata']['name']}-{index}"
        labels = {**workload["spec"]["template"]["metadata"]["labels"], POD_INDEX_LABEL: str(index),
                  "statefulset.kubernetes.io/pod-name": name}
        pods.append({"metadata": {"name": name, "namespace": workload["metadata"]["namespace"], "labels": labels},
                     "spec": workload["spec"]["template"]["spec"]})
    return pods


def pod_args(pod: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    container = pod["spec"]["containers"][0]
    env = pod_env(container, pod)
    return [expand(arg, env) for arg in container["args"]], env


def shard_args(args: list[str]) -> list[str]:
    return [arg for arg in args if arg.startswith(("--shard", "--total-shards"))]


def test_one_replica_is_a_deployment_that_does_not_shard(default: Rendered) -> None:
    assert default.workload["kind"] == "Deployment" and default.of_kind("StatefulSet") == []
    assert shard_args(default.container["args"]) == []
    assert "env" not in default.container


def test_three_replicas_are_a_statefulset_of_shards_0_1_2_of_3(three_replicas: Rendered) -> None:
    workload = three_replicas.workload
    assert three_replicas.of_kind("Deployment") == []
    assert workload["spec"]["replicas"] == 3
    assert workload["spec"]["podManagementPolicy"] == "Parallel"
    assert workload["spec"]["serviceName"] == three_replicas.one("Service")["metadata"]["name"]
    pods = statefulset_pods(three_replicas)
    assert [shard_args(pod_args(pod)[0]) for pod in pods] == [
        [f"--shard={index}", "--total-shards=3"] for index in range(3)
    ]
    assert "shard" in three_replicas.notes.lower()


def test_sharding_enabled_runs_one_pod_as_a_statefulset(chart: Any) -> None:
    rendered = Rendered(chart, {"sharding": {"enabled": True}})
    assert rendered.workload["kind"] == "StatefulSet" and rendered.workload["spec"]["replicas"] == 1
    [pod] = statefulset_pods(rendered)
    assert shard_args(pod_args(pod)[0]) == ["--shard=0", "--total-shards=1"]


def test_sharding_needs_kubernetes_1_28(capfd: pytest.CaptureFixture[str]) -> None:
    # The pod-index label came in 1.28. Helm's lint reports a template's fail() in its log, not as an error.
    helm_python.lint(CHART_DIR, THREE_REPLICAS, strict=True, kube_version="v1.27.0")
    assert "sharding (replicaCount > 1 or sharding.enabled) needs Kubernetes 1.28 or newer" in capfd.readouterr().err
    report = helm_python.lint(CHART_DIR, THREE_REPLICAS, strict=True, kube_version="v1.28.0")
    assert report["errors"] == []
    assert "needs Kubernetes 1.28" not in capfd.readouterr().err


def exported_sessions(exposition: str) -> set[tuple[str, str, str]]:
    return {
        (sample.labels["target"], sample.labels["application_id"], sample.labels["session_id"])
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if "session_id" in sample.labels
    }


def test_three_rendered_pods_export_each_session_once(chart: Any, tmp_path: Path) -> None:
    """Three exporters started with the arguments and environment the chart gives the StatefulSet's pods
    (the downward API and $(VAR) resolved as Kubernetes does, only the mounted config file's path
    changed) export every session of the simulator exactly once between them."""
    store = build_scenario("scale", applications=12, sessions_per_application=5, active_fraction=0.5)
    base_env = {key: value for key, value in aws_env().items() if key not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    with Simulator(store, host="127.0.0.1", port=0) as sim:
        # No region in the target: it comes from the chart's region value (AWS_REGION in the pod).
        # No job runs in the scenario: their listings would wait for the ListJobRuns rate limit until the deadline.
        values = {"replicaCount": 3, "region": "us-east-1",
                  "config": {"targets": [{"endpoint_url": sim.url, "name": "sim"}], "discovery": {"job_runs": False}}}
        rendered = Rendered(chart, values)
        config_dir = tmp_path / "config"
        config_dir.mkdir()
        (config_dir / "config.yaml").write_text(rendered.one("ConfigMap")["data"]["config.yaml"])

        def run(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
            args = [arg.replace(f"={CONFIG_DIR}/", f"={config_dir}/") for arg in args]
            return subprocess.Popen([sys.executable, "-m", "exporter", *args, "--once"], env={**base_env, **env},
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        pods = [pod_args(pod) for pod in statefulset_pods(rendered)]
        processes = [run(args, env) for args, env in pods]
        # The same pod without sharding: what one exporter exports alone.
        alone_args = [arg for arg in pods[0][0] if arg not in shard_args(pods[0][0])]
        processes.append(run(alone_args, pods[0][1]))
        outputs = []
        for process in processes:
            stdout, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr
            outputs.append(stdout)
    *shards, alone = (exported_sessions(output) for output in outputs)
    assert len(alone) == 12 * 5  # every session of the scenario
    assert all(shards), "with 12 applications every shard owns some"
    assert set().union(*shards) == alone
    assert sum(len(shard) for shard in shards) == len(alone)  # none in two shards
    for one, other in ((0, 1), (0, 2), (1, 2)):
        assert not {app for _, app, _ in shards[one]} & {app for _, app, _ in shards[other]}


# --- region, image, labels -------------------------------------------------------------------------------


def test_region_sets_the_aws_region(chart: Any, default: Rendered) -> None:
    rendered = Rendered(chart, {"region": "eu-west-1"})
    env = {entry["name"]: entry["value"] for entry in rendered.container["env"]}
    assert env == {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}
    assert "no region value is set" not in rendered.notes
    # No region by default: the environment's (EKS injects it with IRSA and Pod Identity); the NOTES say so.
    assert "no region value is set" in default.notes
    every_target = Rendered(chart, {"config": {"targets": [{"region": "us-east-1"}]}})
    assert "no region value is set" not in every_target.notes


def test_image_registry_digest_and_global_registry(chart: Any, default: Rendered) -> None:
    defaults = chart.values["image"]
    app_version = chart.metadata["appVersion"]
    assert default.container["image"] == f"{defaults['registry']}/{defaults['repository']}:{app_version}"
    digest = "sha256:" + "ab" * 32
    by_digest = Rendered(chart, {"image": {"digest": digest, "tag": "ignored"}})
    assert by_digest.container["image"] == f"{defaults['registry']}/{defaults['repository']}@{digest}"
    mirrored = Rendered(chart, {"global": {"imageRegistry": "mirror.example.com"}, "image": {"tag": "1.2.3"}})
    assert mirrored.container["image"] == f"mirror.example.com/{defaults['repository']}:1.2.3"
    no_registry = Rendered(chart, {"image": {"registry": "", "repository": "exporter"}})
    assert no_registry.container["image"] == f"exporter:{chart.metadata['appVersion']}"


# --- PodDisruptionBudget, NetworkPolicy, topology spread, extra objects -----------------------------------


def test_pod_disruption_budget(chart: Any, all_on: Rendered, all_on_values: dict[str, Any]) -> None:
    budget = all_on.one("PodDisruptionBudget")["spec"]
    # minAvailable wins over maxUnavailable.
    assert budget == {"selector": {"matchLabels": all_on.workload["spec"]["selector"]["matchLabels"]},
                      "minAvailable": all_on_values["podDisruptionBudget"]["minAvailable"],
                      "unhealthyPodEvictionPolicy": "AlwaysAllow"}
    default_budget = Rendered(chart, {"podDisruptionBudget": {"enabled": True}}).one("PodDisruptionBudget")["spec"]
    assert default_budget["maxUnavailable"] == 1 and "minAvailable" not in default_budget
    percent = Rendered(chart, {"podDisruptionBudget": {"enabled": True, "maxUnavailable": "34%"}})
    assert percent.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == "34%"
    with pytest.raises(helm_python.HelmRenderError, match=r"needs podDisruptionBudget\.minAvailable or"):
        chart.render({"podDisruptionBudget": {"enabled": True, "maxUnavailable": ""}}, name=RELEASE,
                     namespace=NAMESPACE)


def test_network_policy(chart: Any, all_on: Rendered, all_on_values: dict[str, Any]) -> None:
    policy = all_on.one("NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"] == all_on.workload["spec"]["selector"]["matchLabels"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    port_names = {port["name"] for port in all_on.container["ports"]}
    assert policy["ingress"] == [{"ports": [{"port": "http-metrics", "protocol": "TCP"}],
                                  "from": all_on_values["networkPolicy"]["ingressFrom"]}]
    assert "http-metrics" in port_names
    egress_ports = {(port["port"], port["protocol"]) for rule in policy["egress"] for port in rule["ports"]}
    assert {(53, "UDP"), (53, "TCP"), (443, "TCP"), (80, "TCP")} <= egress_ports
    assert policy["egress"][-len(all_on_values["networkPolicy"]["extraEgress"]) :] == \
        all_on_values["networkPolicy"]["extraEgress"]
    # Port 443 to anywhere: the AWS endpoints have no fixed addresses.
    assert {"ports": [{"port": 443, "protocol": "TCP"}]} in policy["egress"]
    open_egress = Rendered(chart, {"networkPolicy": {"enabled": True, "allowAllEgress": True}})
    spec = open_egress.one("NetworkPolicy")["spec"]
    assert spec["policyTypes"] == ["Ingress"] and "egress" not in spec
    assert "from" not in spec["ingress"][0]  # no ingressFrom: anyone may scrape


def test_topology_spread_constraints_select_the_pods(all_on: Rendered, all_on_values: dict[str, Any]) -> None:
    constraints = all_on.pod_spec["topologySpreadConstraints"]
    given = all_on_values["topologySpreadConstraints"]
    assert len(constraints) == len(given)
    selector = {"matchLabels": all_on.workload["spec"]["selector"]["matchLabels"]}
    for got, want in zip(constraints, given, strict=True):
        # A constraint without a labelSelector gets the pods' selector labels; one with it is kept as is.
        assert got == ({"labelSelector": selector, **want} if "labelSelector" not in want else want)


def test_extra_objects_are_rendered_with_tpl(all_on: Rendered) -> None:
    extra = [obj for path, obj in all_on.sources if path == EXTRA_OBJECTS]
    names = {obj["metadata"]["name"] for obj in extra}
    assert names == {"emr-sessions-exporter-proxy-settings", f"{RELEASE}-exporter-extra-env"}
    env_from = {ref.get("configMapRef", ref.get("secretRef"))["name"] for ref in all_on.container["envFrom"]}
    assert env_from == names  # the all-on values wire them into envFrom
