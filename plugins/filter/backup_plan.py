# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: backup_plan
author: selfhost.pi maintainers (@selfhost)
version_added: 0.2.0
short_description: The data of each service, with absolute paths, for backups and restores
description:
  - Given service specs (the C(selfhost.pi.service) role's C(service_specs)), returns one entry per spec that
    declares C(data), with its paths resolved as the backup script and M(selfhost.pi.restic_restore) use them.
  - Relative paths are under the service's home C(/home/NAME); each named volume becomes its mount point
    C(/home/NAME/.local/share/containers/storage/volumes/VOLUME/_data).
  - Fails naming the field (for example C(service_specs[2].data.paths[0])) for a path that is not one service's data.
options:
  _input:
    description: Service specs.
    type: list
    elements: dict
    required: true
  purpose:
    description:
      - C(backup) returns C(name), C(uid), C(home), C(paths), C(sqlite) and C(pre_backup) (what the backup script
        reads); C(restore) returns the options of M(selfhost.pi.restic_restore)'s C(services) (C(name), C(uid),
        C(paths), C(sqlite)).
    type: str
    choices: [backup, restore]
    default: backup
  var:
    description: Variable name used in error messages.
    type: str
    default: service_specs
"""

EXAMPLES = r"""
- name: Restore what has no data yet
  selfhost.pi.restic_restore:
    services: "{{ service_specs | selfhost.pi.backup_plan('restore') }}"
"""

RETURN = r"""
_value:
  description: One entry per service that declares data.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.pi.plugins.module_utils import service_data


def backup_plan(specs, purpose="backup", var="service_specs"):
    if purpose not in ("backup", "restore"):
        raise AnsibleFilterError("backup_plan: purpose must be backup or restore, not %r" % (purpose,))
    plan = []
    for index, spec in enumerate(specs or []):
        if not isinstance(spec, dict) or not service_data.declares_data(spec):
            continue
        field = "%s[%d].data" % (var, index)
        for key in ("name", "uid"):
            if spec.get(key) in (None, ""):
                raise AnsibleFilterError("%s[%d].%s: required with data" % (var, index, key))
        try:
            int(spec["uid"])
        except (TypeError, ValueError):
            raise AnsibleFilterError("%s[%d].uid: %r is not an integer" % (var, index, spec["uid"]))
        try:
            entry = service_data.normalize(spec, field)
        except (ValueError, TypeError) as exc:
            raise AnsibleFilterError(str(exc))
        if purpose == "restore":
            entry = dict((key, entry[key]) for key in ("name", "uid", "paths", "sqlite"))
        plan.append(entry)
    return plan


class FilterModule(object):
    def filters(self):
        return {"backup_plan": backup_plan}
