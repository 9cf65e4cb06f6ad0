"""The GitHub Actions workflows: valid against the workflow schema (check-jsonschema's vendored
vendor.github-workflows), clean under actionlint (with shellcheck on every `run:` script), and
wired to what the issue asks: fmt/clippy/tests/wasm/validate/diff on every change, the OCI image
pushed with the .wasm's sha256 on main and tags, the canary deploy with automatic promote or
rollback, and a manual rollback. Every script and make target they call exists."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml
from deploy_helpers import REPO, run, tool

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def load(name: str) -> dict:
    doc = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads `on:` as True
    return doc


def steps_text(job: dict) -> str:
    return "\n".join(str(s.get("run", "")) + " " + str(s.get("uses", "")) for s in job.get("steps", []))


def test_the_workflows_exist():
    assert {p.name for p in WORKFLOWS} == {"ci.yml", "deploy.yml", "rollback.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_workflow_matches_the_github_workflow_schema(path):
    r = run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", path])
    assert r.returncode == 0, r.stdout + r.stderr


def test_actionlint_with_shellcheck_is_clean():
    tool("shellcheck")  # actionlint checks the `run:` scripts only when shellcheck is on PATH
    env = dict(os.environ, PATH=f"{os.path.dirname(shutil.which('shellcheck'))}:{os.environ['PATH']}")
    r = run([tool("actionlint"), *WORKFLOWS], env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_actionlint_really_catches_mistakes(tmp_path):
    tool("shellcheck")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    wf = tmp_path / ".github" / "workflows"
    wf.mkdir(parents=True)
    (wf / "bad.yml").write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }} $UNQUOTED\n"
        "      - uses: actions/checkout@v4\n        with:\n          no-such-input: 1\n"
    )
    r = run([tool("actionlint")], cwd=tmp_path)
    assert r.returncode == 1
    assert "no-such-input" in r.stdout and "shellcheck" in r.stdout, r.stdout


def test_ci_runs_the_checks_on_every_change():
    ci = load("ci.yml")
    assert "pull_request" in ci["on"] and ci["on"]["push"]["branches"] == ["main"] and ci["on"]["push"]["tags"] == ["v*"]
    assert ci["permissions"] == {"contents": "read"}
    jobs = ci["jobs"]
    lint = steps_text(jobs["lint"])
    assert "cargo fmt --all -- --check" in lint
    assert "cargo clippy --workspace --all-targets -- -D warnings" in lint
    assert "--target wasm32-wasip1" in lint and "clippy" in lint
    assert "make test" in steps_text(jobs["test"])
    assert "install-deploy-tools.sh" in steps_text(jobs["test"])
    wasm = steps_text(jobs["wasm"])
    assert "make wasm" in wasm and "make oci" in wasm and "sha256sum" in wasm and "upload-artifact" in wasm
    validate = steps_text(jobs["validate"])
    assert "cargo build --release -p ai-gateway" in validate
    assert "scripts/ci/validate-configs.sh" in validate
    assert re.search(r"scripts/ci/config-diff\.sh .*>> \"\$GITHUB_STEP_SUMMARY\"", validate)
    assert jobs["validate"]["steps"][0]["with"]["fetch-depth"] == 0, "the diff needs the base commit"


def test_main_and_tags_publish_the_image_with_the_wasm_sha256():
    ci = load("ci.yml")
    pub = ci["jobs"]["publish"]
    assert pub["if"] == "github.event_name == 'push'"
    assert set(pub["needs"]) == {"lint", "test", "wasm", "validate"}
    assert pub["permissions"]["packages"] == "write"
    text = steps_text(pub)
    assert "ghcr.io/${GITHUB_REPOSITORY_OWNER,,}/ai-gateway-filter" in text
    assert "scripts/ci/publish-oci.sh" in text and "skopeo login ghcr.io" in text
    assert "gh release upload" in text and "ai_gateway_filter.wasm.sha256" in text
    assert set(pub["outputs"]) >= {"url", "digest", "wasm_sha256"}


def test_tags_deploy_a_canary_that_promotes_or_rolls_back():
    ci = load("ci.yml")
    deploy = ci["jobs"]["deploy"]
    assert deploy["uses"] == "./.github/workflows/deploy.yml"
    assert "startsWith(github.ref, 'refs/tags/v')" in deploy["if"] and deploy["needs"] == "publish"
    assert deploy["with"]["image_digest"] == "${{ needs.publish.outputs.digest }}"

    wf = load("deploy.yml")
    assert {"workflow_call", "workflow_dispatch"} <= set(wf["on"])
    assert wf["concurrency"]["cancel-in-progress"] is False
    job = wf["jobs"]["canary"]
    assert job["environment"] == "production"
    text = steps_text(job)
    assert "scripts/ci/set-image.sh" in text
    assert "scripts/ci/canary.sh deploy" in text and "--weight" in text and "--wait" in text
    promote_pr = [s for s in job["steps"] if s.get("name", "").lower().startswith("pull request")]
    assert promote_pr and promote_pr[0]["if"] == "steps.canary.outputs.verdict == 'promote'"


def test_a_manual_rollback_exists():
    wf = load("rollback.yml")
    assert set(wf["on"]) == {"workflow_dispatch"}
    assert wf["on"]["workflow_dispatch"]["inputs"]["canary"]["required"] is True
    assert "scripts/ci/canary.sh rollback" in steps_text(wf["jobs"]["rollback"])
    assert wf["concurrency"]["group"] == load("deploy.yml")["concurrency"]["group"], "a rollback never races a deploy"


def test_every_script_and_make_target_the_workflows_call_exists():
    text = "\n".join(p.read_text() for p in WORKFLOWS)
    scripts = set(re.findall(r"(scripts/[\w./-]+\.(?:sh|py))", text))
    assert scripts
    for s in scripts:
        assert (REPO / s).is_file() and os.access(REPO / s, os.X_OK), f"{s} missing or not executable"
    targets = set(re.findall(r"\bmake ([a-z][\w-]*)", text))
    assert {"test", "wasm", "oci"} <= targets
    for t in targets:
        r = run(["make", "-n", t])
        assert r.returncode == 0, f"make {t}: {r.stderr}"
