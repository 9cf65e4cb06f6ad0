"""`ai-gateway canary set-weight | promote | rollback`: the weight numbers are edited in place
(comments, order and layout kept) in JSON, YAML, an Envoy/ECDS StringValue and a WasmPlugin;
the result is validated first and an invalid one is never written; the write is an atomic
rename; `diff` reports what a change does to traffic."""

from __future__ import annotations

import difflib
import json
import os

import pytest
from configs import GOOD, GOOD_YAML, ecds, envoy_bootstrap, wasmplugin
from harness import REPO

CANARY = "deepseek-v3.2@2.0.0-canary.1"


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    """(old line, new line) for each line that differs; lines are never added or removed."""
    a, b = before.splitlines(), after.splitlines()
    assert len(a) == len(b), "\n".join(difflib.unified_diff(a, b, lineterm=""))
    return [(x, y) for x, y in zip(a, b) if x != y]


@pytest.mark.parametrize(
    "name, text, old, new",
    [
        ("plugin.json", json.dumps(GOOD, indent=2), '"weight": 10', '"weight": 50'),
        ("plugin.yaml", GOOD_YAML, "weight: 10 }   # the canary", "weight: 50 }   # the canary"),
        ("envoy.yaml", envoy_bootstrap(GOOD), '"weight": 10', '"weight": 50'),
        ("ecds.yaml", ecds(GOOD), '"weight": 10', '"weight": 50'),
        ("wasmplugin.yaml", wasmplugin(GOOD_YAML), "weight: 10 }   # the canary", "weight: 50 }   # the canary"),
    ],
)
def test_set_weight_changes_only_that_number(ag, write, name, text, old, new):
    f = write(name, text)
    r = ag("canary", "set-weight", f, "--route", "chat", "--target", CANARY, "--weight", "50")
    assert r.code == 0, r
    after = f.read_text()
    (diff,) = changed_lines(text, after)
    assert old in diff[0] and diff[1] == diff[0].replace(old, new), diff
    assert r.out.endswith(
        f"{f}: written (1 number(s) changed in place; validated by the filter's config compiler)\n"
    ), r.out
    assert "share     10 % → 35.7 %" in r.out, r.out  # 50 / (90 + 50)
    assert ag("validate", f).code == 0


def test_the_shipped_hot_reload_file_keeps_its_comments_and_layout(ag, write):
    text = (REPO / "envoy" / "hot-reload" / "ai_gateway.yaml").read_text()
    f = write("ai_gateway.yaml", text)
    r = ag("canary", "set-weight", f, "--route", "chat", "--target", CANARY, "--weight", "50")
    assert r.code == 0, r
    (line,) = [x for x in text.splitlines() if '"model": "deepseek-v3.2"' in x]
    assert line.endswith('"weight": 10 } ] }'), line
    assert changed_lines(text, f.read_text()) == [(line, line.replace('"weight": 10 }', '"weight": 50 }'))]


def test_promote_gives_the_canary_100_and_drains_the_others(ag, write):
    f = write("plugin.yaml", GOOD_YAML)
    r = ag("canary", "promote", f, "--route", "chat", "--canary", CANARY)
    assert r.code == 0, r
    assert changed_lines(GOOD_YAML, f.read_text()) == [
        ("      - { model: gpt-4.1, weight: 90 }", "      - { model: gpt-4.1, weight: 0 }"),
        ("      - { model: deepseek-v3.2, weight: 10 }   # the canary", "      - { model: deepseek-v3.2, weight: 100 }   # the canary"),
    ]
    assert r.lines[:3] == [
        f"{f}: route chat:",
        "  gpt-4.1@1.0.0                            weight     90 → 0      share     90 % → 0 %",
        "  deepseek-v3.2@2.0.0-canary.1             weight     10 → 100    share     10 % → 100 %",
    ], r.out


def test_rollback_returns_the_canary_weight_to_the_stable_targets_in_proportion(ag, write):
    cfg = json.loads(json.dumps(GOOD))
    cfg["models"].append({"name": "claude-sonnet-4.5", "version": "1.4.0"})
    cfg["prices"]["claude-sonnet-4.5"] = {"input": 3, "output": 15}
    cfg["routes"][0]["targets"] = [
        {"model": "gpt-4.1", "weight": 60},
        {"model": "claude-sonnet-4.5", "weight": 20},
        {"model": "deepseek-v3.2", "weight": 20},
    ]
    text = json.dumps(cfg, indent=2)
    f = write("plugin.json", text)
    r = ag("canary", "rollback", f, "--route", "chat", "--canary", CANARY)
    assert r.code == 0, r
    after = json.loads(f.read_text())
    assert [t["weight"] for t in after["routes"][0]["targets"]] == [75, 25, 0]
    assert len(changed_lines(text, f.read_text())) == 3


