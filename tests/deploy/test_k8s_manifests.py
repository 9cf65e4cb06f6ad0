"""deploy/: the Kustomize stages render, every resource passes its schema (core kinds with
kubernetes-validate, Istio kinds with Istio's CRDs and their CEL rules), the EnvoyFilter carries
exactly the plugin configuration and image of its stage, Envoy 1.40 accepts that Wasm filter
configuration with the real .wasm, and the pieces reference each other correctly."""

from __future__ import annotations

import copy
import json
import os
import re

import kubernetes_validate
import pytest
import yaml
from deploy_helpers import (
    AI_GATEWAY,
    DEPLOY,
    ENVOY_BIN,
    OVERLAYS,
    REPO,
    find,
    load_json,
    read_env,
    render,
    require_wasm,
    run,
    wasm_ecds_config,
)
from istio_schema import istio_errors

K8S_VERSION = "1.37.0"
ISTIO_GROUPS = ("networking.istio.io", "extensions.istio.io", "security.istio.io", "telemetry.istio.io")
SECRET = DEPLOY / "secret" / "holysheep-api-key.yaml"
WASMPLUGIN = DEPLOY / "istio-wasmplugin" / "wasmplugin.yaml"
PLACEHOLDER = "REPLACE_WITH_YOUR_HOLYSHEEP_API_KEY"
EXPECTED_KINDS = {
    "Namespace", "ServiceAccount", "Deployment", "Service", "PodDisruptionBudget", "ConfigMap",
    "Gateway", "VirtualService", "ServiceEntry", "DestinationRule", "EnvoyFilter",
}


def plugin_config_file(overlay: str):
    return DEPLOY / ("base" if overlay == "stable" else "overlays/canary") / "plugin-config.json"


@pytest.fixture(scope="module", params=OVERLAYS)
def stage(request):
    return request.param, render(request.param)


def is_istio(doc):
    return doc["apiVersion"].split("/")[0] in ISTIO_GROUPS


def test_the_stages_render_with_every_resource_and_no_local_config(stage):
    name, docs = stage
    assert {d["kind"] for d in docs} == EXPECTED_KINDS
    for d in docs:
        annotations = d["metadata"].get("annotations") or {}
        assert "config.kubernetes.io/local-config" not in annotations, f"{d['kind']} {d['metadata']['name']} is local"
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == "ai-gateway", f"{d['kind']} {d['metadata']['name']}"
        assert d["metadata"]["labels"]["ai-gateway.holysheep.ai/stage"] == name
    # No placeholder survives rendering.
    text = yaml.safe_dump_all(docs)
    assert "set by deploy/components/render" not in text


