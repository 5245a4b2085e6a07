#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: service_user
short_description: One pinned system account per rootless Podman service
version_added: 0.1.0
author:
  - selfhost.pi contributors (@selfhost)
description:
  - Creates, corrects or removes the account that runs one rootless service, identical on every
    rebuild so that files restored from a backup keep their owner.
  - The account gets a pinned UID and GID, a primary group, a home directory with a fixed mode,
    a nologin shell, one subordinate UID/GID range in C(/etc/subuid) and C(/etc/subgid) that never
    overlaps another user's range, and systemd linger so its user manager (and its Quadlet units)
    runs without a login.
  - This is a custom module because M(ansible.builtin.user) cannot pin the subordinate range
    (useradd allocates the next free one, so it changes between rebuilds), does not check the range
    against other users, does not manage linger, and cannot wait for the user manager to be up.
  - All current state (passwd, group, C(/etc/subuid), C(/etc/subgid), C(/var/lib/systemd/linger/NAME))
    is read and every option and conflict is checked before anything is changed.
  - It changes or removes only accounts it created. An existing account named O(name) is the collection's
    when its comment (GECOS) starts with C(selfhost.pi) (every account created with the default O(comment))
    or equals a non-empty O(comment) given by the play. Any other account, such as the admin's login C(pi)
    or the system user C(www-data), is an error naming C(name) and nothing is changed.
