"""Run an Ansible module's main() in-process and capture its result."""
import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes


# The AnsibleModule of the last run_module() call, for checks of what Ansible
# itself does with it (e.g. the values it masks as no_log).
LAST = {}


class ModuleExit(Exception):
    def __init__(self, result, failed):
        super().__init__(result)
        self.result = result
        self.failed = failed


def run_module(monkeypatch, module, args, check_mode=False, diff=False):
    """Call module.main() with ``args``; return (failed, result)."""
    args = dict(args)
    args["_ansible_check_mode"] = check_mode
    args["_ansible_diff"] = diff
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)

    def exit_json(self, **kwargs):
        LAST["module"] = self
        kwargs.setdefault("changed", False)
        raise ModuleExit(kwargs, False)

    def fail_json(self, msg, **kwargs):
        LAST["module"] = self
        kwargs["msg"] = msg
        raise ModuleExit(kwargs, True)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    with pytest.raises(ModuleExit) as info:
        module.main()
    return info.value.failed, info.value.result
