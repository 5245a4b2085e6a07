# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: service_updates
author: selfhost.pi maintainers (@selfhost)
version_added: 0.2.0
short_description: The services whose images podman auto-update may replace
description:
  - Given service specs (the C(selfhost.pi.service) role's C(service_specs)), returns one entry per service with
    C(auto_update), or, for a pod, with a member (C(containers[]) entry) that has C(auto_update); each entry holds
    only C(name), C(uid), C(update_window) and, for a pod, C(members) (its members' services, which the update
    runner waits for after an update) - never a secret - which is what the update runner's tasks need.
options:
  _input:
    description: Service specs.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: One update runner per service that updates an image
  ansible.builtin.debug:
    msg: "{{ item.name }}"
  loop: "{{ service_specs | selfhost.pi.service_updates }}"
"""

RETURN = r"""
_value:
  description: C(name), C(uid), C(update_window) (empty when not given) and C(members) (empty for one container).
  type: list
  elements: dict
"""

from ansible_collections.selfhost.pi.plugins.module_utils.service_spec import member_unit, updates_wanted


def service_updates(specs):
    return [dict(name=spec["name"], uid=spec["uid"], update_window=spec.get("update_window") or {},
                 members=["%s.service" % member_unit(spec, m["name"]) for m in spec.get("containers") or []])
            for spec in specs or [] if isinstance(spec, dict) and updates_wanted(spec)]


class FilterModule(object):
    def filters(self):
        return {"service_updates": service_updates}
