"""The Kubernetes files: a base made from the processor declarations, overlays that hold every parameter of a
cluster, and what each renders (`kubectl kustomize`) valid, safe to apply and restricted enough for Pod Security."""

from __future__ import annotations

import copy
import functools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from ops import kubernetes
from ops.kubernetes import BASE, DEPLOYED, K8S_DIR, OVERLAYS, SERVICE_MONITOR
from topology.settings import PROJECT_ROOT, Settings
from topology.topics import ORDERS_EVENTS

KUBERNETES_VERSION = "1.33"
OVERLAY_NAMES = sorted(path.name for path in (K8S_DIR / OVERLAYS).iterdir())
TARGETS = [str(BASE), *(str(OVERLAYS / name) for name in OVERLAY_NAMES)]
# The keys of the Secret `oms-credentials` that docs/deploying.md has the operator create.
CREDENTIAL_KEYS = (
    "OMS_KAFKA_SASL_USERNAME",
    "OMS_KAFKA_SASL_PASSWORD",
    "OMS_SCHEMA_REGISTRY_USERNAME",
    "OMS_SCHEMA_REGISTRY_PASSWORD",
)
# Volume types Pod Security's "restricted" profile allows.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


@functools.cache
def rendered(target: str) -> tuple[dict[str, Any], ...]:
    """What `kubectl kustomize` makes of `target` (a folder under ops/deploy/k8s/)."""
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl (with its built-in kustomize) is missing"
    built = subprocess.run(
        [kubectl, "kustomize", str(K8S_DIR / target)], capture_output=True, text=True, timeout=120, check=False
    )
    assert built.returncode == 0, built.stderr
    return tuple(yaml.safe_load_all(built.stdout))


def overlay(name: str) -> dict[str, Any]:
    kustomization: dict[str, Any] = yaml.safe_load((K8S_DIR / OVERLAYS / name / "kustomization.yaml").read_text())
    return kustomization


