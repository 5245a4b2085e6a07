"""selfhost.pi.services: pods (containers:) and scheduled jobs (jobs:).

The option checks run through the module with the steps recorded (as in
test_services.py); schedules and time spans go through the real
`systemd-analyze` of this machine. The rendering tests read the units that
service_units.py makes.
"""
import copy
import shutil

import pytest

from ansible_collections.selfhost.pi.plugins.filter.service_spec_conflicts import service_spec_conflicts
from ansible_collections.selfhost.pi.plugins.module_utils import service_spec, service_units
from ansible_collections.selfhost.pi.plugins.modules import services

from .helpers import run_module
from .test_services import rec, spec  # noqa: F401  (rec is a fixture)

HEALTH = {"cmd": "valkey-cli ping", "interval": "2s", "timeout": "2s", "retries": 3, "start_period": "0s"}
PARAMS = {"default_service_options": {"Restart": "always", "TimeoutStartSec": 300}}

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not here")


def pod(name="board", uid=2301, **extra):
    base = {"name": name, "uid": uid, "publish_ports": ["127.0.0.1:8301:8080"], "domain": "%s.test" % name,
            "volumes": ["%h/shared:/shared"],
            "containers": [
                {"name": "db", "image": "localhost/valkey:1", "exec": "valkey-server --port 6379",
                 "volumes": ["board-db:/data"], "health": dict(HEALTH)},
                {"name": "app", "image": "localhost/board:1", "requires": ["db"],
                 "environment": {"VALKEY": "127.0.0.1:6379"}},
            ],
            "jobs": [{"name": "snapshot", "schedule": "hourly", "exec": "valkey-cli save", "timeout": "5min"}]}
    base.update(extra)
    return base


def by_name(units):
    return dict((unit["fname"], unit) for unit in units)


# ---------------------------------------------------------------- option checks, before any step

@pytest.mark.parametrize("mutate,message", [
    (lambda s: s["containers"][1].update(publish_ports=["127.0.0.1:8302:8080"]),
     "services[1].containers[1].publish_ports: the members of a pod publish no ports of their own"),
    (lambda s: s["containers"][0].update(publish_ports=["127.0.0.1:8303:6379"]),
     "move 127.0.0.1:8303:6379 to services[1].publish_ports"),
    (lambda s: s["jobs"].append({"name": "snapshot", "schedule": "daily", "exec": "true"}),
     "services[1].jobs[1].name: snapshot clashes with services[1].jobs[0] (snapshot)"),
    (lambda s: s["containers"].append({"name": "job-snapshot", "image": "x"}),
     "services[1].jobs[0].name: snapshot clashes with services[1].containers[2]"),
    (lambda s: s["containers"].append({"name": "db", "image": "x"}),
     "services[1].containers[2].name: db is already used by services[1].containers[0]"),
    (lambda s: s["containers"].append({"name": "infra", "image": "x"}),
     "services[1].containers[2].name: 'infra' is taken by the pod's infra container (board-infra)"),
    (lambda s: s["containers"].append({"name": "a@b", "image": "x"}),
     "services[1].containers[2].name: 'a@b' is not a container name"),
    (lambda s: s["containers"][1].update(requires=["cache"]),
     "services[1].containers[1].requires[0]: 'cache' is not a container of this pod (db, app)"),
    (lambda s: s["containers"][0].update(requires=["app"]),
     "services[1].containers: the requires form a cycle (db -> app -> db)"),
    (lambda s: s.update(exec="/bin/true"),
     "services[1].exec: in a pod this belongs to each containers[] entry"),
    (lambda s: s.update(containers=[]), "services[1].containers: a pod needs at least one container"),
    (lambda s: s["containers"][0].update(auto_update="registry", image="valkey:8"),
     "services[1].containers[0].image: AutoUpdate=registry needs a fully qualified reference"),
    (lambda s: s.update(update_window={"deny": ["06:00-07:00"]}),
     "services[1].update_window, update_webhook_secret: need auto_update on a container"),
])
def test_malformed_pods_and_jobs_fail_naming_the_field_before_any_step(monkeypatch, rec, mutate, message):  # noqa: F811
    specs = [spec("a", 2001, 8001), pod()]
    mutate(specs[1])
    failed, result = run_module(monkeypatch, services, {"services": specs})
    assert failed
    assert result["msg"].startswith("nothing was changed")
    assert message in result["msg"]
    assert rec.calls == []


