# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hook definitions of adnanh/webhook's hooks file (roles/webhook)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: webhook_definitions
author: selfhost.pi contributors
version_added: 0.2.0
short_description: adnanh/webhook hook definitions that only queue a request, from hook declarations
description:
  - Takes hook declarations (C(id), C(secret), optional C(branch)) and returns the list of hook definitions of
    adnanh/webhook's hooks file (upstream C(docs/Hook-Definition.md)), in the order given, followed by one hook
    C(update-NAME) for each entry of O(services) that has C(update_webhook_secret).
  - Each hook runs O(command) with the hook id as its only argument (C(pass-arguments-to-command), source
    C(string)) in C(/), answers C(queued), and has the C(trigger-rule) C(and) of an C(or) of
    C(payload-hmac-sha256) matches of the secret over the raw body, one per header of O(signature_headers), and,
    when C(branch) is set, a C(value) match of the payload's C(ref) with C(refs/heads/BRANCH)
    (upstream C(docs/Hook-Rules.md)).
  - A request that does not match gets HTTP 403 (C(trigger-rule-mismatch-http-response-code)); signature
    headers that are absent count as a mismatch, not an error (C(trigger-signature-soft-failures)), so one
    hook takes GitHub's, Gitea's and Forgejo's signatures.
  - The result holds the secrets; write it with C(no_log) to a file only the webhook user can read.
  - Fails naming the declaration (for example C(hooks[1].secret)) when an C(id) or a C(secret) is missing; no
    message ever holds a secret.
options:
  _input:
    description: Hook declarations, each a dict with C(id) (str), C(secret) (str) and optionally C(branch) (str).
    type: list
    elements: dict
    required: true
  command:
    description: Absolute path of the command each verified request runs (C(execute-command)).
    type: path
    required: true
  services:
    description:
      - Service specs (the C(selfhost.pi.service) role's C(service_specs)); each with C(update_webhook_secret)
        adds the hook C(update-NAME) with that secret and no branch.
    type: list
    elements: dict
    default: []
  signature_headers:
    description:
      - Request headers that may carry the HMAC-SHA256 signature (hex, GitHub prefixes C(sha256=)).
    type: list
    elements: str
    default: [X-Hub-Signature-256, X-Gitea-Signature, X-Forgejo-Signature]
"""

EXAMPLES = r"""
- name: Write the hooks file (secrets inside)
  ansible.builtin.copy:
    content: >-
      {{ webhook_hooks | selfhost.pi.webhook_definitions('/usr/local/libexec/selfhost-pi/selfhost-hook-request',
                                                         services=service_specs) | to_nice_json(indent=2) }}
    dest: /etc/selfhost-pi/webhook/hooks.json
    owner: root
    group: webhook
    mode: "0640"
  no_log: true
"""

RETURN = r"""
_value:
  description:
    - One hook definition per declaration, then one per service with C(update_webhook_secret); keys C(id),
      C(execute-command), C(command-working-directory), C(pass-arguments-to-command), C(response-message),
      C(trigger-rule), C(trigger-rule-mismatch-http-response-code) and C(trigger-signature-soft-failures).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

SIGNATURE_HEADERS = ("X-Hub-Signature-256", "X-Gitea-Signature", "X-Forgejo-Signature")


def _declarations(hooks, services):
    for index, hook in enumerate(hooks or []):
        if not isinstance(hook, dict):
            raise AnsibleFilterError("hooks[%d]: must be a dict with id and secret" % index)
        for key in ("id", "secret"):
            if hook.get(key) in (None, ""):
                raise AnsibleFilterError("hooks[%d].%s: required" % (index, key))
        yield str(hook["id"]), hook["secret"], hook.get("branch") or ""
    for index, spec in enumerate(services or []):
        if isinstance(spec, dict) and spec.get("update_webhook_secret") not in (None, ""):
            if not spec.get("name"):
                raise AnsibleFilterError("services[%d].name: required with update_webhook_secret" % index)
            yield "update-%s" % spec["name"], spec["update_webhook_secret"], ""


def webhook_definitions(hooks, command, services=None, signature_headers=SIGNATURE_HEADERS):
    if not isinstance(command, str) or not command.startswith("/"):
        raise AnsibleFilterError("webhook_definitions: command must be an absolute path, not %r" % (command,))
    if not signature_headers or isinstance(signature_headers, str):
        raise AnsibleFilterError("webhook_definitions: signature_headers must be a non-empty list of header names")
    definitions = []
    for hook_id, secret, branch in _declarations(hooks, services):
        signatures = [{"match": {"type": "payload-hmac-sha256", "secret": str(secret),
                                 "parameter": {"source": "header", "name": header}}}
                      for header in signature_headers]
        rules = [{"or": signatures}]
        if branch:
            rules.append({"match": {"type": "value", "value": "refs/heads/%s" % branch,
                                    "parameter": {"source": "payload", "name": "ref"}}})
        definitions.append({
            "id": hook_id,
            "execute-command": command,
            "command-working-directory": "/",
            "pass-arguments-to-command": [{"source": "string", "name": hook_id}],
            "response-message": "queued\n",
            "trigger-rule-mismatch-http-response-code": 403,
            "trigger-signature-soft-failures": True,
            "trigger-rule": {"and": rules},
        })
    return definitions


class FilterModule(object):
    def filters(self):
        return {"webhook_definitions": webhook_definitions}
