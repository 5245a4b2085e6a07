# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cross-service checks for the service role's declarations.

Types, required keys and unknown keys are checked by the role's
meta/argument_specs.yml. What one spec cannot see on its own is checked here:
two services with the same name, UID, host port or domain, and published
ports that are malformed or name no address. The rules live in
module_utils/service_spec.py, shared with the selfhost.pi.services module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.selfhost.pi.plugins.module_utils import managed_record
from ansible_collections.selfhost.pi.plugins.module_utils.errors import HostStateError
from ansible_collections.selfhost.pi.plugins.module_utils.service_spec import conflicts

DOCUMENTATION = r"""
name: service_spec_conflicts
author: selfhost.pi contributors
version_added: 0.1.0
short_description: Find clashes between service declarations
description:
  - Takes the list given to the C(selfhost.pi.service) role (C(service_specs)) and returns one
    message per clash, that is a duplicate C(name), C(uid), published host port (Quadlet C(PublishPort=)
    host side, per host IP) or C(domain).
  - Domains compare without case and without a trailing dot, as nginx and DNS do (C(Blog.Example.org.) clashes
    with C(blog.example.org)). Host ports compare as numbers; a range (C(8000-8010)) clashes with every port it
    covers. An address of C(0.0.0.0) or C(::) (or none) clashes with every address.
  - Also one message per malformed C(publish_ports) entry; every port must be 1-65535 written without leading
    zeros, a range must not run backwards, the address must be an IP address.
  - Also one message per C(publish_ports) entry without a host address (C(8080:80), C(80)); podman would publish
    it on every interface, where clients reach the service past nginx. Write C(127.0.0.1:8080:80) for a service
    behind nginx, or C(0.0.0.0:8080:80) (C([::]:8080:80)) to expose a port on purpose.
  - Also one message per malformed C(auto_update), C(update_window) or C(update_webhook_secret) entry.
  - Each message names the field, for example C(service_specs[2].uid).
  - Also one message per spec that takes a retired UID (see O(record)).
  - An empty list means no clash.
options:
  _input:
    description: The C(service_specs) list.
    type: list
    elements: dict
    required: true
  reserved:
    description:
      - Identifiers already taken outside the list, as a dict with optional keys C(uid), C(name),
        C(domain) and C(port), each a list; for example the blog's user and domain.
    type: dict
    default: {}
  var:
    description: Variable name used in the messages.
    type: str
    default: service_specs
  record:
    description:
      - The record of the C(selfhost.pi.services) module on the host (C(/var/lib/selfhost-pi/managed.json)), as its
        JSON text or decoded; empty when there is none. A spec that takes the UID of a removed service (retired
        in the record, or recorded and no longer declared) under another name is refused naming
        C(service_specs[i].uid); so is a removed service that comes back with another UID. A record that is not
        JSON is ignored here (the module reports it).
    type: raw
    default: null
"""

EXAMPLES = r"""
- name: Refuse clashing service declarations
  ansible.builtin.assert:
    that: errors | length == 0
    fail_msg: "{{ errors | join('; ') }}"
  vars:
    errors: "{{ service_specs | selfhost.pi.service_spec_conflicts(reserved={'uid': [blog_uid]}) }}"
"""

RETURN = r"""
_value:
  description: One human-readable message per clash, empty when there is none.
  type: list
  elements: str
"""


def service_spec_conflicts(specs, reserved=None, var="service_specs", record=None):
    errors = conflicts(specs, reserved=reserved, var=var)
    if record and not isinstance(record, dict):
        try:
            record = managed_record.parse(str(record))
        except HostStateError:
            record = None
    return errors + managed_record.uid_errors(specs, record, var=var)


class FilterModule(object):
    def filters(self):
        return {"service_spec_conflicts": service_spec_conflicts}