@needs_analyze
@pytest.mark.parametrize("job,message", [
    ({"schedule": "every tuesday"}, "services[1].jobs[0].schedule: 'every tuesday' is not a systemd calendar event "
                                    "for OnCalendar=: Failed to parse calendar specification 'every tuesday'"),
    ({"timeout": "5 fortnights"}, "services[1].jobs[0].timeout: '5 fortnights' is not a systemd time span for "
                                  "TimeoutStartSec="),
    ({"randomized_delay": "soon"}, "services[1].jobs[0].randomized_delay: 'soon' is not a systemd time span"),
])
def test_schedules_and_spans_are_parsed_by_systemd_before_any_step(monkeypatch, rec, job, message):  # noqa: F811
    specs = [spec("a", 2001, 8001), pod()]
    specs[1]["jobs"][0].update(job)
    failed, result = run_module(monkeypatch, services, {"services": specs})
    assert failed and message in result["msg"], result["msg"]
    assert result["msg"].startswith("nothing was changed")
    assert rec.calls == []


@needs_analyze
def test_good_schedules_pass(monkeypatch, rec):  # noqa: F811
    rec.site_changed = False
    job = {"name": "j", "exec": "true", "schedule": "Mon..Fri *-*-* 03:00:00", "timeout": "1h 30min",
           "randomized_delay": "10m", "persistent": True}
    failed, result = run_module(monkeypatch, services, {"services": [spec("a", 2001, 8001, jobs=[job]), pod()]})
    assert not failed, result["msg"]
    assert [c[:2] for c in rec.calls] == [("user", "a"), ("unit", "a"), ("user", "board"), ("unit", "board")]


@pytest.mark.parametrize("extra,message", [
    ({}, "one of the following is required: image, containers"),
    ({"image": "x", "containers": [{"name": "a", "image": "x"}]}, "mutually exclusive: image|containers"),
    ({"containers": [{"name": "a"}]}, "missing required arguments: image"),
    ({"image": "x", "jobs": [{"name": "j", "exec": "true"}]}, "missing required arguments: schedule"),
])
def test_argument_spec_refuses_shapes(monkeypatch, rec, extra, message):  # noqa: F811
    base = {"name": "a", "uid": 2001}
    base.update(extra)
    failed, result = run_module(monkeypatch, services, {"services": [base]})
    assert failed and message in result["msg"], result["msg"]
    assert rec.calls == []


def test_the_role_check_names_the_same_fields():
    specs = [pod()]
    specs[0]["containers"][1]["publish_ports"] = ["127.0.0.1:8302:8080"]
    specs[0]["jobs"].append(dict(specs[0]["jobs"][0]))
    errors = service_spec_conflicts(specs)
    assert errors[0].startswith("service_specs[0].containers[1].publish_ports: ")
    assert errors[1].startswith("service_specs[0].jobs[1].name: snapshot clashes with service_specs[0].jobs[0]")


def test_pod_ports_still_clash_with_other_services():
    errors = service_spec_conflicts([spec("a", 2001, 8301), pod()])
    assert errors == ["service_specs[1].publish_ports[0]: host port 8301/tcp is already published by "
                      "service_specs[0] (a)"]


# ---------------------------------------------------------------- what the units say