def test_the_implicit_route_is_edited_through_models_weight_adding_a_missing_one(ag, write):
    cfg = {"models": [{"name": "a", "version": "1.0.0", "weight": 9}, {"name": "b", "version": "2.0.0-rc.1"}]}
    text = json.dumps(cfg, indent=2)
    f = write("plugin.json", text)
    r = ag("canary", "set-weight", f, "--route", "_default", "--target", "b@2.0.0-rc.1", "--weight", "1")
    assert r.code == 0, r
    assert changed_lines(text, f.read_text()) == [('      "version": "2.0.0-rc.1"', '      "version": "2.0.0-rc.1", "weight": 1')]


def test_an_invalid_result_is_refused_and_nothing_is_written(ag, write):
    f = write("plugin.yaml", GOOD_YAML)
    inode = os.stat(f).st_ino
    r = ag("canary", "set-weight", f, "--route", "chat", "--target", "gpt-4.1", "--weight", "0")
    assert r.code == 0, "draining the stable target alone is valid"
    r = ag("canary", "set-weight", f, "--route", "chat", "--target", CANARY, "--weight", "0")
    assert r.code == 1, r
    assert r.err == (
        f"{f}: refused: the result would be invalid, nothing written:\n"
        "  routes[0].targets: the weights sum to 0: at least one target needs a weight above 0\n"
    )
    assert "weight: 10 }" in f.read_text()
    assert os.stat(f).st_ino != inode, "the first (valid) edit replaced the file"


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["set-weight", "--route", "chat", "--target", "gpt-5", "--weight", "1"], 1,
         "gpt-5 is not a target of this route (targets: gpt-4.1@1.0.0, deepseek-v3.2@2.0.0-canary.1)"),
        (["set-weight", "--route", "code", "--target", "gpt-4.1", "--weight", "1"], 1,
         'no route "code" (routes: chat; `_default` is the implicit route of models[].weight)'),
        (["set-weight", "--route", "chat", "--target", "gpt-4.1", "--weight", "-1"], 1,
         "--weight -1: a weight is a finite number ≥ 0"),
        (["promote", "--route", "chat", "--canary", "deepseek-v3.2@2.0"], 1,
         'deepseek-v3.2@2.0: "2.0" is not SemVer: unexpected end of input while parsing minor version number'),
    ],
)  # fmt: skip
def test_bad_requests_are_refused_with_a_reason(ag, write, args, code, message):
    f = write("plugin.json", json.dumps(GOOD, indent=2))
    before = f.read_text()
    r = ag("canary", args[0], f, *args[1:])
    assert (r.code, r.err) == (code, f"{f}: {message}\n"), r
    assert f.read_text() == before


def test_an_already_invalid_file_is_not_touched(ag, write):
    f = write("plugin.json", json.dumps({**GOOD, "default_route": "nope"}))
    r = ag("canary", "set-weight", f, "--route", "chat", "--target", "gpt-4.1", "--weight", "1")
    assert r.code == 1
    assert "the configuration is already invalid" in r.err and "fix it first" in r.err, r


def test_dry_run_writes_nothing(ag, write):
    f = write("plugin.yaml", GOOD_YAML)
    r = ag("canary", "promote", f, "--route", "chat", "--canary", CANARY, "--dry-run")
    assert r.code == 0, r
    assert r.lines[-1] == f"{f}: dry run: 2 number(s) would change; nothing written"
    assert f.read_text() == GOOD_YAML


def test_the_write_is_an_atomic_rename_that_leaves_no_temporary_file(ag, write, tmp_path):
    f = write("plugin.json", json.dumps(GOOD, indent=2))
    os.chmod(f, 0o640)
    inode = os.stat(f).st_ino
    assert ag("canary", "set-weight", f, "--route", "chat", "--target", CANARY, "--weight", "20").code == 0
    st = os.stat(f)
    assert st.st_ino != inode, "a new file renamed over the old one (what a directory watcher sees as one move)"
    assert st.st_mode & 0o777 == 0o640, "permissions kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plugin.json"]