def of_kind(documents: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [document for document in documents if document["kind"] == kind]


def pod_specs(documents: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    """Every pod template's spec, by its owner's kind and name."""
    return {
        f"{doc['kind']}/{doc['metadata']['name']}": doc["spec"]["template"]["spec"]
        for doc in documents
        if doc["kind"] in ("StatefulSet", "Job")
    }


def settings_data(documents: tuple[dict[str, Any], ...]) -> dict[str, str]:
    [config_map] = of_kind(documents, "ConfigMap")
    data: dict[str, str] = config_map["data"]
    return data


# --- generated, current, complete ----------------------------------------------------------------------------


def test_the_generated_files_are_current_and_nothing_stale_is_left() -> None:
    for path, text in kubernetes.generated_files().items():
        assert path.read_text() == text, f"{path} is stale: run `oms deploy --write`"
    assert kubernetes.stale_files() == [], "run `oms deploy --write` to remove them"


def test_the_writer_removes_what_no_declaration_makes_and_keeps_the_overlays(tmp_path: Path) -> None:
    for path, text in kubernetes.generated_files(tmp_path).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    gone_processor = tmp_path / BASE / "retired.yaml"
    gone_processor.write_text("kind: StatefulSet\n")
    old_layout = tmp_path / "config.yaml"
    old_layout.write_text("kind: Secret\n")
    operators = tmp_path / OVERLAYS / "mine" / "kustomization.yaml"
    operators.parent.mkdir(parents=True)
    operators.write_text("resources: [../../base]\n")

    removed = kubernetes.remove_stale_files(tmp_path)

    assert sorted(removed) == sorted([gone_processor, old_layout])
    assert not gone_processor.exists() and not old_layout.exists()
    assert operators.exists()
    assert all(path.exists() for path in kubernetes.generated_files(tmp_path))


def test_the_headers_send_operators_to_the_overlays_not_to_python() -> None:
    for path, text in kubernetes.generated_files().items():
        header = text.split("\napiVersion")[0]
        assert "overlay" in header and "docs/deploying.md" in header, path
        assert ".py" not in header, f"{path}: parameters are an overlay's, not Python's"


@pytest.mark.parametrize("target", TARGETS)
def test_every_processor_has_a_stateful_set_a_service_and_a_disruption_budget(target: str) -> None:
    documents = rendered(target)
    stateful_sets = {
        doc["spec"]["template"]["spec"]["containers"][0]["args"][1]: doc for doc in of_kind(documents, "StatefulSet")
    }
    assert set(stateful_sets) == set(DEPLOYED)
    assert {doc["metadata"]["name"] for doc in of_kind(documents, "Service")} == {f"oms-{name}" for name in DEPLOYED}
    budgets = {
        tuple(sorted(doc["spec"]["selector"]["matchLabels"].items())): doc
        for doc in of_kind(documents, "PodDisruptionBudget")
    }
    for name, stateful_set in stateful_sets.items():
        pods = stateful_set["spec"]["selector"]["matchLabels"]
        budget = budgets.get(tuple(sorted(pods.items())))
        assert budget is not None, f"{name} has no PodDisruptionBudget"
        assert budget["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": pods}}


@pytest.mark.parametrize("target", TARGETS)
def test_instances_of_a_processor_prefer_different_nodes(target: str) -> None:
    for stateful_set in of_kind(rendered(target), "StatefulSet"):
        anti = stateful_set["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        [preferred] = anti["preferredDuringSchedulingIgnoredDuringExecution"]
        term = preferred["podAffinityTerm"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"] == {"matchLabels": stateful_set["spec"]["selector"]["matchLabels"]}
        assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti


# --- valid ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_what_each_kustomization_renders_is_valid_kubernetes(target: str) -> None:
    # Custom resources (the ServiceMonitor) are not in the API's schemas: their own test checks them.
    built_in = [doc for doc in rendered(target) if not doc["apiVersion"].startswith("monitoring.coreos.com/")]
    assert built_in
    for document in built_in:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validation_catches_a_misspelt_field() -> None:
    stateful_set = of_kind(rendered(str(BASE)), "StatefulSet")[0]
    broken = copy.deepcopy(stateful_set)
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["prot"] = "metrics"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


# --- credentials --------------------------------------------------------------------------------------------


def test_no_secret_is_shipped() -> None:
    shipped = [
        (path, doc)
        for path in sorted(K8S_DIR.rglob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict)
    ]
    assert [path for path, doc in shipped if doc.get("kind") == "Secret"] == []
    for target in TARGETS:
        assert of_kind(rendered(target), "Secret") == [], target
        assert not [key for key in settings_data(rendered(target)) if key in CREDENTIAL_KEYS or "PASSWORD" in key]


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_takes_its_credentials_from_the_operators_secret(target: str) -> None:
    for owner, spec in pod_specs(rendered(target)).items():
        [container] = spec["containers"]
        secrets = [source["secretRef"] for source in container["envFrom"] if "secretRef" in source]
        assert secrets == [{"name": "oms-credentials"}], owner  # not optional: a pod without it does not start


def test_the_docs_show_the_command_that_creates_the_secret_with_every_key() -> None:
    docs = (PROJECT_ROOT / "docs" / "deploying.md").read_text()
    command = re.search(r"kubectl create secret generic oms-credentials[^`]*?\n(?:.*\\\n)*.*", docs)
    assert command is not None
    for key in CREDENTIAL_KEYS:
        assert f"--from-literal={key}=" in command.group(0), key


# --- Pod Security "restricted" ------------------------------------------------------------------------------


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """What in a pod spec Pod Security's "restricted" profile refuses (Kubernetes' pod-security-admission)."""
    found = []
    pod = spec.get("securityContext", {})
    if pod.get("runAsUser") == 0:
        found.append("pod runs as root")
    if pod.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
        found.append("pod has no RuntimeDefault seccomp profile")
    for volume in spec.get("volumes", []):
        if not set(volume) - {"name"} <= RESTRICTED_VOLUMES:
            found.append(f"volume {volume['name']} is of a kind not allowed")
    for container in spec["containers"] + spec.get("initContainers", []):
        context = container.get("securityContext", {})
        name = container["name"]
        if context.get("runAsNonRoot", pod.get("runAsNonRoot")) is not True:
            found.append(f"{name} may run as root")
        if context.get("runAsUser", pod.get("runAsUser")) == 0:
            found.append(f"{name} runs as root")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name} allows privilege escalation")
        if context.get("privileged"):
            found.append(f"{name} is privileged")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"{name} keeps its capabilities")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{name} adds capabilities")
        if context.get("seccompProfile", {}).get("type", "RuntimeDefault") not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name} turns seccomp off")
    return found


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_meets_the_restricted_pod_security_profile(target: str) -> None:
    specs = pod_specs(rendered(target))
    assert len(specs) == len(DEPLOYED) + 1  # every processor and the setup Job
    for owner, spec in specs.items():
        assert restricted_violations(spec) == [], owner


