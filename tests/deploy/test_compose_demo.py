"""docker-compose.yml: valid against the Compose Specification schema, every file it mounts or
builds from exists, its Envoy config passes `envoy --mode validate` with the real .wasm, its
Prometheus config passes `promtool check config`, and the services, ports, Prometheus target,
Grafana datasource and dashboards all point at each other. (No Docker engine here: this is
what can be checked without one.)"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from deploy_helpers import ENVOY_BIN, REPO, require_wasm, run, tool

COMPOSE = REPO / "docker-compose.yml"
ENVOY_CONFIG = REPO / "envoy" / "compose.yaml"
PROMETHEUS = REPO / "docker" / "prometheus" / "prometheus.yml"
PROVISIONING = REPO / "docker" / "grafana" / "provisioning"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


def mounts(service: dict):
    """(source, target) of every bind mount, short or long syntax."""
    for v in service.get("volumes", []):
        if isinstance(v, str):
            src, dst = v.split(":")[:2]
        else:
            src, dst = v.get("source"), v.get("target")
        yield src, dst


def published(service: dict) -> dict[int, tuple[str, int]]:
    """container port → (host ip, host port)."""
    out = {}
    for p in service.get("ports", []):
        ip, host, container = str(p).split(":")
        out[int(container)] = (ip, int(host))
    return out


def test_compose_file_matches_the_compose_spec():
    r = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", COMPOSE])
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_file_it_mounts_or_builds_from_exists(compose):
    require_wasm()
    missing = []
    for name, svc in compose["services"].items():
        for src, _ in mounts(svc):
            if src.startswith((".", "/")) and not (REPO / src).exists():
                missing.append(f"{name}: {src}")
        build = svc.get("build")
        if build:
            ctx = REPO / build.get("context", ".")
            if not (ctx / build.get("dockerfile", "Dockerfile")).exists():
                missing.append(f"{name}: build {build}")
    assert not missing, "docker-compose.yml mounts what does not exist (dashboards/ comes with the metrics work, the .wasm with `make wasm`): " + ", ".join(missing)


def test_images_are_pinned_and_ports_stay_on_loopback(compose):
    services = compose["services"]
    assert services["envoy"]["image"] == "envoyproxy/envoy:v1.40.0"
    for name, svc in services.items():
        image = svc.get("image", "")
        assert image and not image.endswith(":latest") and ":" in image, f"{name}: image {image!r} is not pinned"
        for container, (ip, _) in published(svc).items():
            assert ip == "127.0.0.1", f"{name}: port {container} published on {ip}"
    assert "HOLYSHEEP_API_KEY" in services["envoy"]["environment"]
    assert not re.match(r"sk-", services["envoy"]["environment"]["HOLYSHEEP_API_KEY"])


def test_the_envoy_config_passes_envoy_validate_and_fits_the_compose_file(compose):
    assert ENVOY_BIN.exists(), f"{ENVOY_BIN} missing: make venv"
    require_wasm()
    envoy = compose["services"]["envoy"]
    targets = dict((dst, src) for src, dst in mounts(envoy))
    (config_in_container,) = [a for i, a in enumerate(envoy["command"]) if i and envoy["command"][i - 1] == "-c"]
    assert Path(targets[config_in_container]).resolve() == ENVOY_CONFIG.resolve()

    # The config, run from the repository root exactly as the container runs it from / .
    env = dict(os.environ, HOLYSHEEP_API_KEY="sk-dummy-for-validation")
    r = run([ENVOY_BIN, "--mode", "validate", "-c", ENVOY_CONFIG.relative_to(REPO), "-l", "warning"], env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    boot = yaml.safe_load(ENVOY_CONFIG.read_text())
    # The .wasm path, relative in the config, is where the compose file mounts the build.
    wasm_files = re.findall(r"filename: (\S+\.wasm)", ENVOY_CONFIG.read_text())
    assert wasm_files and all(not f.startswith("/") for f in wasm_files)
    assert envoy["working_dir"] == "/"
    for f in wasm_files:
        assert targets.get("/" + f) == "./" + f, f"{f} is not mounted at /{f}"
    # Listener and admin listen on all interfaces inside the container, on the published ports.
    admin = boot["admin"]["address"]["socket_address"]
    listener = boot["static_resources"]["listeners"][0]["address"]["socket_address"]
    assert admin["address"] == listener["address"] == "0.0.0.0"
    ports = published(envoy)
    assert listener["port_value"] in ports and admin["port_value"] in ports
    # Every upstream is the mock provider's service, on the port it listens on.
    mock = compose["services"]["mock-provider"]
    listen = mock["command"][mock["command"].index("--listen") + 1]
    endpoint_clusters = [c for c in boot["static_resources"]["clusters"] if "load_assignment" in c]
    assert endpoint_clusters
    for cluster in endpoint_clusters:
        assert cluster["type"] in ("STRICT_DNS", "LOGICAL_DNS"), cluster["name"]
        for group in cluster["load_assignment"]["endpoints"]:
            for ep in group["lb_endpoints"]:
                sa = ep["endpoint"]["address"]["socket_address"]
                assert f"{sa['address']}:{sa['port_value']}" == f"mock-provider:{listen.split(':')[1]}"


def test_prometheus_config_passes_promtool_and_scrapes_envoy(compose, tmp_path):
    prom = compose["services"]["prometheus"]
    targets = {d: s for s, d in mounts(prom)}
    assert Path(REPO / targets["/etc/prometheus/prometheus.yml"]).resolve() == PROMETHEUS.resolve()
    # promtool reads rule_files relative to the config: lay the files out as the container sees
    # them, so that the rules (deploy/prometheus/alerts.yaml) are checked too.
    config = yaml.safe_load(PROMETHEUS.read_text())
    for d, s in targets.items():
        if d.startswith("/etc/prometheus/"):
            (tmp_path / d[len("/etc/prometheus/"):]).write_bytes((REPO / s).read_bytes())
    for rule_file in config.get("rule_files", []):
        assert (tmp_path / rule_file).exists(), f"rule file {rule_file} is not mounted next to the config"
    r = run([tool("promtool"), "check", "config", tmp_path / "prometheus.yml"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout + r.stderr and ("rules found" in r.stdout + r.stderr or not config.get("rule_files"))
    (job,) = [j for j in config["scrape_configs"] if j.get("metrics_path") == "/stats/prometheus"]
    admin_port = yaml.safe_load(ENVOY_CONFIG.read_text())["admin"]["address"]["socket_address"]["port_value"]
    assert job["static_configs"][0]["targets"] == [f"envoy:{admin_port}"]


def test_promtool_really_refuses_a_broken_config(tmp_path):
    bad = tmp_path / "prometheus.yml"
    bad.write_text("scrape_configs:\n- job_name: x\n  scrape_interval: often\n")
    assert run([tool("promtool"), "check", "config", bad]).returncode != 0


def test_grafana_is_provisioned_with_the_datasource_and_the_dashboards(compose):
    grafana = compose["services"]["grafana"]
    targets = {d: s for s, d in mounts(grafana)}
    assert Path(REPO / targets["/etc/grafana/provisioning"]).resolve() == PROVISIONING.resolve()
    (ds,) = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())["datasources"]
    prom_port = 9090
    assert ds["type"] == "prometheus" and ds["url"] == f"http://prometheus:{prom_port}" and ds["uid"] == "prometheus"
    assert prom_port in published(compose["services"]["prometheus"])
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "ai-gateway.yaml").read_text())["providers"]
    dash_dir = provider["options"]["path"]
    assert targets[dash_dir] == "./dashboards"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dash_dir + "/")
    dashboard = REPO / "dashboards" / home[len(dash_dir) + 1:]
    assert dashboard.exists(), f"{dashboard.relative_to(REPO)} missing (the metrics work ships it)"
    # Every datasource the dashboard names explicitly is the provisioned one (or a variable).
    uids = set(re.findall(r'"uid"\s*:\s*"([^"]+)"', json.dumps(json.loads(dashboard.read_text()).get("panels", []))))
    known = {"prometheus", "-- Grafana --", "grafana"}
    assert all(u in known or u.startswith("$") for u in uids), f"dashboard datasource uids {uids - known}"


def test_the_mock_provider_image_builds_what_compose_runs(compose):
    mock = compose["services"]["mock-provider"]
    dockerfile = REPO / mock["build"]["dockerfile"]
    text = dockerfile.read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms and all(":" in f and not f.endswith(":latest") for f in froms), froms
    assert "-p mock-provider" in text and "--locked" in text
    assert (REPO / "tools" / "mock-provider" / "Cargo.toml").exists()
    ignore = (dockerfile.parent / (dockerfile.name + ".dockerignore")).read_text().split()
    assert {"target", ".venv", ".git"} <= set(ignore), "the build context would ship target/ and .venv/"
    listen = mock["command"][mock["command"].index("--listen") + 1]
    assert listen.startswith("0.0.0.0:") and int(listen.split(":")[1]) in published(mock)
