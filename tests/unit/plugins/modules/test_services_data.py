"""selfhost.pi.services checks each spec's data (what the backup role saves) before any step."""
import pytest

from ansible_collections.selfhost.pi.plugins.modules import services

from .helpers import run_module
from .test_services import Recorder, spec


@pytest.fixture
def rec(monkeypatch, tmp_path):
    return Recorder(monkeypatch, tmp_path)


@pytest.mark.parametrize("data,message", [
    ({"paths": ["data", "/etc"]}, "services[1].data.paths[1]: /etc is not a path of one service's data"),
    ({"volumes": ["a/b"]}, "services[1].data.volumes[0]: 'a/b' is not a podman volume name"),
    ({"sqlite": ["."]}, "services[1].data.sqlite[0]: /home/b is not a path of one service's data"),
])
def test_bad_data_fails_naming_its_field_before_any_step(monkeypatch, rec, data, message):
    specs = [spec("a", 2001, 8001, data={"paths": ["data"], "volumes": ["db"]}), spec("b", 2002, 8002, data=data)]
    failed, result = run_module(monkeypatch, services, {"services": specs})
    assert failed
    assert result["msg"].startswith("nothing was changed")
    assert message in result["msg"]
    assert "services[0]" not in result["msg"]
    assert rec.calls == []


def test_good_data_is_accepted(monkeypatch, rec):
    rec.site_changed = False
    specs = [spec("a", 2001, 8001, data={"paths": ["data"], "volumes": ["db"], "sqlite": ["data/a.db"],
                                         "pre_backup": ["a-dump"]})]
    failed, result = run_module(monkeypatch, services, {"services": specs})
    assert not failed and not any(s["changed"] for s in result["services"])


def test_missing_bind_mount_sources_in_the_home_are_made(monkeypatch, rec, tmp_path):
    from ansible_collections.selfhost.pi.plugins.module_utils import service_set, service_spec

    home = tmp_path / "home" / "a"
    (home / "kept").mkdir(parents=True)
    real_normalize = service_set.normalize
    monkeypatch.setattr(service_set, "normalize", lambda p: dict(real_normalize(p), home=str(home)))
    made = []
    monkeypatch.setattr(service_set, "ensure_directory", lambda path, mode, uid, gid: made.append((path, mode, uid)))
    rec.site_changed = False
    volumes = ["%h/data:/data:Z", "%h/kept:/kept", "named:/named", "/srv/a:/srv", "%h/data:/again"]
    args = {"services": [spec("a", 2001, 8001, volumes=volumes)]}

    failed, result = run_module(monkeypatch, services, args, check_mode=True, diff=True)
    assert not failed and result["changed"] and made == []
    assert [d["after_header"] for d in result["diff"] if "bind mount source" in d["after"]] == [str(home / "data")]

    failed, result = run_module(monkeypatch, services, args)
    assert not failed and result["changed"]
    assert made == [(str(home / "data"), 0o750, 2001)]
    assert service_spec.bind_sources_in_home({"volumes": volumes}, str(home)) == [str(home / "data"),
                                                                                  str(home / "kept")]
