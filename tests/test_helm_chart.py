"""The Helm chart deploy/helm/emr-serverless-exporter: renders (helm_python, no helm binary), lints,
produces valid Kubernetes objects, and wires the exporter, its rules and its dashboard as documented.

Each values set is rendered once per module (the fixtures); the tests only inspect the results."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
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

Manifests = list[dict[str, Any]]


class Rendered:
    """One render of the chart: the values, the raw template outputs and the parsed objects."""

    def __init__(self, chart: Any, values: dict[str, Any]) -> None:
        self.values = values
        self.merged = chart.merge_values(values)
        self.files: dict[str, str] = chart.render(values, name=RELEASE, namespace=NAMESPACE)
        self.objects: Manifests = [
            doc
            for path, text in self.files.items()
            if path.endswith((".yaml", ".yml"))
            for doc in yaml.safe_load_all(text)
            if doc
        ]

    def template(self, name: str) -> str:
        return self.files[f"emr-serverless-exporter/templates/{name}"]

    def of_kind(self, kind: str) -> Manifests:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str, name_suffix: str = "") -> dict[str, Any]:
        found = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"].endswith(name_suffix)]
        if name_suffix == "" and kind == "ConfigMap":
            found = [obj for obj in found if "config.yaml" in obj.get("data", {})]
        assert len(found) == 1, f"expected one {kind}, got {[obj['metadata']['name'] for obj in found]}"
        return found[0]

    @property
    def pod_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.one("Deployment")["spec"]["template"]["spec"]
        return spec

    @property
    def container(self) -> dict[str, Any]:
        containers = self.pod_spec["containers"]
        assert len(containers) == 1
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


@pytest.fixture(scope="module", params=["default", "all_on", "tls_on"])
def rendered(request: pytest.FixtureRequest) -> Rendered:
    result: Rendered = request.getfixturevalue(request.param)
    return result


# --- the chart as a whole ----------------------------------------------------------------------------


@pytest.mark.parametrize("values_file", [None, ALL_ON_VALUES_FILE, "tls_on"], ids=["default", "all_on", "tls_on"])
def test_lint_is_clean(values_file: Path | str | None) -> None:
    if values_file == "tls_on":
        values = TLS_ON_VALUES
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
    kinds = sorted(obj["kind"] for obj in all_on.objects)
    assert kinds == [
        "ConfigMap",
        "ConfigMap",
        "Deployment",
        "PrometheusRule",
        "Secret",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    ]


def test_objects_are_valid_kubernetes(rendered: Rendered) -> None:
    for obj in rendered.objects:
        if obj["apiVersion"] == OPERATOR_API:
            continue  # CRDs: not in kubernetes_validate's schemas, checked structurally below
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_notes(rendered: Rendered) -> None:
    notes = rendered.files["emr-serverless-exporter/templates/NOTES.txt"]
    assert rendered.pod_spec["serviceAccountName"] in notes


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
    assert all_on.one("Deployment")["spec"]["replicas"] == all_on_values["replicaCount"]
    assert container["image"] == f"{all_on_values['image']['repository']}:{all_on_values['image']['tag']}"
    assert container["imagePullPolicy"] == all_on_values["image"]["pullPolicy"]
    assert container["env"] == all_on_values["env"]
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
    template = all_on.one("Deployment")["spec"]["template"]["metadata"]
    assert all_on_values["podAnnotations"].items() <= template["annotations"].items()
    assert all_on_values["podLabels"].items() <= template["labels"].items()


def test_default_image_is_the_app_version(chart: Any, default: Rendered) -> None:
    assert default.container["image"].endswith(f":{chart.metadata['appVersion']}")


# --- configuration -------------------------------------------------------------------------------------


def test_config_map_holds_values_config(rendered: Rendered) -> None:
    config_map = rendered.one("ConfigMap")
    assert yaml.safe_load(config_map["data"]["config.yaml"]) == rendered.merged["config"]


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
    annotations = rendered.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    expected = hashlib.sha256(rendered.template("configmap.yaml").encode()).hexdigest()
    assert annotations["checksum/config"] == expected


def test_config_checksum_changes_with_the_config(chart: Any, default: Rendered) -> None:
    changed = Rendered(chart, {"config": {"discovery": {"terminated_session_max_age_seconds": 60}}})

    def checksum(rendered: Rendered) -> str:
        value: str = rendered.one("Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
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
    pod_labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert rendered.one("Deployment")["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
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
    assert set(spec) <= {"jobLabel", "namespaceSelector", "selector", "endpoints"}
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


def test_prometheus_rule_carries_the_rules_file(all_on: Rendered, all_on_values: dict[str, Any]) -> None:
    rule = all_on.one("PrometheusRule")
    assert rule["apiVersion"] == OPERATOR_API
    assert rule["metadata"]["namespace"] == all_on_values["prometheusRule"]["namespace"]
    assert all_on_values["prometheusRule"]["labels"].items() <= rule["metadata"]["labels"].items()
    assert set(rule["spec"]) == {"groups"}
    assert rule["spec"]["groups"] == yaml.safe_load(RULES_FILE.read_text())["groups"]


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

    from tests.certs import make_authority

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
