"""selfhost.pi.webhook_definitions: the hooks file of adnanh/webhook (roles/webhook)."""
import json
import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.pi.plugins.filter.webhook_definitions import FilterModule, webhook_definitions

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
COMMAND = "/usr/local/libexec/selfhost-pi/selfhost-hook-request"
HEADERS = ["X-Hub-Signature-256", "X-Gitea-Signature", "X-Forgejo-Signature"]


def signatures(secret):
    return [{"match": {"type": "payload-hmac-sha256", "secret": secret,
                       "parameter": {"source": "header", "name": header}}} for header in HEADERS]


def definition(hook_id, rules):
    return {
        "id": hook_id,
        "execute-command": COMMAND,
        "command-working-directory": "/",
        "pass-arguments-to-command": [{"source": "string", "name": hook_id}],
        "response-message": "queued\n",
        "trigger-rule-mismatch-http-response-code": 403,
        "trigger-signature-soft-failures": True,
        "trigger-rule": {"and": rules},
    }


def test_declarations_then_services_each_signed_by_every_header():
    hooks = [{"id": "docs", "secret": "docs-secret-0123456789", "branch": "release"},
             {"id": "blog", "secret": "blog-secret-0123456789", "branch": ""}]
    services = [{"name": "app", "uid": 2701, "update_webhook_secret": "app-secret-0123456789"},
                {"name": "quiet", "uid": 2702}]
    assert webhook_definitions(hooks, COMMAND, services=services) == [
        definition("docs", [{"or": signatures("docs-secret-0123456789")},
                            {"match": {"type": "value", "value": "refs/heads/release",
                                       "parameter": {"source": "payload", "name": "ref"}}}]),
        definition("blog", [{"or": signatures("blog-secret-0123456789")}]),
        definition("update-app", [{"or": signatures("app-secret-0123456789")}]),
    ]


def test_secrets_are_strings_and_json_keeps_them_exactly():
    secret = 'a "quoted" \\ secret \u00fc'
    result = webhook_definitions([{"id": "n", "secret": 12345678901234567}, {"id": "q", "secret": secret}], COMMAND)
    assert result[0]["trigger-rule"]["and"][0]["or"][0]["match"]["secret"] == "12345678901234567"
    assert json.loads(json.dumps(result))[1]["trigger-rule"]["and"][0]["or"][2]["match"]["secret"] == secret


def test_nothing_declared_is_an_empty_list():
    assert webhook_definitions([], COMMAND) == []
    assert webhook_definitions(None, COMMAND, services=None) == []
    assert FilterModule().filters()["webhook_definitions"] is webhook_definitions


@pytest.mark.parametrize("hooks,services,message", [
    ([{"id": "a", "secret": "s" * 16}, {"id": "b"}], [], "hooks[1].secret: required"),
    ([{"secret": "s" * 16}], [], "hooks[0].id: required"),
    (["blog"], [], "hooks[0]: must be a dict"),
    ([], [{"uid": 1, "update_webhook_secret": "s" * 16}], "services[0].name: required"),
])
def test_a_bad_declaration_is_named_without_its_secret(hooks, services, message):
    with pytest.raises(AnsibleFilterError) as exc:
        webhook_definitions(hooks, COMMAND, services=services)
    assert str(exc.value).startswith(message) and "s" * 16 not in str(exc.value)


@pytest.mark.parametrize("kwargs", [{"command": "selfhost-hook-request"}, {"signature_headers": []},
                                    {"signature_headers": "X-Hub-Signature-256"}])
def test_bad_options_fail(kwargs):
    args = dict(command=COMMAND)
    args.update(kwargs)
    with pytest.raises(AnsibleFilterError, match="webhook_definitions: "):
        webhook_definitions([{"id": "a", "secret": "s" * 16}], **args)


def test_the_role_writes_the_filters_json_without_logging_it():
    with open(os.path.join(ROOT, "roles", "webhook", "tasks", "hooks.yml")) as handle:
        tasks = yaml.safe_load(handle)
    (task,) = [t for t in tasks if "webhook_definitions" in json.dumps(t)]
    copy = task["ansible.builtin.copy"]
    assert task["no_log"] is True
    assert copy["content"].startswith("{{ __webhook_definitions | to_nice_json(indent=2) }}")
    assert (copy["dest"], copy["owner"], copy["group"], copy["mode"]) == (
        "{{ webhook_hooks_file }}", "root", "{{ webhook_user }}", "0640")
