"""The scripts the workflows call (scripts/ci/*, scripts/oci.sh), run here with stub `kubectl`
and `ai-gateway` where a cluster or the CLI would be: shellcheck-clean, and doing what the
workflows rely on (exit codes, files rewritten, GitHub outputs and annotations)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from deploy_helpers import DEPLOY, REPO, load_json, read_env, run, tool

SCRIPTS = sorted((REPO / "scripts" / "ci").glob("*.sh")) + [REPO / "scripts" / "oci.sh"]
PY = REPO / ".venv" / "bin" / "python"


def test_scripts_pass_shellcheck():
    r = run([tool("shellcheck"), "-x", *SCRIPTS])
    assert r.returncode == 0, r.stdout


def test_list_configs_names_every_config_once():
    r = run([REPO / "scripts" / "ci" / "list-configs.sh"], check=True)
    files = r.stdout.split()
    assert len(files) == len(set(files))
    assert {"envoy/demo.yaml", "envoy/holysheep.yaml", "envoy/compose.yaml", "deploy/base/plugin-config.json",
            "deploy/overlays/canary/plugin-config.json", "deploy/istio-wasmplugin/wasmplugin.yaml"} <= set(files)
    assert all((REPO / f).is_file() for f in files)


# ---- a scratch copy of the repository, with stubs on PATH -----------------------------------

STUB_AI_GATEWAY = textwrap.dedent(
    """\
    #!/usr/bin/env python3
    # A stand-in for target/release/ai-gateway: logs its arguments, and does to the config
    # file what the real CLI's `canary` commands do, on the weights only.
    import json, os, sys
    args = sys.argv[1:]
    with open(os.environ["STUB_LOG"], "a") as log:
        log.write("ai-gateway " + " ".join(args) + "\\n")
    def opt(name):
        return args[args.index(name) + 1]
    def edit(path, fn):
        cfg = json.load(open(path))
        route = next(r for r in cfg["routes"] if r["name"] == opt("--route"))
        fn(route)
        json.dump(cfg, open(path, "w"), indent=2)
    def is_target(t, ref):
        model, _, version = ref.partition("@")
        return t["model"] == model and (not version or t.get("version", version) == version)
    if args[:2] == ["canary", "set-weight"]:
        def fn(route):
            for t in route["targets"]:
                if is_target(t, opt("--target")):
                    t["weight"] = int(opt("--weight"))
        edit(args[2], fn)
    elif args[:2] == ["canary", "promote"]:
        def fn(route):
            for t in route["targets"]:
                t["weight"] = 100 if is_target(t, opt("--canary")) else 0
        edit(args[2], fn)
    elif args[:2] == ["canary", "rollback"]:
        def fn(route):
            for t in route["targets"]:
                if is_target(t, opt("--canary")):
                    t["weight"] = 0
        edit(args[2], fn)
    elif args[:2] == ["canary", "analyze"]:
        sys.exit(int(os.environ.get("STUB_ANALYZE_EXIT", "0")))
    elif args and args[0] == "validate":
        if "--format" in args:
            print(json.dumps({"files": [{"file": args[-1], "errors": [{"path": "routes[0].targets[0].model",
                                                                     "message": "unknown model \\"nope\\""}]}]}))
        sys.exit(int(os.environ.get("STUB_VALIDATE_EXIT", "0")))
    elif args and args[0] == "diff":
        print(f"| route | before | after |\\n| --- | --- | --- |\\n| chat | {args[1]} | {args[2]} |")
    """
)
STUB_KUBECTL = '#!/bin/sh\necho "kubectl $*" >> "$STUB_LOG"\n'


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def scratch(tmp_path):
    """scripts/, deploy/ and envoy/ copied to a git repository of their own; stub tools."""
    root = tmp_path / "repo"
    for d in ("scripts", "deploy", "envoy"):
        shutil.copytree(REPO / d, root / d)
    (root / ".venv").mkdir()
    (root / ".venv" / "bin").symlink_to(REPO / ".venv" / "bin")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = executable(bin_dir / "ai-gateway", STUB_AI_GATEWAY)
    executable(bin_dir / "kubectl", STUB_KUBECTL)
    log = tmp_path / "calls.log"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", STUB_LOG=str(log), AI_GATEWAY=str(stub),
               GITHUB_OUTPUT=str(tmp_path / "output"), GITHUB_STEP_SUMMARY=str(tmp_path / "summary"))
    env.pop("GITHUB_ACTIONS", None)
    git = lambda *a: subprocess.run(["git", *a], cwd=root, check=True, capture_output=True)
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base")

    class Scratch:
        pass

    s = Scratch()
    s.root, s.env, s.log, s.tmp, s.git = root, env, log, tmp_path, git
    s.calls = lambda: log.read_text().splitlines() if log.exists() else []
    s.output = lambda: (tmp_path / "output").read_text() if (tmp_path / "output").exists() else ""
    s.run = lambda *cmd, **kw: run([root / cmd[0], *cmd[1:]], cwd=root, env={**env, **kw.pop("env", {})}, **kw)
    return s


CANARY = "deepseek-v3.2@2.0.0-canary.1"


def canary_weight(path: Path) -> int:
    (route,) = [r for r in load_json(path)["routes"] if r["name"] == "chat"]
    return sum(t["weight"] for t in route["targets"] if t["model"] == "deepseek-v3.2")


def test_canary_deploy_then_promote(scratch):
    r = scratch.run("scripts/ci/canary.sh", "deploy", "--route", "chat", "--canary", CANARY, "--weight", "25",
                    "--wait", "0", "--prometheus", "http://127.0.0.1:9")
    assert r.returncode == 0, r.stdout + r.stderr
    calls = scratch.calls()
    assert calls == [
        f"ai-gateway canary set-weight deploy/overlays/canary/plugin-config.json --route chat --target {CANARY} --weight 25",
        "ai-gateway validate deploy/overlays/canary/plugin-config.json",
        "kubectl apply -k deploy/overlays/canary",
        f"ai-gateway canary analyze --prometheus http://127.0.0.1:9 --route chat --canary {CANARY}",
        f"ai-gateway canary promote deploy/overlays/canary/plugin-config.json --route chat --canary {CANARY}",
        "ai-gateway validate deploy/overlays/canary/plugin-config.json",
        "kubectl apply -k deploy/overlays/stable",
    ]
    assert "verdict=promote" in scratch.output()
    # The promoted configuration is now the stable one, in deploy/ and in envoy/holysheep.yaml.
    base = scratch.root / "deploy" / "base" / "plugin-config.json"
    assert load_json(base) == load_json(scratch.root / "deploy" / "overlays" / "canary" / "plugin-config.json")
    assert canary_weight(base) == 100
    holy = yaml.safe_load((scratch.root / "envoy" / "holysheep.yaml").read_text())
    hf = holy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
    envoy_cfg = json.loads(next(f for f in hf if f["name"] == "envoy.filters.http.wasm")["typed_config"]["config"]["configuration"]["value"])
    assert envoy_cfg["routes"] == load_json(base)["routes"]
    assert envoy_cfg["upstream"]["cluster"] == "holysheep", "the Istio cluster name leaked into the Envoy config"
    # Comments of the Envoy config survive, and every derived file is in step again.
    assert "# ai-gateway-filter in front of the real provider" in (scratch.root / "envoy" / "holysheep.yaml").read_text()
    assert run([PY, scratch.root / "scripts" / "ci" / "sync-deploy.py", "--check"]).returncode == 0


@pytest.mark.parametrize("status,verdict,code", [(10, "hold", 0), (20, "rollback", 1), (3, "rollback", 1)])
def test_canary_analysis_verdicts(scratch, status, verdict, code):
    base_before = (scratch.root / "deploy" / "base" / "plugin-config.json").read_text()
    r = scratch.run("scripts/ci/canary.sh", "deploy", "--route", "chat", "--canary", CANARY, "--weight", "30",
                    "--wait", "0", "--prometheus", "http://127.0.0.1:9", env={"STUB_ANALYZE_EXIT": str(status)})
    assert r.returncode == code, r.stdout + r.stderr
    assert f"verdict={verdict}" in scratch.output()
    calls = scratch.calls()
    canary_file = scratch.root / "deploy" / "overlays" / "canary" / "plugin-config.json"
    if verdict == "hold":
        assert calls[-1].startswith("ai-gateway canary analyze") and canary_weight(canary_file) == 30
    else:
        assert calls[-2:] == [
            f"ai-gateway canary rollback deploy/overlays/canary/plugin-config.json --route chat --canary {CANARY}",
            "kubectl apply -k deploy/overlays/stable",
        ]
        assert canary_weight(canary_file) == 0
    assert (scratch.root / "deploy" / "base" / "plugin-config.json").read_text() == base_before, "stable changed"
    assert "rolled back" in (scratch.tmp / "summary").read_text() or verdict == "hold"


def test_manual_rollback_and_bad_arguments(scratch):
    r = scratch.run("scripts/ci/canary.sh", "rollback", "--route", "chat", "--canary", CANARY)
    assert r.returncode == 0, r.stderr
    assert scratch.calls()[-1] == "kubectl apply -k deploy/overlays/stable"
    assert scratch.run("scripts/ci/canary.sh", "deploy", "--route", "chat", "--canary", "no-version").returncode == 2
    assert scratch.run("scripts/ci/canary.sh", "deploy", "--route", "chat", "--canary", CANARY, "--weight", "x").returncode == 2
    assert scratch.run("scripts/ci/canary.sh", "launch", "--route", "chat", "--canary", CANARY).returncode == 2


def test_set_image_points_the_deployment_at_a_published_image(scratch):
    digest = "ab" * 32
    r = scratch.run("scripts/ci/set-image.sh", "oci://ghcr.io/acme/ai-gateway-filter:1.2.3", f"sha256:{digest}")
    assert r.returncode == 0, r.stderr
    assert read_env(scratch.root / "deploy" / "base" / "image.env") == {
        "WASM_URL": "oci://ghcr.io/acme/ai-gateway-filter:1.2.3", "WASM_SHA256": digest}
    wp = yaml.safe_load((scratch.root / "deploy" / "istio-wasmplugin" / "wasmplugin.yaml").read_text())
    assert (wp["spec"]["url"], wp["spec"]["sha256"]) == ("oci://ghcr.io/acme/ai-gateway-filter:1.2.3", digest)
    assert "# The filter's OCI image" in (scratch.root / "deploy" / "base" / "image.env").read_text(), "comments lost"
    for bad in (("https://x/y:1", f"sha256:{digest}"), ("oci://ghcr.io/a/b:1", "sha256:1234")):
        assert scratch.run("scripts/ci/set-image.sh", *bad).returncode == 2


def test_validate_configs_passes_the_exit_status_and_annotates_under_actions(scratch):
    r = scratch.run("scripts/ci/validate-configs.sh")
    assert r.returncode == 0, r.stderr
    (call,) = scratch.calls()
    listed = run([scratch.root / "scripts" / "ci" / "list-configs.sh"], cwd=scratch.root).stdout.split()
    assert call == "ai-gateway validate " + " ".join(listed)
    r = scratch.run("scripts/ci/validate-configs.sh", "envoy/demo.yaml",
                    env={"STUB_VALIDATE_EXIT": "1", "GITHUB_ACTIONS": "true"})
    assert r.returncode == 1
    assert '::error file=envoy/demo.yaml,title=ai-gateway validate::routes[0].targets[0].model: unknown model "nope"' in r.stdout
    r = scratch.run("scripts/ci/validate-configs.sh", env={"AI_GATEWAY": str(scratch.tmp / "none")})
    assert r.returncode == 2 and "cargo build --release -p ai-gateway" in r.stderr


def test_config_diff_reports_changed_configs_only(scratch):
    r = scratch.run("scripts/ci/config-diff.sh", "HEAD")
    assert r.returncode == 0 and "No gateway configuration changed." in r.stdout
    canary = scratch.root / "deploy" / "overlays" / "canary" / "plugin-config.json"
    cfg = load_json(canary)
    cfg["routes"][0]["targets"][0]["weight"] = 50
    canary.write_text(json.dumps(cfg, indent=2))
    (scratch.root / "deploy" / "base" / "kustomization.yaml").write_text("# not a gateway config\n")
    r = scratch.run("scripts/ci/config-diff.sh", "HEAD")
    assert r.returncode == 0, r.stderr
    assert "### `deploy/overlays/canary/plugin-config.json`" in r.stdout
    assert "kustomization" not in r.stdout
    (diff,) = [c for c in scratch.calls() if c.startswith("ai-gateway diff")]
    assert diff.endswith("--format markdown")
    # Against a commit: a removed config is said so.
    scratch.git("rm", "-q", "envoy/compose.yaml")
    scratch.git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "rm")
    r = scratch.run("scripts/ci/config-diff.sh", "HEAD~1", "HEAD")
    assert "### `envoy/compose.yaml`" in r.stdout and "Configuration removed." in r.stdout


def test_sync_to_envoy_round_trips(scratch):
    base = scratch.root / "deploy" / "base" / "plugin-config.json"
    cfg = load_json(base)
    cfg["timeout_ms"] = 45000
    base.write_text(json.dumps(cfg, indent=2))
    sync = scratch.root / "scripts" / "ci" / "sync-deploy.py"
    assert run([PY, sync, "--check"]).returncode == 1, "a hand-edited base config must show as stale"
    run([PY, sync, "--to-envoy"], check=True)
    assert run([PY, sync, "--check"]).returncode == 0
    diff = subprocess.run(["git", "diff", "--stat"], cwd=scratch.root, capture_output=True, text=True).stdout
    assert "envoy/holysheep.yaml" in diff and "envoy/demo.yaml" not in diff


def test_install_deploy_tools_does_nothing_when_everything_is_there(tmp_path):
    for t in ("skopeo", "docker-registry", "promtool", "shellcheck"):
        executable(tmp_path / t, "#!/bin/sh\nexit 0\n")
    executable(tmp_path / "apt-get", "#!/bin/sh\necho apt-get called >&2; exit 1\n")
    r = run([REPO / "scripts" / "ci" / "install-deploy-tools.sh"], env=dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}"))
    assert r.returncode == 0 and "apt-get" not in r.stderr


# ---- with the real CLI (tools/ai-gateway), once built -----------------------------------------


def real_cli():
    from deploy_helpers import AI_GATEWAY

    if not AI_GATEWAY.exists():
        pytest.skip(f"{AI_GATEWAY.relative_to(REPO)} not built yet (cargo build --release -p ai-gateway)")
    return AI_GATEWAY


def test_canary_flow_with_the_real_cli(scratch):
    """canary.sh with the real `ai-gateway` (only `canary analyze` stubbed: no Prometheus here):
    the weights it writes are the real CLI's, validated; promote makes the canary the stable."""
    cli = real_cli()
    wrapper = executable(scratch.tmp / "bin" / "ai-gateway-real", textwrap.dedent(f"""\
        #!/bin/sh
        echo "ai-gateway $*" >> "$STUB_LOG"
        if [ "$1 $2" = "canary analyze" ]; then exit "${{STUB_ANALYZE_EXIT:-0}}"; fi
        exec {cli} "$@"
        """))
    env = {"AI_GATEWAY": str(wrapper)}
    canary_file = scratch.root / "deploy" / "overlays" / "canary" / "plugin-config.json"
    r = scratch.run("scripts/ci/canary.sh", "deploy", "--route", "chat", "--canary", CANARY, "--weight", "30",
                    "--wait", "0", "--prometheus", "http://127.0.0.1:9", env={**env, "STUB_ANALYZE_EXIT": "10"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert canary_weight(canary_file) == 30 and "verdict=hold" in scratch.output()
    r = scratch.run("scripts/ci/canary.sh", "analyze", "--route", "chat", "--canary", CANARY,
                    "--prometheus", "http://127.0.0.1:9", env={**env, "STUB_ANALYZE_EXIT": "0"})
    assert r.returncode == 0, r.stdout + r.stderr
    base = scratch.root / "deploy" / "base" / "plugin-config.json"
    assert canary_weight(base) == 100 and load_json(base) == load_json(canary_file)
    assert run([cli, "validate", base, scratch.root / "envoy" / "holysheep.yaml"]).returncode == 0
    assert run([PY, scratch.root / "scripts" / "ci" / "sync-deploy.py", "--check"]).returncode == 0


def test_config_diff_with_the_real_cli(scratch):
    real_cli()
    canary_file = scratch.root / "deploy" / "overlays" / "canary" / "plugin-config.json"
    run([real_cli(), "canary", "set-weight", canary_file, "--route", "chat", "--target", CANARY, "--weight", "50"],
        check=True)
    r = scratch.run("scripts/ci/config-diff.sh", "HEAD", env={"AI_GATEWAY": str(real_cli())})
    assert r.returncode == 0, r.stderr
    assert "### `deploy/overlays/canary/plugin-config.json`" in r.stdout
    assert "chat" in r.stdout and "deepseek-v3.2" in r.stdout, r.stdout
    assert "a/deploy/overlays/canary/plugin-config.json" in r.stdout, "the report should name the file"


def test_install_deploy_tools_installs_what_is_missing(tmp_path):
    """With the tools off PATH: apt-get (a stub here) is asked for exactly their packages."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for t in ("sort", "id", "tee", "chmod", "rm"):
        (bin_dir / t).symlink_to(shutil.which(t))
    executable(bin_dir / "apt-get", f'#!/bin/sh\necho "apt-get $*" >> {tmp_path}/apt.log\n')
    executable(bin_dir / "sudo", f'#!/bin/sh\nexit 1\n')
    r = run(["/bin/bash", REPO / "scripts" / "ci" / "install-deploy-tools.sh"], env={"PATH": str(bin_dir)})
    assert r.returncode == 0, r.stderr
    if os.geteuid() != 0:
        assert "not root" in r.stderr
        return
    log = (tmp_path / "apt.log").read_text().splitlines()
    assert log == ["apt-get update -qq",
                   "apt-get install -y --no-install-recommends docker-registry prometheus shellcheck skopeo"]
