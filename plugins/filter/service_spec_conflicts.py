# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cross-service checks for the service role's declarations.

Types, required keys and unknown keys are checked by the role's
meta/argument_specs.yml. What one spec cannot see on its own is checked here:
two services with the same name, UID, host port or domain.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: service_spec_conflicts
author: selfhost.pi contributors
version_added: 0.1.0
short_description: Find clashes between service declarations
description:
  - Takes the list given to the C(selfhost.pi.service) role (C(service_specs)) and returns one
    message per clash, that is a duplicate C(name), C(uid), published host port (Quadlet C(PublishPort=)
    host side, per host IP) or C(domain).
  - Each message names the field, for example C(service_specs[2].uid).
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


def host_port(publish):
    """Return (host_ip, host_port) of a PublishPort= value, or None when podman picks the port.

    Forms (podman-run(1) --publish): CONTAINER, HOST:CONTAINER, IP:HOST:CONTAINER,
    IP::CONTAINER, [IPv6]:HOST:CONTAINER, each optionally with /tcp or /udp.
    """
    value = str(publish)
    proto = "tcp"
    if "/" in value:
        value, proto = value.rsplit("/", 1)
    ip = ""
    if value.startswith("["):
        ip, _, value = value[1:].partition("]")
        value = value.lstrip(":")
        parts = value.split(":")
        host = parts[0] if len(parts) > 1 else ""
    else:
        parts = value.split(":")
        if len(parts) == 3:
            ip, host = parts[0], parts[1]
        elif len(parts) == 2:
            host = parts[0]
        else:
            host = ""
    if not host:
        return None
    return (ip or "0.0.0.0", host, proto)


def _overlaps(a, b):
    wildcard = ("0.0.0.0", "::", "")
    return a[1] == b[1] and a[2] == b[2] and (a[0] == b[0] or a[0] in wildcard or b[0] in wildcard)


def service_spec_conflicts(specs, reserved=None, var="service_specs"):
    reserved = reserved or {}
    errors = []
    seen = {"name": {}, "uid": {}, "domain": {}}
    for key in seen:
        for value in reserved.get(key, []) or []:
            if value is not None:
                seen[key][str(value)] = "another role"
    ports = [((("0.0.0.0", str(p), "tcp")), "another role") for p in reserved.get("port", []) or []]

    for index, spec in enumerate(specs or []):
        where = "%s[%d]" % (var, index)
        label = spec.get("name", "?")
        for key in ("name", "uid", "domain"):
            value = spec.get(key)
            if value in (None, ""):
                continue
            owner = seen[key].get(str(value))
            if owner:
                errors.append("%s.%s: %s is already used by %s" % (where, key, value, owner))
            else:
                seen[key][str(value)] = "%s (%s)" % (where, label)
        for pindex, publish in enumerate(spec.get("publish_ports") or []):
            parsed = host_port(publish)
            if parsed is None:
                continue
            for other, owner in ports:
                if _overlaps(parsed, other):
                    errors.append("%s.publish_ports[%d]: host port %s/%s is already published by %s"
                                  % (where, pindex, parsed[1], parsed[2], owner))
                    break
            else:
                ports.append((parsed, "%s (%s)" % (where, label)))
    return errors


class FilterModule(object):
    def filters(self):
        return {"service_spec_conflicts": service_spec_conflicts}
