"""selfhost.pi.restic_repository against real restic repositories in a temporary directory.

Where the hosts' restic 0.17+ answers with exit code 10 (no repository) or 12
(wrong password), the restic 0.14 of Debian 12 here exits 1; ``restic_cmd``
is then the ``Repo.exit_code_shim()`` stand-in around the real restic, which
turns those two messages into 0.17's codes. Everything else is restic itself.
"""
import json
import os
import socket

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.selfhost.pi.plugins.modules import restic_repository

from ...restic_repo import PASSWORD, repo, repo_template  # noqa: F401 (fixtures)  pylint: disable=unused-import
from .helpers import run_module

ROLE_NAMES = dict(repository="backup_repository", password="backup_password",
                  environment="backup_repository_environment", init="backup_init",
                  timeout="backup_repository_timeout")


@pytest.fixture
def calls(monkeypatch):
    """Every command the module runs, with the environment it adds (the real run_command still runs it)."""
    seen = []
    real = basic.AnsibleModule.run_command

    def run_command(module, args, **kwargs):
        seen.append(dict(argv=list(args), env=dict(kwargs.get("environ_update") or {})))
        return real(module, args, **kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    return seen


def params(repo, repository=None, **extra):  # noqa: F811 (fixture name)
    base = dict(repository=repository or repo.path, password=PASSWORD, restic=repo.exit_code_shim(),
                field_names=ROLE_NAMES, timeout=30)
    base.update(extra)
    return base


def test_an_existing_repository_is_left_alone(monkeypatch, repo, calls):  # noqa: F811
    failed, result = run_module(monkeypatch, restic_repository, params(repo), diff=True)
    assert not failed and not result["changed"], result
    assert result["before"] == "present" and result["state"] == "present" and not result["initialized"]
    assert result["diff"]["before"] == result["diff"]["after"] == "present\n"
    (call,) = calls
    assert call["argv"][-4:] == [repo.exit_code_shim(), "cat", "config", "--no-lock"]
    assert call["argv"][0].endswith("timeout") and call["argv"][1] == "30"


def test_secrets_reach_restic_in_its_environment_never_its_command_line(monkeypatch, repo, calls, tmp_path):  # noqa: F811
    empty = str(tmp_path / "new")
    env = {"AWS_SECRET_ACCESS_KEY": "s3-secret-value", "RESTIC_COMPRESSION": "max"}
    failed, result = run_module(monkeypatch, restic_repository, params(repo, empty, environment=env))
    assert not failed and result["initialized"]
    assert [c["argv"][-3:] for c in calls] == [["cat", "config", "--no-lock"], [repo.exit_code_shim(), "init"]]
    for call in calls:
        line = " ".join(call["argv"])
        assert PASSWORD not in line and "s3-secret-value" not in line and empty not in line
        assert call["env"]["RESTIC_PASSWORD"] == PASSWORD and call["env"]["RESTIC_REPOSITORY"] == empty
        assert call["env"]["AWS_SECRET_ACCESS_KEY"] == "s3-secret-value"


def test_an_empty_place_is_initialized_once(monkeypatch, repo, tmp_path):  # noqa: F811
    empty = str(tmp_path / "disk" / "restic")
    os.makedirs(os.path.dirname(empty))
    failed, result = run_module(monkeypatch, restic_repository, params(repo, empty), diff=True)
    assert not failed and result["changed"] and result["initialized"]
    assert result["before"] == "absent" and result["diff"] == dict(
        before_header="restic repository", after_header="restic repository", before="absent\n", after="present\n")
    assert os.path.isfile(os.path.join(empty, "config"))
    failed, again = run_module(monkeypatch, restic_repository, params(repo, empty))
    assert not failed and not again["changed"] and again["before"] == "present"


def test_check_mode_checks_but_does_not_initialize(monkeypatch, repo, calls, tmp_path):  # noqa: F811
    empty = str(tmp_path / "restic")
    failed, result = run_module(monkeypatch, restic_repository, params(repo, "local:" + empty), check_mode=True,
                                diff=True)
    assert not failed and result["changed"] and not result["initialized"]
    assert result["diff"]["before"] == "absent\n" and result["diff"]["after"] == "present\n"
    assert [c["argv"][-3:] for c in calls] == [["cat", "config", "--no-lock"]]
    assert not os.path.exists(empty)


def test_init_false_fails_naming_backup_init(monkeypatch, repo, tmp_path):  # noqa: F811
    empty = str(tmp_path / "restic")
    failed, result = run_module(monkeypatch, restic_repository, params(repo, empty, init=False))
    assert failed and result["msg"] == ("backup_repository: no repository there (restic exit code 10) and "
                                        "backup_init is false; nothing was changed")
    assert not os.path.exists(empty)


def test_a_local_repository_on_a_disk_that_is_not_mounted_is_refused(monkeypatch, repo, tmp_path):  # noqa: F811
    unmounted = str(tmp_path / "mnt" / "backup")
    failed, result = run_module(monkeypatch, restic_repository, params(repo, unmounted + "/restic"))
    assert failed and result["msg"] == ("backup_repository: %s does not exist (is the backup disk mounted?); not "
                                        "initializing a repository elsewhere; nothing was changed" % unmounted)
    assert not os.path.exists(str(tmp_path / "mnt"))


def test_a_wrong_password_fails_naming_backup_password(monkeypatch, repo):  # noqa: F811
    failed, result = run_module(monkeypatch, restic_repository, params(repo, password="not-the-right-passphrase"))
    assert failed and result["msg"] == ("backup_password: wrong password (restic exit code 12): it does not open "
                                        "the repository backup_repository names; nothing was changed")


def test_a_server_that_does_not_answer_fails_after_the_timeout(monkeypatch, repo):  # noqa: F811
    # A real restic and a TCP port that accepts the connection and never answers.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        url = "rest:http://127.0.0.1:%d/pi" % silent.getsockname()[1]
        failed, result = run_module(monkeypatch, restic_repository, params(repo, url, timeout=2))
    finally:
        silent.close()
    assert failed and result["msg"] == ("backup_repository: no answer within 2 s (backup_repository_timeout); "
                                        "is it reachable; nothing was changed")


def test_any_other_error_quotes_restic(monkeypatch, repo, tmp_path):  # noqa: F811
    afile = tmp_path / "a-file"
    afile.write_text("")
    failed, result = run_module(monkeypatch, restic_repository, params(repo, str(afile)))
    assert failed and result["msg"].startswith("backup_repository: restic cannot read it (rc 1): Fatal: ")
    assert result["msg"].endswith("; nothing was changed")


@pytest.mark.parametrize("key,message", [
    ("AWS-KEY", "not a variable name"),
    ("1ST", "not a variable name"),
    ("KEY\n", "not a variable name"),
    ("X;touch /tmp/owned;Y", "not a variable name"),
    ("RESTIC_PASSWORD", "set from backup_repository and backup_password; leave it out"),
    ("RESTIC_REPOSITORY", "set from backup_repository and backup_password; leave it out"),
])
def test_environment_keys_are_variable_names(monkeypatch, repo, calls, key, message):  # noqa: F811
    failed, result = run_module(monkeypatch, restic_repository, params(repo, environment={key: "v"}))
    assert failed and result["msg"].startswith("backup_repository_environment.%s: %s" % (key, message))
    assert calls == []  # refused before restic runs


def test_errors_name_the_options_without_field_names(monkeypatch, repo):  # noqa: F811
    failed, result = run_module(monkeypatch, restic_repository,
                                dict(params(repo, password="wrong"), field_names={}))
    assert failed and result["msg"].startswith("password: wrong password (restic exit code 12)")


def test_no_secret_in_the_output_even_on_failure(monkeypatch, repo, capsys):  # noqa: F811
    # The real exit path of AnsibleModule (no_log values are masked there), not the test helper's.
    args = params(repo, repo.path + "/../" + os.path.basename(repo.path), password="not-the-right-passphrase",
                  environment={"AWS_SECRET_ACCESS_KEY": "s3-secret-value"})
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    with pytest.raises(SystemExit):
        restic_repository.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert result["failed"] and "wrong password" in result["msg"]
    for secret in ("not-the-right-passphrase", "s3-secret-value", args["repository"]):
        assert secret not in out


def test_check_mode_without_restic_plans_the_repository(monkeypatch, tmp_path, calls):
    """A freshly flashed host under --check: restic is not installed yet, nothing runs, the plan is reported."""
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: None)
    args = dict(repository=str(tmp_path / "new"), password=PASSWORD, field_names=ROLE_NAMES)
    failed, result = run_module(monkeypatch, restic_repository, args, check_mode=True, diff=True)
    assert not failed and result["changed"], result
    assert result["before"] == "unknown" and result["state"] == "present" and not result["initialized"]
    assert "not installed" in result["planned"] and result["diff"]["after"] == "present\n"
    assert calls == [] and not os.path.exists(args["repository"])


def test_without_restic_outside_check_mode_fails_naming_it(monkeypatch, tmp_path, calls):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: None)
    args = dict(repository=str(tmp_path / "new"), password=PASSWORD, field_names=ROLE_NAMES)
    failed, result = run_module(monkeypatch, restic_repository, args)
    assert failed and "restic: command not found" in result["msg"], result
    assert calls == []
