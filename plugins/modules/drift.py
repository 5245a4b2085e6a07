#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: drift
short_description: Tell whether a host drifted since its last complete converge, in one module run
version_added: 0.3.0
author:
  - selfhost.pi contributors (@selfhost)
description:
  - Reads, the same way each time, what the collection's roles manage on the host and compares it with the record
    the last complete converge left in O(path). C(site.yml) runs it first; when nothing drifted and the declaration
    is the same, the play ends for the host after this one module run instead of running every role's tasks to
    find nothing to do.
  - "What it reads: the files in C(/etc/selfhost-pi), C(/etc/nginx), C(/etc/ssh/sshd_config) and
    C(sshd_config.d), C(/etc/systemd/system), C(/etc/systemd/journald.conf.d), C(/etc/apt/apt.conf.d),
    C(/etc/containers), C(/etc/letsencrypt/renewal), C(/etc/passwd), C(/etc/group), C(/etc/subuid),
    C(/etc/subgid), C(/etc/hostname), C(/etc/hosts), C(/etc/localtime), C(/etc/fstab),
    C(/var/lib/systemd/linger), C(/usr/local/sbin), C(/usr/local/libexec/selfhost-pi),
    C(/usr/local/lib/selfhost-pi), the files directly in C(/var/lib/selfhost-pi), and O(paths) (content digest
    up to 1 MiB, else size and modification time; mode, owner, group, link target); the size and modification
    time of C(/var/lib/dpkg/status) (a package installed or removed); C(ActiveState) and C(UnitFileState) of
    C(nginx.service), C(ssh.service), C(systemd-timesyncd.service), C(certbot.timer), C(webhook.service), every
    loaded C(selfhost-*) unit and each service's C(user@UID.service) (systemctl(1) C(show)); and for each service
    in C(/var/lib/selfhost-pi/managed.json), its Quadlet units (C(~/.config/containers/systemd)) and plain user
    units (C(~/.config/systemd/user)), the C(ActiveState) of the units made from them in its user manager, and the
    size and modification time of its image store's index."
  - "Files below a service user's home are reached without following a link a service user (so its container)
    placed: one directory descriptor at a time with C(O_NOFOLLOW), each file opened C(O_NOFOLLOW|O_NONBLOCK) and
    read only when it is a regular file. Their content is hashed, never parsed."
  - The declaration is a digest the action plugin of the same name makes on the controller, so no variable's value
    reaches the host; see O(declaration).
  - What it does not notice, the full converge would not have changed either, with three exceptions a full
    converge (C(-e drift_check=false)) covers - a container image removed by hand from a user's store is noticed
    (the index changes) but a damaged one is not; a C(blog_repo) branch that moved (C(site.yml) skips the check
    then, see the C(drift) role); nginx's or nftables' running configuration changed without their files.
  - A custom module because the check has to be one module run to be worth having, reading files, both kinds of
    systemd managers and the services' record together; no module of C(ansible.builtin) or C(community.general)
    compares a host with a recorded state.
options:
  state:
    description:
      - V(check) compares the host with the record and changes nothing (RV(current), RV(drift)).
      - V(record) reads the host again and writes the record with O(declaration) (at the end of a complete
        converge, after the handlers ran).
      - V(absent) removes the record, so the next C(site.yml) runs in full (a playbook that changes the host
        outside C(site.yml), such as C(services.yml), does this first).
    type: str
    choices: [check, record, absent]
    default: check
  declaration:
    description:
      - Digest of the declaration (sha256, hex). Leave it out and the action plugin computes it on the controller from
        every variable of the collection's roles' C(meta/argument_specs.yml) the inventory sets (templated; not the
        C(drift_*) ones, which say how to check, not what the host holds), the
        content of the controller files C(blog_source) and each C(image_archive) name, the collection's own files,
        and the ansible-core version.
      - With O(state=record), pass the RV(declaration) the check at the start of the play returned, so a variable a
        role set during the play does not change it.
    type: str
  path:
    description:
      - The record, root-owned, mode C(0600), written atomically (a temporary file beside it, renamed over it).
    type: path
    default: /var/lib/selfhost-pi/converged.json
  max_age:
    description:
      - With O(state=check), a record older than this many seconds is drift too, so the full converge runs at least
        that often; V(0) sets no limit. Some work is due by the clock, and only the full converge looks at it (an
        internal certificate is signed again when fewer than C(tls_internal_renew_days) are left).
    type: int
    default: 86400
  paths:
    description:
      - More files or directories to read, absolute; C(~USER/) at the start is USER's home, for example
        C(~admin/.ssh/authorized_keys).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: V(check) never changes anything; V(record) and V(absent) report what they would change.
  diff_mode:
    support: full
    description: V(record) shows the entries that changed since the record, V(absent) the record going.
  platform:
    support: full
    platforms: [debian]
    description: Debian 13 with systemd; runs as root (C(become)).
