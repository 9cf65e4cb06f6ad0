#!/usr/bin/env bash
# Package the filter as an OCI image that Istio can pull (`WasmPlugin.url: oci://…` or the
# EnvoyFilter's remote code), without a Docker engine: `make oci`.
#
#   scripts/oci.sh [WASM] [OUT_DIR]
#     WASM     default target/wasm32-wasip1/release/ai_gateway_filter.wasm
#     OUT_DIR  default target/oci/ai-gateway-filter (an OCI image layout, `oci:` in skopeo)
#
# The image is Istio's *compat* variant (pkg/wasm/imagefetcher.go, extractOCIStandardImage):
#   manifest  application/vnd.oci.image.manifest.v1+json
#   config    application/vnd.oci.image.config.v1+json   (os wasip1, architecture wasm)
#   layer     application/vnd.oci.image.layer.v1.tar+gzip, a tar holding one file: plugin.wasm
# Istio takes the *last* layer, checks that media type, gunzips it and reads `plugin.wasm`.
#
# Reproducible: the same .wasm gives the same bytes and digests on every machine (tar entry
# owned by 0:0, mode 0644, mtime = SOURCE_DATE_EPOCH (default 0); gzip header mtime 0, no file
# name; JSON with sorted keys, no whitespace; no creation time other than SOURCE_DATE_EPOCH).
#
# Environment:
#   OCI_TAG            the tag in index.json (org.opencontainers.image.ref.name);
#                      default: the crate version from Cargo.toml
#   SOURCE_DATE_EPOCH  timestamp for the tar entry and the config's `created` (default 0)
#   OCI_SOURCE, OCI_REVISION   optional org.opencontainers.image.{source,revision} annotations
#                      (set by CI; they change the manifest digest, never the layer)
#
# Prints the summary and writes it to OUT_DIR.json: {"tag","manifest_digest","wasm_sha256",
# "layer_digest","config_digest",...}. For a WasmPlugin / EnvoyFilter `sha256`, Istio compares
# the *manifest* digest (pkg/wasm/cache.go), not the .wasm's sha256: use manifest_digest there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

WASM=${1:-target/wasm32-wasip1/release/ai_gateway_filter.wasm}
OUT=${2:-target/oci/ai-gateway-filter}
PY=${PYTHON:-python3}

if [[ ! -f $WASM ]]; then
  echo "oci.sh: $WASM not found: run \`make wasm\` first" >&2
  exit 1
fi
if [[ -z ${OCI_TAG:-} ]]; then
  OCI_TAG=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)
fi

exec "$PY" - "$WASM" "$OUT" "$OCI_TAG" <<'PY'
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile

wasm_path, out, tag = sys.argv[1], sys.argv[2], sys.argv[3]
epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or 0)

wasm = open(wasm_path, "rb").read()
if wasm[:4] != b"\0asm":
    sys.exit(f"oci.sh: {wasm_path} is not a WebAssembly module (no \\0asm magic)")

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
INDEX = "application/vnd.oci.image.index.v1+json"


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# The layer: a tar with exactly one regular file, plugin.wasm.
tar_buf = io.BytesIO()
with tarfile.open(fileobj=tar_buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
    info = tarfile.TarInfo("plugin.wasm")
    info.size = len(wasm)
    info.mode = 0o644
    info.mtime = epoch
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    tar.addfile(info, io.BytesIO(wasm))
tar_bytes = tar_buf.getvalue()

gz_buf = io.BytesIO()
with gzip.GzipFile(filename="", mode="wb", fileobj=gz_buf, compresslevel=9, mtime=0) as gz:
    gz.write(tar_bytes)
layer = gz_buf.getvalue()

wasm_sha = hashlib.sha256(wasm).hexdigest()
created = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
config = canonical({
    "architecture": "wasm",
    "os": "wasip1",
    "created": created,
    "config": {"Labels": {"org.opencontainers.image.title": "ai-gateway-filter"}},
    "rootfs": {"type": "layers", "diff_ids": [sha(tar_bytes)]},
    "history": [{"created": created, "created_by": "scripts/oci.sh: plugin.wasm (Istio compat layer)"}],
})

annotations = {
    "org.opencontainers.image.title": "ai-gateway-filter",
    "org.opencontainers.image.description":
        "AI gateway proxy-wasm filter for Envoy / Istio (Istio compat image: plugin.wasm)",
    "org.opencontainers.image.version": tag,
    "org.opencontainers.image.licenses": "Apache-2.0",
    "org.opencontainers.image.created": created,
    "dev.ai-gateway.wasm.sha256": wasm_sha,
}
for env, key in (("OCI_SOURCE", "source"), ("OCI_REVISION", "revision")):
    if os.environ.get(env):
        annotations[f"org.opencontainers.image.{key}"] = os.environ[env]

manifest = canonical({
    "schemaVersion": 2,
    "mediaType": MANIFEST,
    "config": {"mediaType": CONFIG, "digest": sha(config), "size": len(config)},
    "layers": [{
        "mediaType": LAYER,
        "digest": sha(layer),
        "size": len(layer),
        "annotations": {"org.opencontainers.image.title": "plugin.wasm"},
    }],
    "annotations": annotations,
})
index = canonical({
    "schemaVersion": 2,
    "mediaType": INDEX,
    "manifests": [{
        "mediaType": MANIFEST,
        "digest": sha(manifest),
        "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }],
})

# Write the layout afresh (no stale blobs from an earlier build).
if os.path.isdir(out):
    shutil.rmtree(out)
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs)
for blob in (layer, config, manifest):
    with open(os.path.join(blobs, hashlib.sha256(blob).hexdigest()), "wb") as f:
        f.write(blob)
with open(os.path.join(out, "oci-layout"), "wb") as f:
    f.write(canonical({"imageLayoutVersion": "1.0.0"}))
with open(os.path.join(out, "index.json"), "wb") as f:
    f.write(index)

summary = {
    "layout": out,
    "tag": tag,
    "reference": f"oci:{out}:{tag}",
    "manifest_digest": sha(manifest),
    "config_digest": sha(config),
    "layer_digest": sha(layer),
    "layer_size": len(layer),
    "wasm": wasm_path,
    "wasm_size": len(wasm),
    "wasm_sha256": wasm_sha,
}
with open(out.rstrip("/") + ".json", "w") as f:
    json.dump(summary, f, indent=2)
    f.write("\n")
print(json.dumps(summary, indent=2))
PY