def test_core_kinds_pass_kubernetes_validate_strict(stage):
    _, docs = stage
    core = [d for d in docs if not is_istio(d)]
    assert core
    for d in core + [yaml.safe_load(SECRET.read_text())]:
        try:
            kubernetes_validate.validate(d, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{d['kind']} {d['metadata']['name']}: {e.message} at {list(e.path)}")


def test_kubernetes_validate_really_refuses_a_bad_deployment(stage):
    _, docs = stage
    bad = copy.deepcopy(find(docs, "Deployment"))
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 7
    bad["spec"]["replicaz"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_istio_kinds_pass_the_istio_crd_schemas_and_cel_rules(stage):
    _, docs = stage
    istio = [d for d in docs if is_istio(d)]
    assert {d["kind"] for d in istio} == {"Gateway", "VirtualService", "ServiceEntry", "DestinationRule", "EnvoyFilter"}
    for d in istio:
        assert istio_errors(d) == [], f"{d['kind']} {d['metadata']['name']}"


def test_the_istio_schema_check_refuses_what_istio_refuses(stage):
    """The checker is not a rubber stamp: unknown fields, bad enums, broken CEL rules fail."""
    _, docs = stage
    ef = copy.deepcopy(find(docs, "EnvoyFilter", "ai-gateway-wasm"))
    ef["spec"]["configPatches"][1]["patch"]["operation"] = "PREPEND"
    ef["spec"]["workloadSelektor"] = {}
    errors = istio_errors(ef)
    assert any("PREPEND" in e for e in errors) and any("workloadSelektor" in e for e in errors), errors
    se = copy.deepcopy(find(docs, "ServiceEntry"))
    se["spec"]["ports"].append(dict(se["spec"]["ports"][0]))  # duplicate port number: a CEL rule
    assert any("exists_one" in e or "unique" in e.lower() for e in istio_errors(se)), istio_errors(se)
    wp = yaml.safe_load(WASMPLUGIN.read_text())
    wp["spec"]["url"] = "ftp://example.com/plugin.wasm"  # a CEL rule on the scheme
    assert any("url must have schema" in e for e in istio_errors(wp)), istio_errors(wp)


def test_the_envoyfilter_carries_its_stage_config_and_the_image(stage):
    name, docs = stage
    ef = find(docs, "EnvoyFilter", "ai-gateway-wasm")
    ecds = wasm_ecds_config(ef)
    typed = ecds["typed_config"]
    assert typed["@type"] == "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
    config = typed["config"]
    assert config["allow_on_headers_stop_iteration"] is True, "without it the filter's requests hang"
    assert config["failure_policy"] == "FAIL_RELOAD"
    assert config["configuration"]["@type"] == "type.googleapis.com/google.protobuf.StringValue"
    plugin = json.loads(config["configuration"]["value"])
    assert plugin == load_json(plugin_config_file(name))
    image = read_env(DEPLOY / "base" / "image.env")
    remote = config["vm_config"]["code"]["remote"]
    assert remote["http_uri"]["uri"] == image["WASM_URL"] and remote["sha256"] == image["WASM_SHA256"]
    assert config["vm_config"]["environment_variables"]["host_env_keys"] == [plugin["upstream"]["api_key_env"]]
    assert "key_values" not in config["vm_config"]["environment_variables"], "a key in key_values shows in /config_dump"

    # The HTTP filter references the extension config by name, before the router, on the gateway.
    (http,) = [p for p in ef["spec"]["configPatches"] if p["applyTo"] == "HTTP_FILTER"]
    assert http["match"]["context"] == "GATEWAY"
    assert http["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"] == "envoy.filters.http.router"
    assert http["patch"]["operation"] == "INSERT_BEFORE"
    assert http["patch"]["value"]["name"] == ecds["name"]
    assert http["patch"]["value"]["config_discovery"]["type_urls"] == [typed["@type"]]


def test_the_upstream_envoyfilter_puts_the_same_filter_on_the_provider_cluster(stage):
    """deploy/base/envoyfilter-upstream.yaml: the upstream role (root_id ai_gateway_upstream) of
    the same code, configuration and VM, over ECDS, as the provider cluster's upstream filter
    before the codec. (Istio has no upstream-filter patch type: a CLUSTER MERGE.)"""
    _, docs = stage
    down = wasm_ecds_config(find(docs, "EnvoyFilter", "ai-gateway-wasm"))["typed_config"]["config"]
    ef = find(docs, "EnvoyFilter", "ai-gateway-wasm-upstream")
    assert ef["spec"]["workloadSelector"] == find(docs, "EnvoyFilter", "ai-gateway-wasm")["spec"]["workloadSelector"]
    ecds = wasm_ecds_config(ef)
    up = ecds["typed_config"]["config"]
    assert up["root_id"] == "ai_gateway_upstream" and up["name"] == "ai_gateway_upstream"
    assert up["allow_on_headers_stop_iteration"] is True, "a fallback attempt holds its headers"
    assert up["failure_policy"] == "FAIL_RELOAD"
    assert up["configuration"] == down["configuration"], "both roles must read one configuration"
    assert up["vm_config"] == down["vm_config"], "one VM config: one VM, the same image and digest"
    (cluster,) = [p for p in ef["spec"]["configPatches"] if p["applyTo"] == "CLUSTER"]
    assert cluster["match"]["context"] == "GATEWAY" and cluster["patch"]["operation"] == "MERGE"
    opts = cluster["patch"]["value"]["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert opts["@type"] == "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    first, codec = opts["http_filters"]
    assert first["name"] == ecds["name"] and first["config_discovery"]["type_urls"] == [ecds["typed_config"]["@type"]]
    assert first["config_discovery"]["config_source"] == {"ads": {}, "initial_fetch_timeout": "0s"}
    assert codec["name"] == "envoy.filters.http.upstream_codec"


def test_envoy_accepts_the_upstream_filter_patch_on_a_cluster(tmp_path):
    """The CLUSTER patch's HttpProtocolOptions on demo.yaml's aggregate cluster, its ECDS
    filter served from a file (as istio-agent hands Envoy the .wasm: a local file)."""
    docs = render("stable")
    ef = find(docs, "EnvoyFilter", "ai-gateway-wasm-upstream")
    ecds = copy.deepcopy(wasm_ecds_config(ef))
    ecds["typed_config"]["config"]["vm_config"]["code"] = {"local": {"filename": str(require_wasm())}}
    ecds_file = tmp_path / "upstream-ecds.yaml"
    ecds_file.write_text(yaml.safe_dump({"resources": [{"@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig", **ecds}]}))
    (cluster,) = [p for p in ef["spec"]["configPatches"] if p["applyTo"] == "CLUSTER"]
    opts = copy.deepcopy(cluster["patch"]["value"]["typed_extension_protocol_options"])
    (first,) = [f for f in opts["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"] if "config_discovery" in f]
    first["config_discovery"]["config_source"] = {"path_config_source": {"path": str(ecds_file)}, "initial_fetch_timeout": "0s"}
    boot = envoy_bootstrap_with(wasm_ecds_config(find(docs, "EnvoyFilter", "ai-gateway-wasm"))["typed_config"])
    boot["node"] = {"id": "ai-gateway", "cluster": "ai-gateway"}
    (agg,) = [c for c in boot["static_resources"]["clusters"] if c["name"] == "mock"]
    agg["typed_extension_protocol_options"] = opts
    r = envoy_validate(tmp_path, boot)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_the_stages_differ_only_in_the_plugin_config_and_their_label():
    stable, canary = (render(o) for o in OVERLAYS)

    def normalized(docs):
        out = copy.deepcopy(docs)
        for d in out:
            d["metadata"]["labels"].pop("ai-gateway.holysheep.ai/stage")
            if d["kind"] == "EnvoyFilter":
                wasm_ecds_config(d)["typed_config"]["config"]["configuration"]["value"] = "…"
        return sorted(out, key=lambda d: (d["kind"], d["metadata"]["name"]))

    assert normalized(stable) == normalized(canary)


def test_the_pieces_reference_each_other(stage):
    _, docs = stage
    dep = find(docs, "Deployment", "ai-gateway")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    subset = lambda a, b: all(b.get(k) == v for k, v in a.items())
    assert annotations["inject.istio.io/templates"] == "gateway" and pod_labels["sidecar.istio.io/inject"] == "true"
    assert subset(dep["spec"]["selector"]["matchLabels"], pod_labels)
    for name in ("ai-gateway-wasm", "ai-gateway-wasm-upstream"):
        assert subset(find(docs, "EnvoyFilter", name)["spec"]["workloadSelector"]["labels"], pod_labels)
    assert subset(find(docs, "Gateway")["spec"]["selector"], pod_labels)
    assert subset(find(docs, "Service")["spec"]["selector"], pod_labels)
    assert subset(find(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], pod_labels)

    # The key: the istio-proxy container's env, from the Secret in deploy/secret/.
    (proxy,) = [c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "istio-proxy"]
    secret = yaml.safe_load(SECRET.read_text())
    (env,) = [e for e in proxy["env"] if e["name"] == "HOLYSHEEP_API_KEY"]
    ref = env["valueFrom"]["secretKeyRef"]
    assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
    assert secret["metadata"]["namespace"] == dep["metadata"]["namespace"]
    assert not any(d["kind"] == "Secret" for d in docs), "a stage must never overwrite the real key"

    # The bootstrap override with the metric labels exists and is what the pods ask for.
    cm = find(docs, "ConfigMap", annotations["sidecar.istio.io/bootstrapOverride"])
    bootstrap = json.loads(cm["data"]["custom_bootstrap.json"])
    holysheep = yaml.safe_load((REPO / "envoy" / "holysheep.yaml").read_text())
    assert bootstrap["stats_config"].get("stats_tags", []) == holysheep.get("stats_config", {}).get("stats_tags", [])
    assert "wasmcustom.ai_gateway" in annotations["proxy.istio.io/config"]

    # Listener → route → provider: the Gateway's port is the container port, the VirtualService
    # routes to the ServiceEntry's HTTP port, the DestinationRule originates TLS there.
    gw = find(docs, "Gateway")
    assert gw["spec"]["servers"][0]["port"]["number"] in [p["containerPort"] for p in proxy["ports"]]
    assert find(docs, "Service")["spec"]["ports"][0]["targetPort"] == gw["spec"]["servers"][0]["port"]["number"]
    vs = find(docs, "VirtualService")
    assert vs["spec"]["gateways"] == [gw["metadata"]["name"]]
    dest = vs["spec"]["http"][0]["route"][0]["destination"]
    se = find(docs, "ServiceEntry")
    assert dest["host"] in se["spec"]["hosts"]
    (se_port,) = [p for p in se["spec"]["ports"] if p["number"] == dest["port"]["number"]]
    assert se_port["protocol"] == "HTTP" and se_port["targetPort"] == 443
    dr = find(docs, "DestinationRule")
    assert dr["spec"]["host"] == dest["host"]
    (tls,) = [s["tls"] for s in dr["spec"]["trafficPolicy"]["portLevelSettings"] if s["port"]["number"] == dest["port"]["number"]]
    assert tls["mode"] == "SIMPLE" and tls["sni"] == dest["host"]
    outlier = dr["spec"]["trafficPolicy"]["outlierDetection"]
    assert outlier["maxEjectionPercent"] == 100 and outlier["consecutive5xxErrors"] > 0
    # The plugin config names the Istio cluster that serves the route.
    plugin = json.loads(wasm_ecds_config(find(docs, "EnvoyFilter", "ai-gateway-wasm"))["typed_config"]["config"]["configuration"]["value"])
    assert plugin["upstream"]["cluster"] == f"outbound|{dest['port']['number']}||{dest['host']}"
    # The upstream filter goes on that same cluster, and restates what Istio would generate
    # there (the patch replaces the cluster's HttpProtocolOptions whole): HTTP/1.1, the
    # DestinationRule's idle timeout.
    (cluster,) = [p for p in find(docs, "EnvoyFilter", "ai-gateway-wasm-upstream")["spec"]["configPatches"] if p["applyTo"] == "CLUSTER"]
    assert cluster["match"]["cluster"] == {"service": dest["host"], "portNumber": dest["port"]["number"]}
    opts = cluster["patch"]["value"]["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert opts["common_http_protocol_options"]["idle_timeout"] == dr["spec"]["trafficPolicy"]["connectionPool"]["http"]["idleTimeout"]
    assert se_port["name"] == "http" and opts["explicit_http_config"] == {"http_protocol_options": {}}


def test_the_secret_is_a_placeholder_and_no_key_is_committed():
    secret = yaml.safe_load(SECRET.read_text())
    assert secret["stringData"] == {"api-key": PLACEHOLDER}
    key_like = re.compile(r"\b(sk-[A-Za-z0-9_-]{16,}|hs-[A-Za-z0-9_-]{16,})")
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            assert not key_like.search(path.read_text()), f"{path} contains something that looks like an API key"


def test_image_env_is_a_pinned_oci_reference():
    image = read_env(DEPLOY / "base" / "image.env")
    assert set(image) == {"WASM_URL", "WASM_SHA256"}
    assert re.fullmatch(r"oci://[a-z0-9.:-]+/[a-z0-9._/-]+:[A-Za-z0-9_.-]+", image["WASM_URL"])
    assert re.fullmatch(r"[0-9a-f]{64}", image["WASM_SHA256"])


def test_the_wasmplugin_variant_matches_the_envoyfilter():
    wp = yaml.safe_load(WASMPLUGIN.read_text())
    assert istio_errors(wp) == []
    image = read_env(DEPLOY / "base" / "image.env")
    spec = wp["spec"]
    assert spec["url"] == image["WASM_URL"] and spec["sha256"] == image["WASM_SHA256"]
    assert spec["pluginConfig"] == load_json(DEPLOY / "base" / "plugin-config.json")
    assert spec["failStrategy"] == "FAIL_RELOAD"
    assert spec["vmConfig"]["env"] == [{"name": "HOLYSHEEP_API_KEY", "valueFrom": "HOST"}]
    assert spec["selector"]["matchLabels"] == {"istio": "ai-gateway"}


def test_derived_files_are_in_sync_with_the_envoy_configs():
    """deploy/base/plugin-config.json is envoy/holysheep.yaml's configuration (Istio cluster
    name aside); the bootstrap, the WasmPlugin and envoy/compose.yaml are generated."""
    r = run([REPO / ".venv" / "bin" / "python", REPO / "scripts" / "ci" / "sync-deploy.py", "--check"])
    assert r.returncode == 0, r.stderr


# ---- Envoy itself accepts the Wasm configuration of each stage ------------------------------


def envoy_bootstrap_with(wasm_config: dict) -> dict:
    """envoy/demo.yaml with its Wasm filter replaced by the EnvoyFilter's (remote code → the
    local .wasm, as istio-agent hands it to Envoy)."""
    boot = yaml.safe_load((REPO / "envoy" / "demo.yaml").read_text())
    cfg = copy.deepcopy(wasm_config)
    cfg["config"]["vm_config"]["code"] = {"local": {"filename": str(require_wasm())}}
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    (i,) = [n for n, f in enumerate(hcm["http_filters"]) if f["name"] == "envoy.filters.http.wasm"]
    hcm["http_filters"][i]["typed_config"] = cfg
    # demo.yaml's upstream copy of the filter (on the cluster `mock`): the same .wasm, by an
    # absolute path (Envoy runs in tmp_path).
    for cluster in boot["static_resources"]["clusters"]:
        opts = cluster.get("typed_extension_protocol_options", {}).get("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", {})
        for f in opts.get("http_filters", []):
            if f["name"] == "envoy.filters.http.wasm":
                f["typed_config"] = copy.deepcopy(f["typed_config"])
                f["typed_config"]["config"]["vm_config"] = copy.deepcopy(cfg["config"]["vm_config"])
    return boot


def envoy_validate(tmp_path, boot: dict):
    path = tmp_path / "bootstrap.yaml"
    path.write_text(yaml.safe_dump(boot))
    env = dict(os.environ, HOLYSHEEP_API_KEY="sk-dummy-for-validation")
    return run([ENVOY_BIN, "--mode", "validate", "-c", path, "-l", "warning"], env=env, cwd=tmp_path)


def test_envoy_accepts_the_wasm_config_of_each_stage(stage, tmp_path):
    assert ENVOY_BIN.exists(), f"{ENVOY_BIN} missing: make venv"
    _, docs = stage
    typed = wasm_ecds_config(find(docs, "EnvoyFilter", "ai-gateway-wasm"))["typed_config"]
    r = envoy_validate(tmp_path, envoy_bootstrap_with(typed))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_envoy_validation_of_the_stage_catches_a_bad_plugin_config(tmp_path):
    typed = copy.deepcopy(wasm_ecds_config(find(render("stable"), "EnvoyFilter", "ai-gateway-wasm"))["typed_config"])
    bad = json.loads(typed["config"]["configuration"]["value"])
    bad["routes"][0]["targets"][0]["model"] = "no-such-model"
    typed["config"]["configuration"]["value"] = json.dumps(bad)
    r = envoy_validate(tmp_path, envoy_bootstrap_with(typed))
    assert r.returncode != 0, "Envoy accepted a plugin configuration the filter must refuse"
    assert "Unable to create Wasm plugin" in r.stdout + r.stderr, r.stdout[-3000:] + r.stderr[-3000:]


# ---- ai-gateway validate (the CLI of the roll-outs issue) -----------------------------------


def ai_gateway():
    if not AI_GATEWAY.exists():
        pytest.skip(f"{AI_GATEWAY.relative_to(REPO)} not built yet (cargo build --release -p ai-gateway): "
                    "the plugin configs were checked by Envoy and the filter above instead")
    return AI_GATEWAY


def test_ai_gateway_validates_the_deploy_plugin_configs():
    files = [DEPLOY / "base" / "plugin-config.json", DEPLOY / "overlays" / "canary" / "plugin-config.json", WASMPLUGIN]
    r = run([ai_gateway(), "validate", *files])
    assert r.returncode == 0, r.stdout + r.stderr


def test_ai_gateway_validates_the_rendered_stages(tmp_path):
    cli = ai_gateway()
    for overlay in OVERLAYS:
        path = tmp_path / f"{overlay}.yaml"
        path.write_text(yaml.safe_dump_all(render(overlay)))
        r = run([cli, "validate", path])
        assert r.returncode == 0, f"{overlay}: {r.stdout}{r.stderr}"
