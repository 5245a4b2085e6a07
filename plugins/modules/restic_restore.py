#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: restic_restore
short_description: Restore services' data from their restic snapshots, on a rebuilt host or on request
version_added: 0.2.0
author: selfhost.pi maintainers (@selfhost)
description:
  - Brings back the data of services from the newest (or a chosen) restic snapshot tagged C(service:NAME), as the
    C(selfhost.pi.backup) role's backup script writes them.
  - With O(mode=missing) (what C(site.yml) uses) a service is restored only when none of its declared paths and
    databases holds data on the host (a path is data when it is a file, or a directory with at least one entry), and
    the repository has a snapshot of it that holds at least one file. A host that already has data is never
    overwritten. Run it before the
    services' units first start, so a rebuilt host starts with its data.
  - With O(mode=replace) (the C(restore.yml) playbook) the data is replaced on request. The service's unit
    C(NAME.service) is stopped in its user's manager when it runs, each current path is renamed to
    C(PATH.replaced-YYYYmmddTHHMMSS) and kept, the snapshot's copy is put in place, and the unit is started again.
  - The snapshot is first restored with C(restic restore --target) into a private directory under O(work_dir), then
    each path is renamed into place (copied with C(cp -a) when it is on another file system). restic restores the
    numeric owners and modes it recorded; as user and group IDs are pinned, the data is owned by the service's UID/GID
    (or its subordinate IDs) on the new host too. Missing parent directories, the service's home among them, are made
    with the owner and mode the snapshot recorded.
  - Root does not follow a link a service user could have placed. The destination's directories and the restored
    tree are walked one directory descriptor at a time with C(O_NOFOLLOW), and every rename, mkdir and copy is made
    relative to a descriptor; C(cp -a) writes into a private root-only directory beside the destination, then the copy
    is renamed into place. A symbolic link where a directory is expected (in the service's tree, or in the snapshot)
    fails that service's restore and nothing goes through it. Links in directories only root can write (such as
    C(/home -> /srv/home)) are followed.
  - SQLite databases come back from the consistent copy the backup took with SQLite's online backup API (kept in the
    snapshot under C(/var/lib/selfhost-pi/backup/sqlite/NAME/<path>)); stale C(-wal) and C(-shm) files are never
    restored.
  - Every service is planned first (restic is asked for its snapshots, nothing changes); a wrong password, a missing
    or unreachable repository, or an unknown snapshot fails the module before anything on the host changes.
  - A custom module because restore on rebuild is the core of the project's disaster recovery, and no module exists
    for restic. It talks to restic only through O(restic), a wrapper that knows the repository and its password, so
    no secret passes through the module's arguments or output.
options:
  services:
    description:
      - The services whose data to restore. The C(selfhost.pi.backup_plan) filter makes this list from the service
        specs' C(data) keys.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Service name; its snapshots carry the tag C(service:NAME), and its unit is C(NAME.service).
        type: str
        required: true
      uid:
        description: The service's pinned UID (for the record; owners come from the snapshot).
        type: int
        required: true
      paths:
        description:
          - Files and directories of the service's data, absolute or relative to C(/home/NAME). A named podman
            volume is the directory C(/home/NAME/.local/share/containers/storage/volumes/VOLUME/_data).
        type: list
        elements: str
        default: []
      sqlite:
        description: SQLite database files, absolute, relative to C(/home/NAME), or C(VOLUME:PATH) inside a named volume.
        type: list
        elements: str
        default: []
  host_state:
    description:
      - The host's own state kept in root-only directories, each entry backed up by C(selfhost-backup) as a snapshot
        tagged C(host-state:NAME) (the backup role's C(backup_host_state) list, whose C(tls) entry holds C(/etc/letsencrypt),
        the ACME account and certificates, and the internal CA in C(/etc/selfhost-pi/ca) and C(/etc/selfhost-pi/tls)).
      - An entry comes back only when none of its paths holds anything on the host (O(mode=missing) only), so a
        rebuilt host gets its certificates and CA back before the C(tls) role would ask a CA again, and a host's
        current certificates are never replaced.
      - Paths are absolute, not a system directory such as C(/etc) itself, and not under C(/home).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the entry; its snapshots carry the tag C(host-state:NAME).
        type: str
        required: true
      paths:
        description: Absolute paths of root-only directories or files.
        type: list
        elements: path
        required: true
  mode:
    description:
      - C(missing) restores only services without data on the host; C(replace) replaces the data of every listed
        service, setting the current data aside.
    type: str
    choices: [missing, replace]
    default: missing
  snapshot:
    description:
      - C(latest), or a snapshot ID (as C(restic snapshots) prints it) of the one service listed in O(services).
    type: str
    default: latest
  host:
    description:
      - Only snapshots taken with this C(restic backup --host) name; the backup role uses the inventory host name.
        Empty to accept snapshots from any host.
    type: str
    default: ""
  restic:
    description:
      - The restic command. The backup role installs C(/usr/local/sbin/selfhost-restic), which reads the repository
        and its password from root-only files and runs C(restic).
    type: path
    default: /usr/local/sbin/selfhost-restic
  work_dir:
    description: Where snapshots are restored before they are moved into place (made 0700 root).
    type: path
    default: /var/lib/selfhost-pi/restore
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The repository is read (restic snapshots); nothing on the host changes.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff_mode).
    support: full
    details: For each restored service, its paths before (present or missing) and the snapshot they come from.
