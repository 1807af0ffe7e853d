"""The Kubernetes manifests, checked offline: rendered, validated, scanned, parsed.

Both overlays are rendered with ``kubectl kustomize`` (prod after ``fedapp
certs`` wrote its TLS material, as a user does), validated against the API
schemas with ``kubernetes-validate --strict``, scanned with ``checkov``, and
read back to assert what the deployment relies on.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fedapp.deploy import processes as deploy
from fedapp.deploy.certs import generate

ROOT = Path(__file__).resolve().parents[2]
INSTITUTIONS = ("bank", "telco", "clinic")
OVERLAYS = ("dev", "prod")
# checkov pins its own dependencies, so .ci/run installs it in a venv of its own.
CHECKOV = os.environ.get("FEDAPP_CHECKOV", "/opt/fedapp-k8s-tools/bin/checkov")
# Each skip is justified in the manifests (see k8s/base/superlink.yaml).
ALLOWED_SKIPS = {"CKV_K8S_43", "CKV_K8S_15"}
CA = "/etc/fedapp/tls/ca.crt"
SUPERLINK = f"superlink:{deploy.SUPERLINK_PORT}"
HEALTH = f"0.0.0.0:{deploy.HEALTH_PORT}"
DATABASE = "/var/lib/flower-state/superlink.db"

Doc = dict[str, Any]


def _tool(name: str) -> str:
    """A tool from this interpreter's environment (the `test` extra), else PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(ROOT / "k8s", work, ignore=shutil.ignore_patterns("certs"))
    generate(work / "overlays/prod/certs", ["superlink", "localhost"], list(INSTITUTIONS))
    out = {}
    for overlay in OVERLAYS:
        done = subprocess.run(
            [_tool("kubectl"), "kustomize", str(work / "overlays" / overlay)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        out[overlay] = work.parent / f"{overlay}.yaml"
        out[overlay].write_text(done.stdout, encoding="utf-8")
    return out


def _docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _container(workload: Doc) -> Doc:
    [container] = workload["spec"]["template"]["spec"]["containers"]
    return container


def _workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["kind"] in ("Deployment", "Job")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_rendered_overlay_passes_strict_schema_validation(
    rendered: dict[str, Path], overlay: str
) -> None:
    done = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", "--quiet", str(rendered[overlay])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_checkov_fails_no_check_and_skips_only_justified_ones(rendered: dict[str, Path]) -> None:
    if not Path(CHECKOV).exists():
        # CI must run it; a developer's quick `pytest` need not have installed it.
        missing = f"checkov is not at {CHECKOV}: .ci/run installs it (or set FEDAPP_CHECKOV)"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    files = [a for p in rendered.values() for a in ("-f", str(p))]
    done = subprocess.run(
        [CHECKOV, *files, "--framework", "kubernetes", "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stdout.lstrip().startswith("{"), done.stderr[-2000:]
    report = json.loads(done.stdout)
    results = report["results"]
    failed = [(c["check_id"], c["resource"]) for c in results["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] > 0
    skipped = results["skipped_checks"]
    assert {c["check_id"] for c in skipped} <= ALLOWED_SKIPS
    assert all(c["check_result"].get("suppress_comment", "").strip() for c in skipped)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_locked_down_and_bounded(rendered: dict[str, Path], overlay: str) -> None:
    workloads = _workloads(_docs(rendered[overlay]))
    assert len(workloads) == (6 if overlay == "prod" else 5)
    for workload in workloads:
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] >= 10000, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        container = _container(workload)
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["runAsNonRoot"] is True, name
        assert security["capabilities"] == {"drop": ["ALL"]}, name
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}, name
        assert re.fullmatch(r"fedapp:\d+\.\d+\.\d+", container["image"]), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_superlink_serves_port_8000_and_is_probed_on_health(
    rendered: dict[str, Path], overlay: str
) -> None:
    docs = _docs(rendered[overlay])
    service = _one(docs, "Service", "superlink")
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(8000, "http")]
    container = _container(_one(docs, "Deployment", "superlink"))
    assert container["ports"] == [{"name": "http", "containerPort": 8000}]
    scheme = "HTTPS" if overlay == "prod" else "HTTP"
    for probe in ("readinessProbe", "livenessProbe"):
        check = container[probe]["httpGet"]
        assert (check["path"], check["port"], check.get("scheme", "HTTP")) == (
            "/health",
            "http",
            scheme,
        )
    for workload in _workloads(docs):
        if workload["metadata"]["name"] in ("superlink", "register-supernodes"):
            continue
        probes = _container(workload)
        for probe in ("readinessProbe", "livenessProbe"):
            assert probes[probe]["grpc"]["port"] == deploy.HEALTH_PORT


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_flower_flags_are_those_of_fedapp_deploy(
    rendered: dict[str, Path], overlay: str
) -> None:
    docs = _docs(rendered[overlay])
    secure = overlay == "prod"
    tls = deploy.ServerTls(CA, "/etc/fedapp/tls/tls.crt", "/etc/fedapp/tls/tls.key")
    superlink = _container(_one(docs, "Deployment", "superlink"))
    assert superlink["args"] == [
        "superlink",
        *deploy.superlink_args(tls if secure else None, DATABASE, host="0.0.0.0"),
    ]
    assert ("--enable-supernode-auth" in superlink["args"]) is secure
    superexec = _container(_one(docs, "Deployment", "superexec"))
    assert superexec["args"] == [
        "superexec",
        *deploy.superexec_args(SUPERLINK, CA if secure else None, HEALTH),
    ]
    for partition_id, name in enumerate(INSTITUTIONS):
        node = _container(_one(docs, "Deployment", f"supernode-{name}"))
        credentials = deploy.NodeCredentials(CA, "/etc/fedapp/node/node.key")
        node_config = {"data-path": f"/data/{name}.csv", "partition-id": partition_id}
        assert node["args"] == [
            "supernode",
            *deploy.supernode_args(SUPERLINK, node_config, credentials if secure else None, HEALTH),
        ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_supernode_mounts_only_its_own_data_read_only(
    rendered: dict[str, Path], overlay: str
) -> None:
    docs = _docs(rendered[overlay])
    for name in INSTITUTIONS:
        workload = _one(docs, "Deployment", f"supernode-{name}")
        pod = workload["spec"]["template"]["spec"]
        claims = [
            v["persistentVolumeClaim"] for v in pod["volumes"] if "persistentVolumeClaim" in v
        ]
        assert claims == [{"claimName": f"{name}-data", "readOnly": True}]
        [mount] = [m for m in _container(workload)["volumeMounts"] if m["mountPath"] == "/data"]
        assert mount["readOnly"] is True
        _one(docs, "PersistentVolumeClaim", f"{name}-data")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_supernodes_may_reach_only_the_superlink(rendered: dict[str, Path], overlay: str) -> None:
    docs = _docs(rendered[overlay])
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    deny = _one(docs, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    node_labels = {"app.kubernetes.io/component": "supernode"}
    selecting = [p for p in policies if p["spec"]["podSelector"].get("matchLabels") == node_labels]
    assert len(selecting) == 1
    spec = selecting[0]["spec"]
    assert spec.get("ingress") == []
    allowed = []
    for rule in spec["egress"]:
        [peer] = rule["to"]
        ports = sorted((p["protocol"], p["port"]) for p in rule["ports"])
        allowed.append((peer["podSelector"]["matchLabels"], ports))
    assert allowed == [
        ({"app.kubernetes.io/component": "superlink"}, [("TCP", 8000)]),
        ({"k8s-app": "kube-dns"}, [("TCP", 53), ("UDP", 53)]),
    ]
    link = _one(docs, "NetworkPolicy", "superlink-ingress")["spec"]
    assert [p["port"] for rule in link["ingress"] for p in rule["ports"]] == [8000]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_but_the_superlink_may_reach_it_and_it_admits_them(
    rendered: dict[str, Path], overlay: str
) -> None:
    docs = _docs(rendered[overlay])
    policies = [d["spec"] for d in docs if d["kind"] == "NetworkPolicy"]
    link = {"app.kubernetes.io/component": "superlink"}
    [admits] = [p for p in policies if p["podSelector"].get("matchLabels") == link]
    [source] = admits["ingress"][0]["from"]
    admitted = set(source["podSelector"]["matchExpressions"][0]["values"])
    for workload in _workloads(docs):
        component = workload["spec"]["template"]["metadata"]["labels"][
            "app.kubernetes.io/component"
        ]
        if component == "superlink":
            continue
        egress = [
            rule
            for p in policies
            if p["podSelector"].get("matchLabels") == {"app.kubernetes.io/component": component}
            for rule in p.get("egress", [])
        ]
        assert any(
            r["to"][0].get("podSelector", {}).get("matchLabels") == link
            and r["ports"] == [{"protocol": "TCP", "port": 8000}]
            for r in egress
        ), component
        assert component in admitted, component


def test_prod_mounts_tls_secrets_and_registers_every_node_key(rendered: dict[str, Path]) -> None:
    docs = _docs(rendered["prod"])
    secrets = {d["metadata"]["name"].rsplit("-", 1)[0]: d for d in docs if d["kind"] == "Secret"}
    assert set(secrets["superlink-tls"]["data"]) == {"ca.crt", "tls.crt", "tls.key"}
    assert set(secrets["federation-ca"]["data"]) == {"ca.crt"}
    for name in INSTITUTIONS:
        key_secret = secrets[f"supernode-{name}-key"]["metadata"]["name"]
        users = [
            w["metadata"]["name"]
            for w in _workloads(docs)
            for v in w["spec"]["template"]["spec"]["volumes"]
            if v.get("secret", {}).get("secretName") == key_secret
        ]
        assert users == [f"supernode-{name}"]  # a node's key reaches its pod alone
    keys = next(d for d in docs if d["metadata"]["name"].startswith("supernode-public-keys"))
    assert set(keys["data"]) == {f"{n}.pub" for n in INSTITUTIONS}
    job = _one(docs, "Job", "register-supernodes")
    assert "flwr supernode register" in _container(job)["args"][0]
    secret_mounts = {
        v["secret"]["secretName"]: v["secret"]["defaultMode"]
        for w in _workloads(docs)
        for v in w["spec"]["template"]["spec"]["volumes"]
        if "secret" in v
    }
    assert set(secret_mounts.values()) == {0o440}


def test_dev_runs_without_tls_or_secrets(rendered: dict[str, Path]) -> None:
    docs = _docs(rendered["dev"])
    assert [d for d in docs if d["kind"] == "Secret"] == []
    for workload in _workloads(docs):
        assert "--insecure" in _container(workload)["args"]


def test_the_dockerfile_pins_its_base_and_runs_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    [base] = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base)
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) == 2
    final = stages[-1]
    assert re.search(r"^USER 10001:10001$", final, re.M)
    assert "COPY --from=build /opt/fedapp /opt/fedapp" in final
    assert not re.search(r"apt-get|gcc|build-essential|pip install", final)
    assert re.search(r'^ENTRYPOINT \["fedapp"\]$', final, re.M)
