"""`make oci`: the filter as an OCI image in Istio's compat form, reproducible, and the same
bytes after a round trip through a real registry (Debian's docker-registry on 127.0.0.1,
pushed and pulled with skopeo).

What Istio accepts is read from istio/istio pkg/wasm/imagefetcher.go: a manifest that is not
Docker's schema 2 is tried as the compat variant first (extractOCIStandardImage): the *last*
layer must have media type application/vnd.oci.image.layer.v1.tar+gzip, is gunzipped and
walked as a tar until an entry whose base name is plugin.wasm; cache.go then checks the wasm
magic and compares the WasmPlugin `sha256` with the image's *manifest* digest."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import signal
import socket
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import requests
from deploy_helpers import REPO, WASM, require_wasm, run, tool

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def build(out: Path, **env) -> dict:
    require_wasm()
    r = run([REPO / "scripts" / "oci.sh", WASM, out], env={**os.environ, **env}, check=True)
    summary = json.loads(r.stdout)
    assert json.loads(Path(str(out) + ".json").read_text()) == summary
    return summary


class Layout:
    """An OCI image layout on disk (what `make oci` writes and `skopeo copy … oci:` reads)."""

    def __init__(self, root: Path):
        self.root = root
        self.index = json.loads((root / "index.json").read_text())

    def blob(self, digest: str) -> bytes:
        algo, hexd = digest.split(":")
        data = (self.root / "blobs" / algo / hexd).read_bytes()
        assert hashlib.sha256(data).hexdigest() == hexd, f"blob {digest} does not match its digest"
        return data

    def manifest(self) -> tuple[dict, bytes]:
        (desc,) = self.index["manifests"]
        raw = self.blob(desc["digest"])
        assert desc["size"] == len(raw)
        return json.loads(raw), raw


def istio_extract(manifest: dict, get_blob) -> bytes:
    """Istio's compat-variant extraction (imagefetcher.go), step for step."""
    assert manifest.get("mediaType") != DOCKER_MANIFEST, "a Docker manifest takes Istio's other path"
    layers = manifest["layers"]
    assert layers, "number of layers must be greater than zero"
    layer = layers[-1]
    assert layer["mediaType"] == LAYER, f"invalid media type {layer['mediaType']} (expect {LAYER})"
    with tarfile.open(fileobj=gzip.GzipFile(fileobj=io.BytesIO(get_blob(layer["digest"])))) as tar:
        for member in tar:
            if posixpath.basename(member.name) == "plugin.wasm":
                data = tar.extractfile(member).read()
                assert len(data) >= 8 and data[:4] == b"\0asm", "not a valid Wasm binary (isValidWasmBinary)"
                return data
    raise AssertionError("plugin.wasm not found in the archive")


def test_the_image_is_istio_compat_and_holds_the_filter_byte_for_byte(tmp_path):
    summary = build(tmp_path / "img")
    layout = Layout(tmp_path / "img")
    assert json.loads((layout.root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert layout.index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    (desc,) = layout.index["manifests"]
    assert desc["mediaType"] == MANIFEST
    assert desc["annotations"]["org.opencontainers.image.ref.name"] == summary["tag"]

    manifest, raw = layout.manifest()
    assert summary["manifest_digest"] == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == MANIFEST
    assert manifest["config"]["mediaType"] == CONFIG
    assert [l["mediaType"] for l in manifest["layers"]] == [LAYER], "one tar+gzip layer (the compat form)"
    wasm = WASM.read_bytes()
    assert istio_extract(manifest, layout.blob) == wasm

    # The layer holds exactly one regular file, plugin.wasm, owned by root, mode 0644.
    layer = layout.blob(manifest["layers"][0]["digest"])
    assert manifest["layers"][0]["size"] == len(layer)
    tar_bytes = gzip.decompress(layer)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        (member,) = tar.getmembers()
        assert (member.name, member.isreg(), member.mode, member.uid, member.gid) == ("plugin.wasm", True, 0o644, 0, 0)

    # The config is a proper OCI image config whose diff_id is the uncompressed layer.
    config = json.loads(layout.blob(manifest["config"]["digest"]))
    assert (config["os"], config["architecture"]) == ("wasip1", "wasm")
    assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]}

    # The .wasm's own sha256 travels with the image (and in the summary CI publishes).
    assert summary["wasm_sha256"] == hashlib.sha256(wasm).hexdigest()
    assert manifest["annotations"]["dev.ai-gateway.wasm.sha256"] == summary["wasm_sha256"]
    # Nothing else lies in the layout: blobs are exactly config, layer, manifest.
    blobs = sorted(p.name for p in (layout.root / "blobs" / "sha256").iterdir())
    assert blobs == sorted(d.split(":")[1] for d in (summary["manifest_digest"], summary["config_digest"], summary["layer_digest"]))


def test_the_image_is_reproducible(tmp_path):
    env = {"SOURCE_DATE_EPOCH": "", "OCI_SOURCE": "", "OCI_REVISION": ""}
    a = build(tmp_path / "a", **env)
    b = build(tmp_path / "b", **env)
    for key in ("manifest_digest", "config_digest", "layer_digest"):
        assert a[key] == b[key], key
    files = lambda root: {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert files(tmp_path / "a") == files(tmp_path / "b"), "two builds of the same .wasm differ"
    layer = (tmp_path / "a" / "blobs" / "sha256" / a["layer_digest"].split(":")[1]).read_bytes()
    assert layer[4:8] == b"\0\0\0\0", "the gzip header carries a timestamp"

    # SOURCE_DATE_EPOCH is the only clock: it changes the tar entry and the config, never the file.
    c = build(tmp_path / "c", SOURCE_DATE_EPOCH="1767225600")
    assert c["layer_digest"] != a["layer_digest"] and c["wasm_sha256"] == a["wasm_sha256"]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress((tmp_path / "c" / "blobs" / "sha256" / c["layer_digest"].split(":")[1]).read_bytes()))) as tar:
        assert tar.getmembers()[0].mtime == 1767225600


