"""``auditledger alerts webhook add|list|remove``: every kind, secrets printed never (but
a webhook's signing secret once), ``--json``, one-line ``error: …`` exit 2 on bad input,
and a receiver added by the CLI is what the deliverer sends to."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from projections.alerts.outbox import Outbox
from projections.alerts.scheduler import outbox_path
from tests.conftest import CLI
from tests.conftest import cli_json as cli

C = "NO-921119224"
SLACK = "https://hooks.slack.com/services/T1/B2/v3ry-s3cret-slack"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli") / "d"
    cli("init", "--data", str(d))
    cli("controller", "register", "--data", str(d), "--id", C, "--name", "Acme AS",
        "--country", "NO", "--tz", "Europe/Oslo")
    return d


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "alerts", "webhook", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_add_list_remove_every_kind(data: Path, tmp_path: Path):
    d = ["--data", str(data), "--controller", C]
    hook = cli("alerts", "webhook", "add", *d, "--url", "https://hooks.example/x")
    assert hook["kind"] == "webhook" and hook["secret"].startswith("whsec_")
    pw = tmp_path / "pw"
    pw.write_text("smtp-pa55word\n")
    mail = cli("alerts", "webhook", "add", *d, "--kind", "email", "--smtp-host",
               "smtp.example.no", "--smtp-user", "dpo", "--smtp-password-file", str(pw),
               "--from", "alerts@example.no", "--to", "dpo@example.no", "--to",
               "legal@example.no", "--base-url", "https://ledger.example.no")
    assert (mail["port"], mail["to"], mail["username"]) == (
        587, ["dpo@example.no", "legal@example.no"], "dpo")
    (tmp_path / "slack").write_text(SLACK + "\n")
    human = run("add", *d, "--kind", "slack", "--url-file", str(tmp_path / "slack"))
    assert human.returncode == 0 and "v3ry-s3cret-slack" not in human.stdout
    assert "slack receiver" in human.stdout and "hooks.slack.com" in human.stdout
    listed = cli("alerts", "webhook", "list", *d)["items"]
    assert [r["kind"] for r in listed] == ["webhook", "email", "slack"]
    text = run("list", *d).stdout + repr(listed)
    for secret in ("smtp-pa55word", "v3ry-s3cret-slack", hook["secret"]):
        assert secret not in text
    assert len(run("list", *d).stdout.strip().splitlines()) == 3
    assert [r["kind"] for r in cli("alerts", "webhook", "list", *d, "--kind", "email"
                                   )["items"]] == ["email"]
    ob = Outbox(outbox_path(data))  # what the deliverer will use
    assert ob.webhook(mail["id"])["secret"] == "smtp-pa55word"
    assert ob.webhook(listed[2]["id"])["secret"] == SLACK
    ob.close()
    assert oct(outbox_path(data).stat().st_mode & 0o777) == "0o600"
    assert cli("alerts", "webhook", "remove", *d, "--id", mail["id"]) == {
        "id": mail["id"], "removed": True}
    assert [r["kind"] for r in cli("alerts", "webhook", "list", *d)["items"]] == [
        "webhook", "slack"]


@pytest.mark.parametrize(("args", "message"), [
    (["add", "--url", "ftp://x"], "error: --url: an absolute http(s) URL"),
    (["add", "--kind", "pager", "--url", "https://x"], "error: --kind: one of"),
    (["add", "--kind", "email", "--smtp-host", "h", "--from", "nope", "--to", "a@b.no"],
     "error: --from: one e-mail address"),
    (["add", "--kind", "email", "--smtp-host", "h", "--from", "a@b.no"], "error: --to: 1 to"),
    (["add", "--kind", "email", "--smtp-host", "h", "--from", "a@b.no", "--to", "a@b.no",
      "--smtp-user", "u"], "error: --smtp-user: give both"),
    (["add", "--kind", "slack", "--url", "https://x", "--to", "a@b.no"],
     "error: --smtp-*, --from, --to: only with --kind email"),
    (["add", "--kind", "email", "--smtp-host", "h", "--from", "a@b.no", "--to", "a@b.no",
      "--smtp-user", "u", "--smtp-password-file", "/nonexistent/pw"],
     "error: --smtp-password-file:"),
    (["remove", "--id", "nope"], "error: no receiver nope for NO-921119224"),
    (["list", "--kind", "x"], "error: --kind: one of"),
])
def test_bad_input_is_one_line_exit_2(data: Path, args: list[str], message: str):
    r = run(args[0], "--data", str(data), "--controller", C, *args[1:], "--json")
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(message) and r.stderr.strip().count("\n") == 0, r.stderr


def test_unknown_controller_and_data_dir(data: Path, tmp_path: Path):
    r = run("list", "--data", str(data), "--controller", "XX-0")
    assert r.returncode == 2 and r.stderr.strip() == "error: unknown controller: XX-0"
    r = run("add", "--data", str(tmp_path / "none"), "--controller", C, "--url",
            "https://x")
    assert r.returncode == 2 and "not an auditledger data directory" in r.stderr