@pytest.mark.parametrize(
    ("breaking", "violation"),
    [
        (lambda spec: spec["securityContext"].pop("seccompProfile"), "pod has no RuntimeDefault seccomp profile"),
        (lambda spec: spec["containers"][0]["securityContext"].pop("capabilities"), "oms keeps its capabilities"),
        (
            lambda spec: spec["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True),
            "oms allows privilege escalation",
        ),
        (
            lambda spec: [
                context.pop("runAsNonRoot")
                for context in (spec["securityContext"], spec["containers"][0]["securityContext"])
            ],
            "oms may run as root",
        ),
        (
            lambda spec: spec.setdefault("volumes", []).append({"name": "host", "hostPath": {"path": "/"}}),
            "volume host is of a kind not allowed",
        ),
    ],
)
def test_the_restricted_check_catches_each_missing_setting(breaking: Any, violation: str) -> None:
    spec = copy.deepcopy(next(iter(pod_specs(rendered(str(BASE))).values())))
    breaking(spec)
    assert violation in restricted_violations(spec)


def test_pods_run_as_the_images_user() -> None:
    user = re.search(r"^USER (\d+)", (PROJECT_ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert user is not None
    for spec in pod_specs(rendered(str(BASE))).values():
        assert spec["securityContext"]["runAsUser"] == int(user.group(1))


# --- parameters come from the overlays -----------------------------------------------------------------------


def test_the_base_leaves_every_cluster_parameter_to_the_overlays() -> None:
    documents = rendered(str(BASE))
    data = settings_data(documents)
    for cluster_setting in ("OMS_KAFKA_BOOTSTRAP_SERVERS", "OMS_SCHEMA_REGISTRY_URL", "OMS_REPLICATION_FACTOR"):
        assert cluster_setting not in data
    assert {spec["containers"][0]["image"] for spec in pod_specs(documents).values()} == {"oms"}


def test_there_is_a_local_and_a_production_overlay() -> None:
    assert {"local", "production"} <= set(OVERLAY_NAMES)


@pytest.mark.parametrize("name", OVERLAY_NAMES)
def test_image_replicas_settings_and_resources_are_the_overlays(name: str) -> None:
    kustomization = overlay(name)
    documents = rendered(str(OVERLAYS / name))

    [image] = kustomization["images"]
    images = {spec["containers"][0]["image"] for spec in pod_specs(documents).values()}
    assert images == {f"{image.get('newName', image['name'])}:{image['newTag']}"}

    wanted = {entry["name"]: entry["count"] for entry in kustomization["replicas"]}
    assert set(wanted) == {f"oms-{processor}" for processor in DEPLOYED}, "every processor's replicas, none forgotten"
    assert {doc["metadata"]["name"]: doc["spec"]["replicas"] for doc in of_kind(documents, "StatefulSet")} == wanted

    [generator] = kustomization["configMapGenerator"]
    given = dict(literal.split("=", 1) for literal in generator["literals"])
    assert given.items() <= settings_data(documents).items()
    for setting in ("OMS_KAFKA_BOOTSTRAP_SERVERS", "OMS_SCHEMA_REGISTRY_URL", "OMS_REPLICATION_FACTOR"):
        assert setting in given

    patch = yaml.safe_load((K8S_DIR / OVERLAYS / name / "resources.yaml").read_text())
    resources = patch["spec"]["template"]["spec"]["containers"][0]["resources"]
    for stateful_set in of_kind(documents, "StatefulSet"):
        assert stateful_set["spec"]["template"]["spec"]["containers"][0]["resources"] == resources


def test_production_pulls_from_a_registry() -> None:
    [image] = overlay("production")["images"]
    assert "/" in image["newName"] and "." in image["newName"].split("/")[0]


# --- durability and partitions ------------------------------------------------------------------------------


def overlay_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a pod of the overlay reads."""
    for variable in ("OMS_MIN_INSYNC_REPLICAS", "OMS_ORDER_PARTITIONS", "OMS_REPLICATION_FACTOR"):
        monkeypatch.delenv(variable, raising=False)
    for key, value in settings_data(rendered(str(OVERLAYS / name))).items():
        monkeypatch.setenv(key, value)
    return Settings()


def test_production_topics_have_three_replicas_two_of_them_in_sync_and_twelve_partitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = overlay_settings("production", monkeypatch)

    assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)
    assert ORDERS_EVENTS.created_config(settings.min_insync_replicas)["min.insync.replicas"] == "2"
    assert settings.order_partitions == 12


def test_local_topics_have_one_replica_and_the_local_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = overlay_settings("local", monkeypatch)

    assert (settings.replication_factor, settings.min_insync_replicas) == (1, 1)
    assert settings.order_partitions == Settings.model_fields["order_partitions"].default


# --- ServiceMonitor -----------------------------------------------------------------------------------------

SERVICE_MONITOR_SPEC = {"jobLabel", "selector", "endpoints", "namespaceSelector", "targetLabels", "podTargetLabels"}
ENDPOINT_FIELDS = {"port", "path", "interval", "scrapeTimeout", "scheme", "relabelings", "metricRelabelings"}
RELABEL_FIELDS = {"sourceLabels", "targetLabel", "regex", "replacement", "action", "separator", "modulus"}


def test_the_service_monitor_scrapes_every_processor_as_job_oms() -> None:
    documents = rendered(str(OVERLAYS / "production"))
    [monitor] = of_kind(documents, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    spec = monitor["spec"]
    assert set(spec) <= SERVICE_MONITOR_SPEC
    alerts = (PROJECT_ROOT / "ops" / "prometheus" / "alerts.yml").read_text()
    assert 'job="oms"' in alerts, "the alert rules name the scrape job `oms`"
    services = of_kind(documents, "Service")
    for service in services:
        labels = service["metadata"]["labels"]
        assert labels[spec["jobLabel"]] == "oms"
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        assert service["metadata"]["namespace"] == monitor["metadata"]["namespace"]
    [endpoint] = spec["endpoints"]
    assert set(endpoint) <= ENDPOINT_FIELDS
    assert all(endpoint["port"] in {port["name"] for port in service["spec"]["ports"]} for service in services)
    assert all(set(rule) <= RELABEL_FIELDS for rule in endpoint["relabelings"])
    # `service` is the processor's name, as where Prometheus finds the processors on one machine.
    assert {
        "sourceLabels": ["__meta_kubernetes_service_label_app_kubernetes_io_component"],
        "targetLabel": "service",
    } in endpoint["relabelings"]


def test_the_service_monitor_is_a_component_an_overlay_can_leave_out() -> None:
    component = yaml.safe_load((K8S_DIR / SERVICE_MONITOR / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    assert of_kind(rendered(str(BASE)), "ServiceMonitor") == []
