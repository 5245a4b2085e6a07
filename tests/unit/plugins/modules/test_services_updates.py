"""selfhost.pi.services: the image-update keys (auto_update, update_window, update_webhook_secret)."""
import pytest

from ansible_collections.selfhost.pi.plugins.module_utils import service_spec

from .helpers import LAST, run_module
from .test_services import rec, services, spec  # noqa: F401  (rec is a fixture)

HEALTH = {"cmd": "/bin/true", "interval": "2s", "timeout": "2s", "retries": 2, "start_period": "0s"}


def test_auto_update_with_health_gates_the_restart():
    section = service_spec.container_section(dict(spec("a", 2001, 8001, image="localhost:5000/a:1"),
                                                  auto_update="registry", health=HEALTH))
    assert section["AutoUpdate"] == "registry"
    assert section["Notify"] == "healthy"
    assert section["HealthOnFailure"] == "kill"


def test_auto_update_without_health_only_sets_the_policy():
    section = service_spec.container_section(dict(spec("a", 2001, 8001), auto_update="local"))
    assert section["AutoUpdate"] == "local"
    assert "Notify" not in section and "HealthOnFailure" not in section


def test_container_options_still_win():
    section = service_spec.container_section(dict(spec("a", 2001, 8001), auto_update="local", health=HEALTH,
                                                  container_options={"HealthOnFailure": "restart"}))
    assert section["HealthOnFailure"] == "restart"


def test_no_update_keys_no_change():
    assert "AutoUpdate" not in service_spec.container_section(spec("a", 2001, 8001))


@pytest.mark.parametrize("extra,field", [
    (dict(auto_update="registry", update_window={"allow": ["Sun 3:00-25:00"]}),
     "services[0].update_window.allow[0]: '25:00' is not a time"),
    (dict(auto_update="registry", update_window={"deny": ["Xmas 06:00-07:30"]}),
     "services[0].update_window.deny[0]: 'Xmas' is not a day"),
    (dict(auto_update="registry", update_window={"sometimes": []}), "services[0].update_window: unknown key"),
    (dict(update_window={"deny": ["06:00-07:30"]}), "services[0].update_window, update_webhook_secret: need auto_update"),
    (dict(auto_update="registry", image="busybox:latest"), "services[0].image: AutoUpdate=registry needs a fully"),
])
def test_bad_update_keys_fail_before_any_step(monkeypatch, rec, extra, field):  # noqa: F811
    failed, result = run_module(monkeypatch, services, {"services": [dict(spec("a", 2001, 8001), **extra)]})
    assert failed
    assert field in result["msg"]
    assert rec.applied() == []


def test_bad_policy_is_refused_by_the_argument_spec(monkeypatch, rec):  # noqa: F811
    failed, result = run_module(monkeypatch, services, {"services": [dict(spec("a", 2001, 8001), auto_update="always")]})
    assert failed and "auto_update" in result["msg"]
    assert rec.calls == []


def test_hook_secret_is_no_log(monkeypatch, rec):  # noqa: F811
    """Ansible masks a value in every result, warning and log line only when the
    argument spec marks it no_log: the secret must be among the module's no_log values."""
    specs = [dict(spec("a", 2001, 8001, image="localhost:5000/a:1"), auto_update="registry",
                  update_webhook_secret="very-secret-value-123")]
    failed, result = run_module(monkeypatch, services, {"services": specs})
    assert not failed
    assert "very-secret-value-123" in LAST["module"].no_log_values
    assert "very-secret-value-123" not in repr(result)