def test_pod_units():
    units = service_units.units(pod(), "/home/board", PARAMS, {"db": "sha256:d"},
                                {None: "/home/board/.config/selfhost-pi/board.env"})
    assert [u["fname"] for u in units] == ["board.pod", "board-db.container", "board-app.container",
                                           "board-job-snapshot.container", "board-job-snapshot.timer"]
    units = by_name(units)
    pod_unit = units["board.pod"]
    assert pod_unit["service"] == "board.service" and pod_unit["state"] == "started"
    assert pod_unit["content"].splitlines()[1:] == [
        "[Unit]", "Description=selfhost.pi service board (pod)", "",
        "[Pod]", "PodName=board", "ServiceName=board", "PublishPort=127.0.0.1:8301:8080",
        "Volume=%h/shared:/shared", "PodmanArgs=--exit-policy=continue", "",
        "[Install]", "WantedBy=default.target"]
    db, app = units["board-db.container"], units["board-app.container"]
    assert db["service"] == "board-db.service" and db["part_of"] == "board.pod"
    assert "Pod=board.pod\n" in db["content"] and "ContainerName=board-db\n" in db["content"]
    assert "PublishPort" not in db["content"] + app["content"]
    assert "Notify=healthy\n" in db["content"]            # app waits for it: up once healthy
    assert "Notify" not in app["content"]
    assert "[Unit]\nDescription=selfhost.pi service board, container app\nAfter=board-db.service\n" \
           "Requires=board-db.service\n" in app["content"]
    assert "Label=selfhost.pi.image-archive=sha256:d\n" in db["content"]
    assert "Label" not in app["content"]
    assert "Environment=VALKEY=127.0.0.1:6379\n" in app["content"]
    assert "EnvironmentFile=/home/board/.config/selfhost-pi/board.env\n" in app["content"]
    assert "[Service]\nRestart=always\nTimeoutStartSec=300\n" in app["content"]
    assert "[Install]" not in db["content"]               # the pod wants its members


def test_job_units():
    units = by_name(service_units.units(pod(), "/home/board", PARAMS, {}, {}))
    job, timer = units["board-job-snapshot.container"], units["board-job-snapshot.timer"]
    assert job["state"] == "present" and job["kind"] == "quadlet"
    assert "Pod=board.pod\nStartWithPod=false\n" in job["content"]   # reaches the members, never started by the pod
    assert "Image=localhost/valkey:1\n" in job["content"]            # the first member's, by default
    assert "[Service]\nType=oneshot\nTimeoutStartSec=5min\nTimeoutStopSec=15\n" in job["content"]
    assert "RemainAfterExit" not in job["content"] and "Restart" not in job["content"]
    assert timer["kind"] == "systemd" and timer["service"] == "board-job-snapshot.timer"
    assert timer["wanted_by"] == "timers.target" and timer["state"] == "started"
    assert timer["content"].splitlines()[1:] == [
        "[Unit]", "Description=selfhost.pi schedule of job snapshot of service board", "",
        "[Timer]", "OnCalendar=hourly", "AccuracySec=1s", "",
        "[Install]", "WantedBy=timers.target"]


def test_job_of_a_single_container_service_shares_its_image_volumes_and_environment():
    base = spec("a", 2001, 8001, volumes=["%h/data:/data"], environment={"A": "1"},
                jobs=[{"name": "refresh", "schedule": "daily", "exec": "refresh /data", "environment": {"B": "2"},
                       "randomized_delay": "30m", "persistent": True}])
    units = by_name(service_units.units(base, "/home/a", PARAMS, {}, {None: "/home/a/.config/selfhost-pi/a.env"}))
    job = units["a-job-refresh.container"]["content"]
    assert "Image=localhost/a:1\n" in job and "Volume=%h/data:/data\n" in job and "Pod=" not in job
    assert "Environment=A=1\nEnvironment=B=2\n" in job
    assert "EnvironmentFile=/home/a/.config/selfhost-pi/a.env\n" in job
    timer = units["a-job-refresh.timer"]["content"]
    assert "RandomizedDelaySec=30m\nPersistent=true\n" in timer


def test_a_single_container_unit_does_not_change_with_jobs():
    plain = spec("a", 2001, 8001, volumes=["%h/data:/data"])
    with_jobs = dict(copy.deepcopy(plain), jobs=[{"name": "refresh", "schedule": "daily", "exec": "x"}])
    first = service_units.units(plain, "/home/a", PARAMS, {}, {})
    second = service_units.units(with_jobs, "/home/a", PARAMS, {}, {})
    assert len(first) == 1 and first[0]["content"] == second[0]["content"]
    assert first[0]["fname"] == "a.container" and first[0]["service"] == "a.service"


def test_updates_wanted_by_a_member():
    assert not service_spec.updates_wanted(pod())
    updating = pod()
    updating["containers"][1]["auto_update"] = "local"
    assert service_spec.updates_wanted(updating)
    assert service_spec.updates_wanted(spec("a", 2001, 8001, auto_update="local"))
