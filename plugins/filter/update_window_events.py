# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The systemd timer events of a service's update window (roles/service)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.pi.plugins.module_utils import update_window

DOCUMENTATION = r"""
name: update_window_events
author: selfhost.pi contributors
version_added: 0.2.0
short_description: OnCalendar= events at which a service's update window opens
description:
  - Takes a service spec's C(update_window) (C(allow) and/or C(deny) lists of C([DAYS ]HH:MM-HH:MM), host local time)
    and returns systemd C(OnCalendar=) expressions (systemd.time(7)) - V(daily), each C(allow) start and each
    C(deny) end - so the update timer runs the minute a queued request may be applied.
  - The format and its rules live in C(module_utils/update_window.py), shared with the C(selfhost.pi.services)
    module and the update runner on the host.
options:
  _input:
    description: The C(update_window) dict; empty or V(null) means no window (always open).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Timer events
  ansible.builtin.debug:
    msg: "{{ {'allow': ['Sun 03:00-05:00'], 'deny': ['22:00-01:00']} | selfhost.pi.update_window_events }}"
  # -> ['daily', 'Sun *-*-* 03:00:00', '*-*-* 01:00:00']
"""

RETURN = r"""
_value:
  description: C(OnCalendar=) expressions, V(daily) first.
  type: list
  elements: str
"""


def update_window_events(window):
    errors = update_window.validate(window)
    if errors:
        raise AnsibleFilterError("; ".join(errors))
    return update_window.calendar_events(window)


class FilterModule(object):
    def filters(self):
        return {"update_window_events": update_window_events}
