"""The service role's stale update runners: the find that detects them, and the names it derives.

The expression of roles/service/vars/main.yml runs through Ansible's own
templating; the find's `contains` pattern is matched the way
ansible.builtin.find matches it (re.match on each line) against the role's
unit templates and against a unit a person wrote.
"""
import os
import re

import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                    "roles", "service")


def load(*parts):
    with open(os.path.join(ROLE, *parts)) as handle:
        return yaml.safe_load(handle)


def find_task():
    (task,) = [t for t in load("tasks", "main.yml") if "ansible.builtin.find" in t]
    return task["ansible.builtin.find"]


def stale(found, declared):
    variables = dict(__service_update_units_found={"files": [{"path": "/etc/systemd/system/" + f} for f in found]},
                     service_update_specs=[{"name": n} for n in declared])
    expression = load("vars", "main.yml")["__service_stale_updates"]
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(expression))


def test_only_runners_no_longer_declared_are_stale():
    found = ["selfhost-update-app.service", "selfhost-update-app.path", "selfhost-update-app.timer",
             "selfhost-update-old.service", "selfhost-update-old.timer", "selfhost-update-my.app.service"]
    assert stale(found, ["app"]) == ["old"]  # a name no service could have is never touched
    assert stale(found[:3], ["app"]) == []
    assert stale([], []) == []


def test_the_find_sees_the_roles_units_and_never_a_persons():
    find = find_task()
    pattern = re.compile(find["contains"])
    for ext in ("service", "path", "timer"):
        assert "selfhost-update-*.%s" % ext in find["patterns"]
        with open(os.path.join(ROLE, "templates", "selfhost-update.%s.j2" % ext)) as handle:
            assert pattern.match(handle.readline())
    mine = "[Unit]\nDescription=my own update helper\n# Managed by selfhost.pi (role service) -- copied\n"
    assert not any(pattern.match(line) for line in mine.splitlines()[:2])
    assert find["paths"] == "/etc/systemd/system"
