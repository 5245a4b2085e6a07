# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record of what the ``services`` module manages on the host, and the retired UIDs.

``/var/lib/selfhost-pi/managed.json`` (root, 0600), written atomically by each
converge of ``selfhost.pi.services`` that changes it::

    {"version": 1,
     "services": {"NAME": {"uid": 2101, "home": "/home/NAME", "units": ["NAME.container", ...],
                           "site": "NAME", "domain": "x.example.org", "data": {...backup entry...}}},
     "retired": {"NAME": {"uid": 2103, "home": "/home/NAME", "user_removed": false,
                          "data_removed": false}}}

Pruning acts only on what the record names: a service that is on the host but
not in the record (made by hand, or converged before the record existed) is
never pruned. A retired service's UID stays in ``retired`` for good (a
tombstone): no other service may take it, since its files (home, volumes,
backups) keep that owner; the same name coming back gets it again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.selfhost.pi.plugins.module_utils.errors import HostStateError
from ansible_collections.selfhost.pi.plugins.module_utils.files import ManagedFile, apply_in_state_dir, read_text

VERSION = 1
MODE = 0o600  # pre_backup commands may carry secrets, as backup.json does


def empty():
    return {"version": VERSION, "services": {}, "retired": {}}


def parse(text, path="managed.json"):
    """The record in ``text`` (None: no record yet, returned as None). Raises HostStateError when malformed."""
    if text is None:
        return None
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise HostStateError("%s is not JSON (%s); fix or remove it (it is rebuilt from the declared services, "
                             "losing the retired UIDs)" % (path, exc), path=path)
    if not isinstance(record, dict) or not isinstance(record.get("services", {}), dict) \
            or not isinstance(record.get("retired", {}), dict):
        raise HostStateError("%s: not a selfhost.pi record (services and retired must be objects)" % path, path=path)
    out = empty()
    out["services"].update(record.get("services") or {})
    out["retired"].update(record.get("retired") or {})
    return out


def load(path):
    """The record at ``path`` (a link is never followed), or None when there is none."""
    return parse(read_text(path), path)


def render(record):
    return json.dumps(record, indent=2, sort_keys=True) + "\n"


def managed_file(path, record):
    """The record as a ManagedFile (compare, diff, atomic write)."""
    return ManagedFile(path, render(record), MODE, 0, 0)


def write(path, record):
    """Write the record atomically (temporary file beside it, then rename); True when it changed."""
    return apply_in_state_dir(managed_file(path, record))


def retired_uids(record):
    """{uid: name} of the retired services."""
    out = {}
    for name, entry in ((record or {}).get("retired") or {}).items():
        if isinstance(entry, dict) and entry.get("uid") is not None:
            out[int(entry["uid"])] = name
    return out


def uid_errors(specs, record, var="services"):
    """One message per spec whose UID is retired (or is a recorded service's that is being removed) under
    another name, or whose name was retired with another UID, naming ``VAR[i].uid``."""
    if not record:
        return []
    errors = []
    declared = set(str(s.get("name")) for s in specs or [] if isinstance(s, dict))
    owners = dict(retired_uids(record))
    for name, entry in (record.get("services") or {}).items():
        if name not in declared and isinstance(entry, dict) and entry.get("uid") is not None:
            owners[int(entry["uid"])] = name  # pruned by this converge: it becomes retired
    retired = record.get("retired") or {}
    for index, spec in enumerate(specs or []):
        if not isinstance(spec, dict):
            continue
        try:
            uid = int(spec.get("uid"))
        except (TypeError, ValueError):
            continue  # named by the spec checks
        name = str(spec.get("name"))
        owner = owners.get(uid)
        if owner is not None and owner != name:
            errors.append("%s[%d].uid: %d belonged to the removed service %s, whose files (home, volumes, backups) "
                          "keep that owner; a UID is never given to another service (choose another one, or declare "
                          "%s again); nothing was changed" % (var, index, uid, owner, owner))
            continue
        old = retired.get(name)
        if isinstance(old, dict) and old.get("uid") is not None and int(old["uid"]) != uid:
            errors.append("%s[%d].uid: %s was removed with UID %d; it comes back with the same UID, which owns its "
                          "data; nothing was changed" % (var, index, name, int(old["uid"])))
    return errors