def test_nothing_to_do_is_said_and_nothing_written(ag, write):
    f = write("plugin.json", json.dumps(GOOD, indent=2))
    inode = os.stat(f).st_ino
    r = ag("canary", "set-weight", f, "--route", "chat", "--target", CANARY, "--weight", "10")
    assert (r.code, r.lines[-1]) == (0, f"{f}: already so; nothing to write"), r
    assert os.stat(f).st_ino == inode


# --------------------------------------------------------------------------------------------
# diff
# --------------------------------------------------------------------------------------------


def test_diff_shows_per_route_shares_before_and_after_as_markdown(ag, write):
    old = write("old.yaml", GOOD_YAML)
    new = write("new.yaml", GOOD_YAML)
    assert ag("canary", "set-weight", new, "--route", "chat", "--target", CANARY, "--weight", "90").code == 0
    r = ag("diff", old, new)
    assert r.code == 0, r
    assert r.out == (
        f"### ai-gateway config diff: `{old}` → `{new}`\n\n"
        "**route `chat` (default route)**\n\n"
        "| target | before | after | change (points) |\n"
        "|---|---:|---:|---:|\n"
        "| `gpt-4.1@1.0.0` | 90 % | 50 % | −40 |\n"
        "| `deepseek-v3.2@2.0.0-canary.1` | 10 % | 50 % | +40 |\n"
    )


def test_diff_across_formats_reports_models_and_settings(ag, write):
    old = write("old.json", json.dumps(GOOD, indent=2))
    cfg = json.loads(json.dumps(GOOD))
    cfg["models"].append({"name": "claude-sonnet-4.5", "version": "1.5.0-rc.1", "system_prompt": "Be brief."})
    cfg["routes"][0]["targets"].append({"model": "claude-sonnet-4.5", "weight": 10})
    cfg["routes"][0]["targets"][0]["weight"] = 80
    cfg["models"][0]["max_tokens"] = 2048
    cfg["timeout_ms"] = 60000
    new = write("envoy.yaml", envoy_bootstrap(cfg))
    r = ag("diff", old, new, "--format", "text")
    assert r.code == 0, r
    assert r.lines[1:] == [
        "route chat (default route):",
        "  gpt-4.1@1.0.0                                90 % → 80 %     −10",
        "  deepseek-v3.2@2.0.0-canary.1                 10 % → 10 %     ",
        "  claude-sonnet-4.5@1.5.0-rc.1                    — → 10 %     +10 (new target)",
        "model added: claude-sonnet-4.5@1.5.0-rc.1",
        "model gpt-4.1@1.0.0 max_tokens: 4096 → 2048",
        "setting timeout_ms: 30000 → 60000",
    ], r.out
    doc = json.loads(ag("diff", old, new, "--format", "json").out)
    assert doc["changed"] is True
    (route,) = doc["configs"][0]["routes"]
    assert route["status"] == "changed"
    assert route["targets"][2] == {
        "target": "claude-sonnet-4.5@1.5.0-rc.1", "before": None, "after": 10.0, "weight_before": None, "weight_after": 10.0,
    }  # fmt: skip


def test_diff_shows_a_change_of_key_injection(ag, write):
    """Moving the key from the filter to the cluster's upstream filter is a reviewable change:
    the diff names it (demo.yaml → key-upstream.yaml, the shipped pair)."""
    r = ag("diff", "envoy/demo.yaml", "envoy/key-upstream.yaml", "--format", "text")
    assert r.code == 0, r
    assert "setting upstream.key_injection: filter → upstream" in r.lines, r.out
    r = ag("diff", "envoy/key-upstream.yaml", "envoy/demo.yaml", "--format", "markdown")
    assert r.code == 0 and "upstream.key_injection" in r.out and "upstream" in r.out, r.out
    doc = json.loads(ag("diff", "envoy/demo.yaml", "envoy/key-upstream.yaml", "--format", "json").out)
    settings = {s["what"]: (s["before"], s["after"]) for s in doc["configs"][0]["settings"]}
    assert settings["upstream.key_injection"] == ("filter", "upstream"), settings


def test_diff_of_an_invalid_file_fails_and_says_why(ag, write):
    old = write("old.json", json.dumps(GOOD))
    new = write("new.json", json.dumps({**GOOD, "default_route": "nope"}))
    r = ag("diff", old, new)
    assert r.code == 1
    assert r.err == (
        f'{new}: invalid: default_route: "nope" is not the name of a configured route (run `ai-gateway validate {new}`)\n'
    )
