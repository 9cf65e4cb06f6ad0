"""Validate Istio resources against the CRDs vendored in schemas/ (see schemas/README.md), the
way the API server would: the version's openAPIV3Schema as JSON Schema, unknown fields refused
(kubectl's default field validation is Strict), and every x-kubernetes-validations CEL rule
evaluated with cel-python (plus the Kubernetes CEL library functions those rules use)."""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import celpy
import celpy.celtypes as ct
import jsonschema
import yaml

SCHEMAS = Path(__file__).resolve().parent / "schemas"
CRD_FILE = SCHEMAS / "istio-1.30.3-crds.yaml"
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@lru_cache(maxsize=None)
def crds() -> dict[tuple[str, str], dict]:
    """(group, kind) → CRD document."""
    out = {}
    for doc in yaml.safe_load_all(CRD_FILE.read_text()):
        if doc and doc.get("kind") == "CustomResourceDefinition":
            out[(doc["spec"]["group"], doc["spec"]["names"]["kind"])] = doc
    return out


def version_schema(api_version: str, kind: str) -> dict:
    group, _, version = api_version.partition("/")
    crd = crds().get((group, kind))
    assert crd, f"no vendored CRD for {api_version} {kind} (have: {sorted(crds())})"
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            assert v.get("served"), f"{api_version} {kind} is not served by Istio 1.30"
            return v["schema"]["openAPIV3Schema"]
    raise AssertionError(f"{kind}: version {version} not in the CRD (served: {[v['name'] for v in crd['spec']['versions']]})")


def strict(schema):
    """Kubernetes structural schema → JSON Schema that refuses unknown fields."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    s = {k: strict(v) for k, v in schema.items()}
    if s.get("x-kubernetes-int-or-string"):
        s.pop("type", None)
        s.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if s.get("nullable"):
        t = s.get("type")
        if isinstance(t, str):
            s["type"] = [t, "null"]
    if "properties" in s and "additionalProperties" not in s and not s.get("x-kubernetes-preserve-unknown-fields"):
        s["additionalProperties"] = False
    return s


# ---- CEL -------------------------------------------------------------------------------------


def _is_url(s) -> ct.BoolType:
    # Kubernetes' isURL: Go's url.ParseRequestURI succeeds (an absolute URI or an absolute path).
    s = str(s)
    p = urlparse(s)
    return ct.BoolType(bool((p.scheme and (p.netloc or p.path)) or s.startswith("/")) and " " not in s)


def _url(s):
    return ct.StringType(str(s))


def _get_scheme(u) -> ct.StringType:
    return ct.StringType(urlparse(str(u)).scheme)


def _get_host(u) -> ct.StringType:
    return ct.StringType(urlparse(str(u)).netloc)


CEL_FUNCTIONS = {"isURL": _is_url, "url": _url, "getScheme": _get_scheme, "getHost": _get_host}


@lru_cache(maxsize=None)
def _program(rule: str):
    env = celpy.Environment()
    return env.program(env.compile(rule), functions=CEL_FUNCTIONS)


def cel_errors(schema: dict, value, path: str = "") -> list[str]:
    """Evaluate every x-kubernetes-validations rule that applies to `value` (recursively)."""
    errors = []
    for rule in schema.get("x-kubernetes-validations", []):
        try:
            ok = _program(rule["rule"]).evaluate({"self": celpy.json_to_cel(value)})
        except Exception as e:  # an unevaluable rule is a test failure, never a pass
            errors.append(f"{path or '.'}: CEL rule {rule['rule']!r} could not be evaluated: {e!r}")
            continue
        if not bool(ok):
            errors.append(f"{path or '.'}: {rule.get('message', 'CEL rule failed')} ({rule['rule']})")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            if k in props:
                errors += cel_errors(props[k], v, f"{path}.{k}")
            elif isinstance(extra, dict):
                errors += cel_errors(extra, v, f"{path}.{k}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            errors += cel_errors(schema["items"], v, f"{path}[{i}]")
    return errors


def istio_errors(doc: dict) -> list[str]:
    """Every reason the API server (Istio CRDs 1.30.3) would refuse `doc`."""
    errors = []
    meta = doc.get("metadata", {})
    name = meta.get("name", "")
    if not DNS1123_SUBDOMAIN.match(name) or len(name) > 253:
        errors.append(f"metadata.name {name!r} is not a DNS-1123 subdomain")
    ns = meta.get("namespace")
    if ns is not None and not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", ns):
        errors.append(f"metadata.namespace {ns!r} is not a DNS-1123 label")
    schema = version_schema(doc["apiVersion"], doc["kind"])
    body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
    validator = jsonschema.Draft7Validator(strict(copy.deepcopy(schema)))
    for e in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
        errors.append(f"{'.'.join(map(str, e.absolute_path)) or '.'}: {e.message}")
    errors += cel_errors(schema, body)
    return errors