options:
  name:
    description:
      - User name, and by default the primary group name.
      - A Debian user name, C(^[a-z_][a-z0-9_-]{0,31}$) (see useradd(8), C(NAME_REGEX) in adduser.conf(5)).
      - An existing account of that name that selfhost.pi did not create (see O(comment)) is an error naming
        C(name), with both states; nothing is changed.
    type: str
    required: true
  state:
    description:
      - V(present) creates or corrects the account.
      - V(absent) disables linger, stops the user manager (C(user@UID.service) and
        C(user-runtime-dir@UID.service), so that userdel finds no running process), removes the user's
        C(/etc/subuid) and C(/etc/subgid) entries, runs C(userdel) (without C(-r)), deletes the group
        named like the user if it was the user's primary group and nobody else uses it, and deletes the
        home directory only with O(remove_home=true).
      - V(absent) refuses an account that selfhost.pi did not create (see O(comment)), naming C(name).
    type: str
    choices: [present, absent]
    default: present
  uid:
    description:
      - User ID, 1000..65533. Required when O(state=present). With O(state=absent) it is used only when the
        user is already gone, to clean up its manager and subordinate entries, and only if no other account
        has that UID now.
      - IDs below 1000 belong to system accounts (Debian policy 9.2.2) and are an error naming C(uid).
      - Another user with this UID is an error naming C(uid).
      - Changing it for an existing user runs C(usermod --uid) (see usermod(8)), which re-owns the files
        inside the home directory only; the user's manager is stopped first and started again.
    type: int
  gid:
    description:
      - GID of the primary group, 1000..65533. Defaults to O(uid). Below 1000 is an error naming C(gid).
      - Another group with this GID, or a group named O(group) with another GID, is an error naming C(gid);
        only the user's own group (named like the user, used by nobody else) is renumbered with
        C(groupmod --gid), and files keep their old GID (groupmod(8) does not re-own files).
    type: int
  group:
    description:
      - Primary group name. Defaults to O(name). Created with C(groupadd --gid) if missing (see groupadd(8)).
    type: str
  home:
    description:
      - Home directory (the C(passwd) field, see passwd(5)). Defaults to C(/home/NAME).
      - Created if missing with mode O(home_mode) and owner C(uid:gid), without copying C(/etc/skel).
        Only the directory itself is chowned/chmodded, never its content.
      - The home of another account (its C(passwd) field), or an existing directory owned by another account,
        is an error naming C(home). A directory owned by root, or by a UID that no account has any more
        (left by a removed service user), is taken over.
      - Changing it for an existing user only sets the field (C(usermod --home) without C(--move-home));
        data is not moved. The user manager is stopped first (usermod refuses a busy user) and started
        again when O(linger=true).
      - With O(state=absent) the home taken from C(passwd) (or this option if the user is gone) is removed
        only with O(remove_home=true).
    type: path
  home_mode:
    description:
      - Octal mode of the home directory, as a quoted string like C("0750") (or an integer already
        converted from octal, as in M(ansible.builtin.file)).
    type: raw
    default: "0750"
  shell:
    description:
      - Login shell (the C(passwd) field). Must exist on the host.
    type: path
    default: /usr/sbin/nologin
  comment:
    description:
      - GECOS field (C(useradd --comment)). Must not contain C(:) or a newline.
      - Defaults to C(selfhost.pi service NAME).
      - It is how the module recognises an account it created. An account whose comment starts with
        C(selfhost.pi) can be given any comment; an account with another comment is recognised only while the
        play passes that same comment (with both states), so a custom comment that should stay changeable
        starts with C(selfhost.pi).
    type: str
  subid_start:
    description:
      - First subordinate UID and GID of the range written to C(/etc/subuid) and C(/etc/subgid)
        (C(NAME:START:COUNT), see subuid(5) and subgid(5)); rootless Podman maps container UIDs onto it.
      - Defaults to O(uid) * 65536, so a rebuild gets the same range, far above the 100000+ ranges useradd
        gives login users.
      - Must be at least 65536. A range that overlaps any other user's entry in either file, or ends above
        4294967295, is an error naming C(subid_start).
    type: int
  subid_count:
    description:
      - Number of subordinate UIDs and GIDs in the range.
    type: int
    default: 65536
  linger:
    description:
      - Whether systemd keeps the user's manager running without a login session
        (C(loginctl enable-linger) / C(disable-linger), see loginctl(1)).
      - When true, the module waits until C(user@UID.service) is active and C(/run/user/UID/bus) exists;
        if the manager is stopped or failed (linger was already on, or logind still closes an earlier user
        with this UID), the module starts it with C(systemctl start user@UID.service).
    type: bool
    default: true
  manager_timeout:
    description:
      - Seconds to wait for the user manager when O(linger=true). V(0) skips the wait (and does not start
        a stopped manager).
      - On timeout the module fails naming C(manager_timeout), with the unit's C(systemctl status) and
        its last journal lines.
    type: int
    default: 30
  remove_home:
    description:
      - Only with O(state=absent). Also delete the home directory and everything in it (the service's data).
      - Without it the data stays. System directories (C(/), C(/home), C(/var)...) are never removed, nor is
        a directory that is another account's home or belongs to another account (an error naming C(home)).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports what would change; runs only read-only commands (C(systemctl is-active)).
  diff_mode:
    support: full
    description: Shows an account summary (uid, gid, group, home, shell, subuid, subgid, linger, manager) before and after.
notes:
  - Fails before changing anything, with a message starting with the option name, on an invalid O(name) or
    O(group), an existing account named O(name) that selfhost.pi did not create (C(name)), O(uid) or O(gid)
    outside 1000..65533 or taken, a O(home) that is another account's, a bad O(home_mode), a missing O(shell),
    an overlapping or too large subordinate range (O(subid_start)), or O(remove_home) with O(state=present).
    A refused account, UID, GID or home is described (UID, comment, home, shell) and the message says that
    nothing was changed.
  - Errors are one sentence starting with the option at fault. A command that fails (C(useradd), C(usermod),
    C(systemctl)...) fails the module with its C(cmd), C(rc), C(stdout) and C(stderr), and C(changed) says
    whether an earlier step already changed the host.
  - Creates users with C(useradd --no-create-home --no-user-group -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0)
    so that useradd does not allocate a subordinate range of its own.
  - C(/etc/subuid) and C(/etc/subgid) are rewritten atomically (mode 0644, root:root); entries of other
    users, comments and unknown lines are kept as they are. Entries keyed by this user's name or UID are
    replaced by the single wanted entry.
  - Needs systemd-logind (package C(libpam-systemd)) for linger; rootless Podman also wants
    C(dbus-user-session) and C(uidmap).
seealso:
  - module: ansible.builtin.user
  - name: subuid(5)
    description: Format of /etc/subuid.
    link: https://manpages.debian.org/trixie/login.defs/subuid.5.en.html
  - name: loginctl(1)
    description: enable-linger and disable-linger.
    link: https://www.freedesktop.org/software/systemd/man/latest/loginctl.html
"""

EXAMPLES = r"""
- name: Account for the gitea service
  selfhost.pi.service_user:
    name: gitea
    uid: 2001

- name: Account with its data under /srv and a shared group
  selfhost.pi.service_user:
    name: blog
    uid: 2002
    group: web
    gid: 3000
    home: /srv/blog
    home_mode: "0755"

- name: Remove the account, keep its data in /home/gitea
  selfhost.pi.service_user:
    name: gitea
    state: absent

- name: Remove the account and its data
  selfhost.pi.service_user:
    name: gitea
    state: absent
    remove_home: true
"""

RETURN = r"""
name:
  description: User name.
  returned: always
  type: str
  sample: gitea
state:
  description: The O(state) that was applied.
  returned: always
  type: str
  sample: present
uid:
  description: User ID (for O(state=absent) the removed user's, or O(uid), or null).
  returned: always
  type: int
  sample: 2001
gid:
  description: Primary group ID (null when O(state=absent) and the user did not exist).
  returned: always
  type: int
  sample: 2001
group:
  description: Primary group name.
  returned: always
  type: str
  sample: gitea
home:
  description: Home directory.
  returned: always
  type: str
  sample: /home/gitea
shell:
  description: Login shell (null when O(state=absent) and the user did not exist).
  returned: always
  type: str
  sample: /usr/sbin/nologin
runtime_dir:
  description: The user's C(XDG_RUNTIME_DIR), C(/run/user/UID) (null if the UID is unknown).
  returned: always
  type: str
  sample: /run/user/2001
subid_start:
  description: First subordinate UID/GID (null when O(state=absent)).
  returned: always
  type: int
  sample: 131137536
subid_count:
  description: Number of subordinate UIDs/GIDs (null when O(state=absent)).
  returned: always
  type: int
  sample: 65536
linger:
  description: Whether linger is enabled (false when O(state=absent)).
  returned: always
  type: bool
  sample: true
diff:
  description: "Account summary before and after, one C(KEY: VALUE) line each, as text."
  returned: always
  type: dict
  sample:
    before_header: service user gitea
    after_header: service user gitea
    before: "user: absent\nhome_dir: /home/gitea missing\nsubuid: (none)\nsubgid: (none)\nlinger: false\n"
    after: "user: gitea\nuid: 2001\ngid: 2001\ngroup: gitea\nhome: /home/gitea\n..."
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.pi.plugins.module_utils.errors import SelfhostError, fail_module
from ansible_collections.selfhost.pi.plugins.module_utils.host import ModuleHost
from ansible_collections.selfhost.pi.plugins.module_utils.service_user import ServiceUser, normalize


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            uid=dict(type="int"),
            gid=dict(type="int"),
            group=dict(type="str"),
            home=dict(type="path"),
            home_mode=dict(type="raw", default="0750"),
            shell=dict(type="path", default="/usr/sbin/nologin"),
            comment=dict(type="str"),
            subid_start=dict(type="int"),
            subid_count=dict(type="int", default=65536),
            linger=dict(type="bool", default=True),
            manager_timeout=dict(type="int", default=30),
            remove_home=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    user = None
    try:
        user = ServiceUser(ModuleHost(module), normalize(module.params))
        result = user.converge()
    except SelfhostError as exc:
        fail_module(module, exc, changed=bool(user and user.changed))
    else:
        module.exit_json(**result)


if __name__ == "__main__":
    main()
