"""selfhost.pi.drift's states (plugins/modules/drift.py) on a record in a temporary directory; the host's
reading (module_utils/drift.observe, tested on its own) is replaced by what the test says the host holds."""
import os
from types import SimpleNamespace

import pytest

from ansible_collections.selfhost.pi.plugins.module_utils import drift as drift_utils
from ansible_collections.selfhost.pi.plugins.module_utils.errors import ValidationError
from ansible_collections.selfhost.pi.plugins.modules import drift


@pytest.fixture
def host_holds(monkeypatch):
    held = {"/etc/nginx/nginx.conf": "file 0644 0:0 sha256=aa"}
    seen = []

    def observe(host, paths, converged_path):
        seen.append(list(paths))
        return dict(held)
    monkeypatch.setattr(drift_utils, "observe", observe)
    held_and_seen = SimpleNamespace(state=held, paths=seen)
    return held_and_seen


def module(path, state="check", declaration="d1", paths=(), check_mode=False, max_age=86400):
    return SimpleNamespace(check_mode=check_mode, params=dict(state=state, declaration=declaration, path=str(path),
                                                              paths=list(paths), max_age=max_age))


def test_record_then_check_then_drift(tmp_path, host_holds):
    record = tmp_path / "converged.json"
    first = drift.run(module(record, "check"), None)
    assert not first["current"] and first["drift"][0].startswith("no record") and not first["changed"]

    planned = drift.run(module(record, "record", check_mode=True), None)
    assert planned["changed"] and not record.exists()  # check mode writes nothing
    assert "+/etc/nginx/nginx.conf" not in planned["diff"]["before"]
    assert "/etc/nginx/nginx.conf: file 0644" in planned["diff"]["after"]

    assert drift.run(module(record, "record"), None)["changed"]
    assert oct(os.stat(str(record)).st_mode & 0o777) == "0o600"
    assert drift.run(module(record, "check"), None)["current"]
    assert drift.run(module(record, "check", max_age=0), None)["current"]

    assert not drift.run(module(record, "check", declaration="d2"), None)["current"]
    host_holds.state["/etc/nginx/nginx.conf"] = "absent"
    result = drift.run(module(record, "check"), None)
    assert result["drift"] == ["/etc/nginx/nginx.conf: absent (was file 0644 0:0 sha256=aa)"]


def test_absent_removes_the_record_but_not_in_check_mode(tmp_path, host_holds):
    record = tmp_path / "converged.json"
    drift.run(module(record, "record"), None)
    assert drift.run(module(record, "absent", check_mode=True), None)["changed"] and record.exists()
    assert drift.run(module(record, "absent"), None)["changed"] and not record.exists()
    assert not drift.run(module(record, "absent"), None)["changed"]


def test_bad_paths_and_a_missing_declaration_fail_before_reading(tmp_path, host_holds):
    with pytest.raises(ValidationError) as error:
        drift.run(module(tmp_path / "r", paths=["/etc/ok", "relative/file"]), None)
    assert error.value.field == "paths[1]"
    with pytest.raises(ValidationError) as error:
        drift.run(module(tmp_path / "r", declaration=""), None)
    assert error.value.field == "declaration"
    with pytest.raises(ValidationError) as error:
        drift.run(module(tmp_path / "r", max_age=-1), None)
    assert error.value.field == "max_age"
    assert host_holds.paths == []


def test_home_of_a_user_is_expanded_and_an_unknown_user_read_as_absent(tmp_path, host_holds):
    drift.run(module(tmp_path / "r", paths=["~root/.ssh/authorized_keys", "~no-such-user-here/.ssh/x"]), None)
    assert host_holds.paths[-1] == [os.path.expanduser("~root") + "/.ssh/authorized_keys", "~no-such-user-here/.ssh/x"]