def test_oci_refuses_what_is_not_wasm(tmp_path):
    bogus = tmp_path / "x.wasm"
    bogus.write_bytes(b"#!/bin/sh\n")
    r = run([REPO / "scripts" / "oci.sh", bogus, tmp_path / "img"])
    assert r.returncode != 0 and "not a WebAssembly module" in r.stderr
    r = run([REPO / "scripts" / "oci.sh", tmp_path / "missing.wasm", tmp_path / "img"])
    assert r.returncode != 0 and "make wasm" in r.stderr


# ---- a real registry on loopback ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """Debian's docker-registry (distribution 2.8) on 127.0.0.1, storage in a temp dir."""
    binary = tool("docker-registry")
    root = tmp_path_factory.mktemp("registry")
    for attempt in range(5):
        port = free_port()
        config = root / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log: {level: warn, accesslog: {disabled: true}}\n"
            f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
            f"http: {{addr: 127.0.0.1:{port}, secret: deploy-tier-test}}\n"
        )
        log = open(root / f"registry-{attempt}.log", "w")
        proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        if proc.poll() is None:
            break
        log.close()
    else:
        pytest.fail(f"docker-registry did not start: {(root / 'registry-4.log').read_text()[-2000:]}")
    policy = root / "policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    yield {"addr": f"127.0.0.1:{port}", "policy": policy, "root": root}
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def skopeo(registry, *args, timeout=120):
    env = {**os.environ, "XDG_RUNTIME_DIR": str(registry["root"]), "HOME": str(registry["root"])}
    return run([tool("skopeo"), "--policy", registry["policy"], *args], env=env, timeout=timeout, check=True)


def test_push_to_a_registry_and_pull_back_byte_identical(tmp_path, registry):
    summary = build(tmp_path / "img")
    ref = f"{registry['addr']}/ai-gateway/ai-gateway-filter:{summary['tag']}"
    skopeo(registry, "copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'img'}:{summary['tag']}", f"docker://{ref}")

    # The registry serves our manifest unchanged: same digest (the WasmPlugin's sha256), OCI type.
    raw = skopeo(registry, "inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout.encode()
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == summary["manifest_digest"]
    name, tag = ref.split("/", 1)[1].rsplit(":", 1)
    base = f"http://{registry['addr']}/v2/{name}"
    r = requests.get(f"{base}/manifests/{tag}", headers={"Accept": MANIFEST}, timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == MANIFEST
    assert r.headers["Docker-Content-Digest"] == summary["manifest_digest"]
    manifest = r.json()
    assert manifest["config"]["mediaType"] == CONFIG and [l["mediaType"] for l in manifest["layers"]] == [LAYER]

    # What Istio's fetcher would do against this registry.
    def blob(digest):
        b = requests.get(f"{base}/blobs/{digest}", timeout=10)
        assert b.status_code == 200
        assert hashlib.sha256(b.content).hexdigest() == digest.split(":")[1]
        return b.content

    assert istio_extract(manifest, blob) == WASM.read_bytes()

    # And back into a layout with skopeo: the same plugin.wasm.
    skopeo(registry, "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{tmp_path / 'pulled'}:{summary['tag']}")
    pulled = Layout(tmp_path / "pulled")
    pm, praw = pulled.manifest()
    assert "sha256:" + hashlib.sha256(praw).hexdigest() == summary["manifest_digest"]
    assert istio_extract(pm, pulled.blob) == WASM.read_bytes()


def test_publish_script_pushes_every_tag_and_reports_the_digest(tmp_path, registry):
    """scripts/ci/publish-oci.sh, as CI's publish job runs it (there against ghcr.io)."""
    tool("skopeo")
    build(REPO / "target" / "oci" / "ai-gateway-filter")  # the layout `make oci` makes
    summary = json.loads((REPO / "target" / "oci" / "ai-gateway-filter.json").read_text())
    repo = f"{registry['addr']}/acme/ai-gateway-filter"
    out = tmp_path / "github_output"
    env = {**os.environ, "SKOPEO_TLS_VERIFY": "false", "SKOPEO_POLICY": str(registry["policy"]),
           "GITHUB_OUTPUT": str(out), "XDG_RUNTIME_DIR": str(registry["root"])}
    r = run([REPO / "scripts" / "ci" / "publish-oci.sh", repo, "1.2.3", "sha-0123abcd"], env=env, check=True)
    expected = [f"url=oci://{repo}:1.2.3", f"digest={summary['manifest_digest']}", f"wasm_sha256={summary['wasm_sha256']}"]
    assert r.stdout.split() == expected
    assert out.read_text().split() == expected
    for tag in ("1.2.3", "sha-0123abcd"):
        got = requests.get(f"http://{registry['addr']}/v2/acme/ai-gateway-filter/manifests/{tag}",
                           headers={"Accept": MANIFEST}, timeout=10)
        assert got.headers["Docker-Content-Digest"] == summary["manifest_digest"]