notes:
  - "Errors: a O(paths) entry that is not absolute, a negative O(max_age) or a missing O(declaration) fail before
    anything is read (C(~USER) of a user that does not exist is read as absent). A system or user manager that does
    not answer (no systemd as PID 1, a user manager not running) is read as such, which is drift when it answered
    before, so the full converge runs and its own checks say what is wrong (the C(base) role refuses a host older
    than Debian 13)."
seealso:
  - module: ansible.builtin.systemd_service
  - name: systemctl(1)
    description: C(show) and the unit properties C(ActiveState), C(UnitFileState), C(SourcePath).
    link: https://www.freedesktop.org/software/systemd/man/latest/systemctl.html
"""

EXAMPLES = r"""
- name: Compare the host with its last converge
  selfhost.pi.drift:
  register: drift_state

- name: End the play when nothing drifted
  ansible.builtin.meta: end_host
  when: drift_state.current

# ... the roles ...

- name: Record the converged host
  selfhost.pi.drift:
    state: record
    declaration: "{{ drift_state.declaration }}"
    paths: ["~admin/.ssh/authorized_keys"]
"""

RETURN = r"""
current:
  description: True when the record exists, its declaration is O(declaration), nothing it holds differs now, and it is
    not older than O(max_age).
  returned: always
  type: bool
  sample: true
drift:
  description: What differs, one line each, at most 20 (then a count); empty when RV(current).
  returned: always
  type: list
  elements: str
  sample: ["unit nginx.service: inactive enabled (was active enabled)", "/etc/nginx/conf.d/x.conf: absent (was file 0644 0:0 sha256=...)"]
declaration:
  description: The declaration compared or recorded (O(declaration)).
  returned: always
  type: str
  sample: 3f0c5e...
entries:
  description: How many files, links, directories and unit states were read.
  returned: when O(state) is V(check) or V(record)
  type: int
  sample: 412
path:
  description: The record (O(path)).
  returned: always
  type: str
  sample: /var/lib/selfhost-pi/converged.json
"""

import os
import pwd
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.pi.plugins.module_utils import drift
from ansible_collections.selfhost.pi.plugins.module_utils.errors import SelfhostError, ValidationError, fail_module
from ansible_collections.selfhost.pi.plugins.module_utils.files import apply_in_state_dir
from ansible_collections.selfhost.pi.plugins.module_utils.host import ModuleHost


def expand(paths):
    out = []
    for index, path in enumerate(paths):
        if path.startswith("~"):
            user, sep, rest = path[1:].partition("/")
            try:
                home = pwd.getpwnam(user).pw_dir
            except KeyError:
                out.append(path)  # no such user (yet): read as absent, so the user coming is drift
                continue
            path = os.path.join(home, rest) if sep else home
        if not os.path.isabs(path):
            raise ValidationError("%s is not an absolute path" % path, field="paths[%d]" % index)
        out.append(os.path.normpath(path))
    return out


def run(module, host):
    params = module.params
    path, state = params["path"], params["state"]
    result = dict(changed=False, current=False, drift=[], declaration=params["declaration"] or "", path=path)
    if state == "absent":
        if os.path.lexists(path):
            result.update(changed=True, diff=dict(before_header=path, after_header=path, before="recorded\n",
                                                  after=""))
            if not module.check_mode:
                os.unlink(path)
        return result
    if not params["declaration"]:
        raise ValidationError("declaration: required with state=%s (the action plugin computes it)" % state,
                              field="declaration")
    if params["max_age"] < 0:
        raise ValidationError("max_age: %d is negative (seconds; 0 sets no limit)" % params["max_age"], field="max_age")
    paths = expand(params["paths"])
    record = drift.load(path)
    now = drift.observe(host, paths, converged_path=path)
    result["entries"] = len(now)
    result["drift"] = drift.compare(record, params["declaration"], now, time.time(), params["max_age"], path=path)
    result["current"] = not result["drift"]
    if state == "record":
        recorded_at = time.time()
        target = drift.record_file(path, params["declaration"], now, recorded_at)
        if target.changed:
            result["changed"] = True
            before = (record or {}).get("state") or {}
            keys = drift.changed_keys(before, now)
            declared = (record or {}).get("declaration")
            result["diff"] = dict(
                before_header=path, after_header=path,
                before="declaration %s\n" % declared + "".join("%s: %s\n" % (k, before[k]) for k in keys if k in before),
                after="declaration %s\n" % params["declaration"] + "".join("%s: %s\n" % (k, now[k]) for k in keys if k in now))
            if not module.check_mode:
                apply_in_state_dir(target)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["check", "record", "absent"], default="check"),
            declaration=dict(type="str", no_log=False),
            path=dict(type="path", default=drift.RECORD),
            paths=dict(type="list", elements="str", default=[]),
            max_age=dict(type="int", default=86400),
        ),
        supports_check_mode=True,
    )
    try:
        result = run(module, ModuleHost(module))
    except SelfhostError as exc:
        fail_module(module, exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