notes:
  - Errors it raises, each naming the field or the service, before any change unless said otherwise
    - C(services[i].paths[j]) / C(services[i].sqlite[j]) not a path of one service (a system directory, the home
    itself, the staging directory); C(services[i]) without paths or databases; a name listed twice;
    C(snapshot) an ID with more than one service; C(host_state[i].paths[j]) not absolute, a system directory or
    under C(/home), C(host_state) with O(mode=replace); a wrong password (restic exit code 12); a missing repository (exit
    code 10); an unreachable repository (restic's own message); an unknown snapshot; in C(replace) mode a service
    without any snapshot; after changes started, a service whose restore failed (among others, C(PATH is a symbolic
    link ...) for a link on the way) is named and the others go on.
seealso:
  - name: restic restore
    description: Restoring from a snapshot, restic's manual.
    link: https://restic.readthedocs.io/en/stable/050_restore.html
  - name: SQLite online backup API
    description: How the backup copies a live database, which this module puts back.
    link: https://www.sqlite.org/backup.html
"""

EXAMPLES = r"""
- name: Bring data back before the services start (a rebuilt host)
  selfhost.pi.restic_restore:
    services: "{{ service_specs | selfhost.pi.backup_plan('restore') }}"
    host: "{{ inventory_hostname }}"

- name: Certificates and the internal CA back on a rebuilt host, before the tls role runs
  selfhost.pi.restic_restore:
    services: []
    host_state:
      - name: tls
        paths: [/etc/letsencrypt, /etc/selfhost-pi/ca, /etc/selfhost-pi/tls]
    host: "{{ inventory_hostname }}"

- name: Replace notes' data with a chosen snapshot
  selfhost.pi.restic_restore:
    services:
      - name: notes
        uid: 2201
        paths: [data]
        sqlite: [data/notes.db]
    mode: replace
    snapshot: 4bba301e
"""

RETURN = r"""
services:
  description: One result per service, in the order given.
  type: list
  elements: dict
  returned: always
  contains:
    name:
      description: Service name.
      type: str
    action:
      description:
        - C(kept) (data present, mode missing), C(no snapshot), C(empty snapshot) (the latest snapshot holds no
          file, only empty directories; mode missing), C(restored), C(replaced), or C(failed).
        - C(unknown) in check mode when restic or O(restic) is not installed yet (a freshly flashed host). The
          snapshots cannot be read then; nothing runs, and the diff names the paths the real run restores if the
          repository has a snapshot of them.
      type: str
    changed:
      description: Whether this service's data changed.
      type: bool
    snapshot:
      description: ID of the snapshot restored, or null.
      type: str
    snapshot_time:
      description: When that snapshot was taken (RFC 3339), or null.
      type: str
    restored:
      description: Paths put in place from the snapshot.
      type: list
      elements: str
    set_aside:
      description: Paths the replaced data was renamed to (mode replace).
      type: list
      elements: str
    owners:
      description: C(UID:GID) of each restored path, as the snapshot recorded it.
      type: dict
    missing_in_snapshot:
      description: Declared paths the snapshot does not hold (declared after it was taken); left as they are.
      type: list
      elements: str
  sample:
    - name: notes
      action: restored
      changed: true
      snapshot: 4bba301e5c3c0f0e1d4cbe1e26d4e3f8d1fcb8a3c9f14cb2b9d0f1e1a9a0b1c2
      snapshot_time: "2026-11-22T03:12:09.51+00:00"
      restored: [/home/notes/data, /home/notes/data/notes.db]
      set_aside: []
      owners: {/home/notes/data: "2201:2201", /home/notes/data/notes.db: "2201:2201"}
      missing_in_snapshot: []
host_state:
  description: One result per O(host_state) entry, with the same keys as RV(services).
  type: list
  elements: dict
  returned: always
  sample:
    - name: tls
      action: restored
      changed: true
      snapshot: 9c1e0a7d2f0b4c3e8a5d6f7e1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e
      snapshot_time: "2026-11-22T03:12:11.02+00:00"
      restored: [/etc/letsencrypt, /etc/selfhost-pi/ca]
      set_aside: []
      owners: {/etc/letsencrypt: "0:0", /etc/selfhost-pi/ca: "0:0"}
      missing_in_snapshot: [/etc/selfhost-pi/tls]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.pi.plugins.module_utils.constants import RESTIC_WRAPPER, RESTORE_WORK_DIR
from ansible_collections.selfhost.pi.plugins.module_utils.errors import SelfhostError, fail_module
from ansible_collections.selfhost.pi.plugins.module_utils.host import ModuleHost
from ansible_collections.selfhost.pi.plugins.module_utils.restore import converge


def main():
    module = AnsibleModule(
        argument_spec=dict(
            services=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                uid=dict(type="int", required=True),
                paths=dict(type="list", elements="str", default=[]),
                sqlite=dict(type="list", elements="str", default=[]),
            )),
            host_state=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                paths=dict(type="list", elements="path", required=True),
            )),
            mode=dict(type="str", choices=["missing", "replace"], default="missing"),
            snapshot=dict(type="str", default="latest"),
            host=dict(type="str", default=""),
            restic=dict(type="path", default=RESTIC_WRAPPER),
            work_dir=dict(type="path", default=RESTORE_WORK_DIR),
        ),
        supports_check_mode=True,
    )
    try:
        result, failures = converge(ModuleHost(module), module.params, diff=module._diff)
    except SelfhostError as exc:
        fail_module(module, exc)
    if failures:
        module.fail_json(msg="; ".join(failures), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
