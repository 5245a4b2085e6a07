# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One pinned system account per service.

``normalize(params)`` checks and completes the options (raises
``ValidationError`` naming the option); ``ServiceUser(host, spec).converge()``
returns the result dict of the ``selfhost.pi.service_user`` module, so a
module that converges many services can call it once per service. For
``state=present`` it is three steps:

- ``plan()`` reads the account, /etc/subuid, /etc/subgid, the linger flag and
  the user manager, refuses conflicts and accounts the collection did not
  create (see ``created_here``), and returns a :class:`Plan`; it changes
  nothing;
- ``diff(plan)`` is the account summary before and after, as text;
- ``apply(plan)`` runs groupadd/useradd/usermod, makes the home, writes the
  subordinate ranges, sets linger and waits for the user manager.

Check mode is plan and diff only.

``host`` is a :mod:`host` object: ``ModuleHost(module)`` in a module,
``ModuleHost(module).checked()`` for a plan in check mode. Failures raise
:mod:`errors` (``ValidationError`` and ``UnsafePathError`` before anything
changed, ``CommandError``, ``HostStateError``); ``ServiceUser.changed`` says
whether something changed before the failure. Only a module's ``main()``
turns them into ``fail_json``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd
import re
import shutil
import stat
import time

from ansible_collections.selfhost.pi.plugins.module_utils.constants import (
    MAX_SERVICE_UID, MIN_SERVICE_UID, PROTECTED_PATHS, USER_BUS_PATH)
from ansible_collections.selfhost.pi.plugins.module_utils.errors import (
    CommandError, HostStateError, UnsafePathError, ValidationError)
from ansible_collections.selfhost.pi.plugins.module_utils.files import ManagedFile, ensure_directory, read_text
from ansible_collections.selfhost.pi.plugins.module_utils.systemd import Systemctl

NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# Every account this module creates gets a comment (GECOS) starting with this,
# unless the play gives a ``comment`` of its own; see created_here().
MARK = "selfhost.pi"
SUBID_MIN, SUBID_MAX = 65536, 2 ** 32 - 1
# Module-level so that tests can point them at a temporary directory.
PATHS = {
    "subuid": "/etc/subuid",
    "subgid": "/etc/subgid",
    "linger": "/var/lib/systemd/linger",
    "bus": USER_BUS_PATH,  # its directory is the user's XDG_RUNTIME_DIR, /run/user/UID
}
POLL = 0.5


def parse_mode(value):
    """'0750', '750' or an int already converted from octal -> int."""
    if isinstance(value, int) and not isinstance(value, bool):
        mode = value
    elif isinstance(value, str) and re.match(r"^0?[0-7]{3,4}$", value.strip()):
        mode = int(value.strip(), 8)
    else:
        raise ValidationError("%r is not an octal mode like '0750'" % (value,), field="home_mode")
    if not 0 <= mode <= 0o7777:
        raise ValidationError("%r is outside 0000..7777" % (value,), field="home_mode")
    return mode


def _int_in(field, value, low, high):
    if not low <= value <= high:
        raise ValidationError("%d is outside %d..%d" % (value, low, high), field=field)
    return value


def _service_id(field, value):
    """A UID or GID a service may have: MIN_SERVICE_UID..MAX_SERVICE_UID."""
    if value < MIN_SERVICE_UID:
        raise ValidationError("%d is below %d; IDs under %d belong to system accounts (Debian policy 9.2.2), "
                              "never to a service, so nothing was changed" % (value, MIN_SERVICE_UID, MIN_SERVICE_UID),
                              field=field)
    return _int_in(field, value, MIN_SERVICE_UID, MAX_SERVICE_UID)


def created_here(entry, comment=None):
    """Whether the passwd ``entry`` is an account this module created.

    This module creates every account with ``useradd --comment COMMENT``, and
    COMMENT is ``selfhost.pi service NAME`` unless the play sets ``comment``.
    So an account is the collection's when its comment starts with
    ``selfhost.pi``, or is the (non-empty) ``comment`` the play asks for. Any
    other account (an admin's login such as ``pi``, a Debian system user such
    as ``www-data``) is never changed or removed.
    """
    gecos = entry.pw_gecos or ""
    return gecos.startswith(MARK) or (bool(comment) and gecos == comment)


def _describe(entry):
    return "UID %d, comment %r, home %s, shell %s" % (entry.pw_uid, entry.pw_gecos or "", entry.pw_dir, entry.pw_shell)


def home_claim(home, users, name, uids):
    """Another account's claim on ``home`` (a sentence), or None.

    ``home`` is another account's passwd home, or the directory exists and is
    owned by an account other than ``name`` (``uids``: this account's UIDs, old
    and wanted). A directory owned by root or by a UID without an account (data
    of a removed service user) is not a claim.
    """
    for entry in users:
        if entry.pw_name != name and entry.pw_dir and os.path.normpath(entry.pw_dir) == home:
            return "%s is the home of %s (%s)" % (home, entry.pw_name, _describe(entry))
    st = _lstat(home)
    if st is not None and st.st_uid != 0 and st.st_uid not in uids:
        owner = next((u for u in users if u.pw_uid == st.st_uid and u.pw_name != name), None)
        if owner is not None:
            return "%s belongs to %s (%s)" % (home, owner.pw_name, _describe(owner))
    return None


def normalize(params):
    """Validate the module options and fill in the derived defaults."""
    s = dict(params)
    name = s["name"]
    if not NAME_RE.match(name or ""):
        raise ValidationError("%r is not a valid user name (%s)" % (name, NAME_RE.pattern), field="name")
    s["state"] = s.get("state") or "present"
    s["group"] = s.get("group") or name
    if not NAME_RE.match(s["group"]):
        raise ValidationError("%r is not a valid group name (%s)" % (s["group"], NAME_RE.pattern), field="group")
    home = s.get("home") or "/home/%s" % name
    if not home.startswith("/"):
        raise ValidationError("%r is not an absolute path" % home, field="home")
    s["home"] = os.path.normpath(home)
    if s["home"] in PROTECTED_PATHS:  # never a service's home, never removed
        raise ValidationError("%s is a system directory, not a service home" % s["home"], field="home")
    if s["state"] == "absent":
        return s
    if s.get("remove_home"):
        raise ValidationError("only valid with state=absent", field="remove_home")
    if s.get("uid") is None:
        raise ValidationError("required when state=present", field="uid")
    _service_id("uid", s["uid"])
    s["gid"] = _service_id("gid", s["uid"] if s.get("gid") is None else s["gid"])
    s["home_mode"] = parse_mode("0750" if s.get("home_mode") is None else s["home_mode"])
    s["shell"] = s.get("shell") or "/usr/sbin/nologin"
    if not s["shell"].startswith("/"):
        raise ValidationError("%r is not an absolute path" % s["shell"], field="shell")
    s["comment"] = "selfhost.pi service %s" % name if s.get("comment") is None else s["comment"]
    if ":" in s["comment"] or "\n" in s["comment"]:
        raise ValidationError("must not contain ':' or a newline", field="comment")
    s["subid_start"] = s["uid"] * 65536 if s.get("subid_start") is None else s["subid_start"]
    s["subid_count"] = 65536 if s.get("subid_count") is None else s["subid_count"]
    if s["subid_count"] < 1:
        raise ValidationError("%d must be at least 1" % s["subid_count"], field="subid_count")
    if s["subid_start"] < SUBID_MIN:
        raise ValidationError("%d is below %d (the range of real UIDs)" % (s["subid_start"], SUBID_MIN),
                              field="subid_start")
    if s["subid_start"] + s["subid_count"] - 1 > SUBID_MAX:
        raise ValidationError("range %d..%d exceeds %d" % (
            s["subid_start"], s["subid_start"] + s["subid_count"] - 1, SUBID_MAX), field="subid_start")
    s["linger"] = True if s.get("linger") is None else s["linger"]
    s["manager_timeout"] = 30 if s.get("manager_timeout") is None else s["manager_timeout"]
    if s["manager_timeout"] < 0:
        raise ValidationError("%d must not be negative" % s["manager_timeout"], field="manager_timeout")
    return s


def parse_subids(text):
    """Lines of a subuid/subgid file as (line, owner, start, count); owner None if not an entry."""
    rows = []
    for line in (text or "").splitlines():
        parts = line.split(":")
        if len(parts) == 3 and not line.startswith("#") and parts[1].isdigit() and parts[2].isdigit():
            rows.append((line, parts[0], int(parts[1]), int(parts[2])))
        else:
            rows.append((line, None, None, None))
    return rows


def render_subids(rows, keys, entry):
    """File text with this user's entries (owner in ``keys``) replaced by ``entry`` (None: removed)."""
    out = []
    for line, owner, _start, _count in rows:
        if owner in keys:
            if entry is not None:
                out.append(entry)
                entry = None
            continue
        out.append(line)
    if entry is not None:
        out.append(entry)
    return "".join(line + "\n" for line in out)


def _lstat(path):
    try:
        return os.lstat(path)
    except OSError:
        return None


def _dir_state(path):
    st = _lstat(path)
    if st is None:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    return "%04o %d:%d" % (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)


def _text(pairs):
    return "".join("%s: %s\n" % (k, str(v).lower() if isinstance(v, bool) else v) for k, v in pairs)


class Plan(object):
    """What ``ServiceUser.plan()`` found for one account and what ``apply()`` would do.

    Found (the diff's "before"): ``user`` (the passwd entry, or None),
    ``group`` (the group named like the spec's, or None), ``user_group``
    (name of the account's primary group), ``home_state`` ("MODE UID:GID", or
    None when missing), ``subid_lines`` (this user's entries per file),
    ``linger`` (on now) and ``manager`` (state of user@UID.service, None when
    not looked at).

    To do, in the order ``apply()`` runs it: ``stop`` (units to stop first when
    running: usermod refuses to renumber or re-home a busy user), ``commands``
    (groupadd or groupmod, then useradd or usermod), ``home`` (create the home
    or fix its mode and owner), ``subids`` (ManagedFile per file),
    ``set_linger`` (the loginctl command) and ``start_manager`` (linger is on
    but the manager is stopped). Apply starts a stopped manager and waits for
    it whenever linger and a timeout are wanted.
    """

    def __init__(self):
        self.user = None
        self.group = None
        self.user_group = "-"
        self.home_state = None
        self.subid_lines = {}
        self.linger = False
        self.manager = None
        self.stop = []
        self.commands = []
        self.home = False
        self.subids = []
        self.set_linger = None
        self.start_manager = False

    @property
    def changed(self):
        return bool(self.commands or self.home or self.subids or self.set_linger or self.start_manager)


class ServiceUser(object):
    """Converge one service account; see the module documentation for the contract."""

    def __init__(self, host, spec):
        self.host = host
        self.s = spec
        self.check_mode = host.check_mode
        self.changed = False
        self._bins = {}
        self._systemctl = None

    # -- helpers -----------------------------------------------------------
    @property
    def systemctl(self):
        """The system manager (user@UID.service is one of its units)."""
        if self._systemctl is None:
            self._systemctl = Systemctl(self.host)
        return self._systemctl

    def run(self, args, check=True):
        """Run ``args`` (its first item looked up on the host); raise CommandError when it fails."""
        name = args[0]
        if name not in self._bins:
            self._bins[name] = self.host.which(name, required=True)
        return self.host.run([self._bins[name]] + list(args[1:]), check=check, what=" ".join(args))

    def act(self, args):
        """Run a state-changing command (skipped in check mode)."""
        self.changed = True
        if not self.check_mode:
            self.run(args)

    def stop(self, units):
        """Stop ``units`` of the system manager and wait for them (skipped in check mode)."""
        self.changed = True
        if not self.check_mode:
            self.systemctl.stop(*units)

    def manager_state(self, uid):
        """ActiveState of user@UID.service; "unknown" when the system manager does not answer."""
        try:
            return self.systemctl.is_active("user@%d.service" % uid)
        except CommandError:
            return "unknown"

    @staticmethod
    def bus(uid):
        return PATHS["bus"] % uid

    @staticmethod
    def runtime_dir(uid):
        return os.path.dirname(PATHS["bus"] % uid)

    def linger_on(self):
        return os.path.exists(os.path.join(PATHS["linger"], self.s["name"]))

    def subid_files(self):
        return [(kind, PATHS[kind], parse_subids(read_text(PATHS[kind]))) for kind in ("subuid", "subgid")]

    # -- present: plan, diff, apply ------------------------------------------
    def present(self):
        """Plan; then, outside check mode, apply. Return the module result."""
        plan = self.plan()
        if self.check_mode:
            self.changed = plan.changed
        else:
            self.apply(plan)
        s = self.s
        return self.result(s["uid"], s["gid"], s["home"], s["shell"], self.diff(plan))

    def plan(self):
        """Read the host, refuse what must not be done, and return the Plan; changes nothing."""
        s = self.s
        name, uid, gid, group = s["name"], s["uid"], s["gid"], s["group"]
        users = pwd.getpwall()
        groups = grp.getgrall()
        plan = Plan()
        user = plan.user = next((u for u in users if u.pw_name == name), None)
        other = next((u for u in users if u.pw_uid == uid and u.pw_name != name), None)
        if user is not None and not created_here(user, s["comment"]):
            # Never touch an account selfhost.pi did not make (Debian's system users, a login user).
            raise ValidationError("%s is an existing account that selfhost.pi did not create (%s); nothing was "
                                  "changed, give the service a name of its own" % (name, _describe(user)), field="name")
        if other:
            raise ValidationError("%d is already used by user %s (%s); nothing was changed"
                                  % (uid, other.pw_name, _describe(other)), field="uid")
        other = next((g for g in groups if g.gr_gid == gid and g.gr_name != group), None)
        if other:
            raise ValidationError("%d is already used by group %s; nothing was changed" % (gid, other.gr_name),
                                  field="gid")
        cur_group = plan.group = next((g for g in groups if g.gr_name == group), None)
        groupmod = False
        if cur_group and cur_group.gr_gid != gid:
            # Renumber only the user's own group that nobody else uses.
            own = (user is not None and group == name and user.pw_gid == cur_group.gr_gid
                   and not [m for m in cur_group.gr_mem if m != name]
                   and not [u for u in users if u.pw_gid == cur_group.gr_gid and u.pw_name != name])
            if not own:
                raise ValidationError("group %s already exists with GID %d, not %d" % (group, cur_group.gr_gid, gid),
                                      field="gid")
            groupmod = True

        # /etc/subuid and /etc/subgid: this user's entries are keyed by name or UID.
        keys = set([name, str(uid)] + ([str(user.pw_uid)] if user else []))
        start, count = s["subid_start"], s["subid_count"]
        end = start + count - 1
        entry = "%s:%d:%d" % (name, start, count)
        for kind, path, rows in self.subid_files():
            mine = [line for line, owner, _s, _c in rows if owner in keys]
            plan.subid_lines[kind] = ", ".join(mine) or "(none)"
            for line, owner, o_start, o_count in rows:
                if owner is not None and owner not in keys and o_start <= end and start <= o_start + o_count - 1:
                    raise ValidationError("range %d..%d overlaps %s entry %s" % (start, end, path, line),
                                          field="subid_start")
            if mine != [entry]:
                plan.subids.append(ManagedFile(path, render_subids(rows, keys, entry), mode=0o644, owner=0, group=0))

        if not os.path.isfile(s["shell"]):
            raise ValidationError("%s does not exist" % s["shell"], field="shell")
        plan.home_state = _dir_state(s["home"])
        if plan.home_state == "not a directory":
            raise UnsafePathError("%s exists and is not a directory" % s["home"], field="home")
        claim = home_claim(s["home"], users, name, set([uid] + ([user.pw_uid] if user else [])))
        if claim:
            raise ValidationError("%s; nothing was changed" % claim, field="home")
        plan.home = plan.home_state != self.wanted_home()
        plan.linger = self.linger_on()
        if s["linger"] and user and s["manager_timeout"]:
            plan.manager = self.manager_state(uid)

        mod = []
        if user:
            plan.user_group = dict((g.gr_gid, g.gr_name) for g in groups).get(user.pw_gid, "-")
            for flag, current, wanted in (("--uid", user.pw_uid, uid), ("--home", user.pw_dir, s["home"]),
                                          ("--shell", user.pw_shell, s["shell"]),
                                          ("--comment", user.pw_gecos, s["comment"])):
                if current != wanted:
                    mod += [flag, str(wanted)]
            # groupmod renumbers the primary GID of the group's users itself.
            if user.pw_gid != gid and not (groupmod and user.pw_gid == cur_group.gr_gid):
                mod += ["--gid", str(gid)]
        if "--uid" in mod or "--home" in mod:
            # usermod refuses to renumber or re-home a user with running processes.
            plan.stop = ["user@%d.service" % user.pw_uid]
            if "--uid" in mod:
                plan.stop.append("user-runtime-dir@%d.service" % user.pw_uid)  # the old /run/user/UID
        if not cur_group:
            plan.commands.append(["groupadd", "--gid", str(gid), group])
        elif groupmod:
            plan.commands.append(["groupmod", "--gid", str(gid), group])
        if not user:
            plan.commands.append(["useradd", "--uid", str(uid), "--gid", str(gid), "--home-dir", s["home"],
                                  "--shell", s["shell"], "--comment", s["comment"], "--no-create-home",
                                  "--no-user-group", "--no-log-init", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0",
                                  name])
        elif mod:
            plan.commands.append(["usermod"] + mod + [name])
        if s["linger"] != plan.linger:
            plan.set_linger = ["loginctl", "enable-linger" if s["linger"] else "disable-linger", name]
        # Linger was on already but the manager is stopped: apply starts it.
        plan.start_manager = bool(s["linger"] and plan.linger and plan.manager in ("inactive", "failed"))
        return plan

    def wanted_home(self):
        s = self.s
        return "%04o %d:%d" % (s["home_mode"], s["uid"], s["gid"])

    def diff(self, plan):
        """The account summary before (what plan found) and after (what the spec asks), one KEY: VALUE a line."""
        s = self.s
        name, user, group = s["name"], plan.user, plan.group
        before = [("user", name if user else "absent")]
        if user:
            before += [("uid", user.pw_uid), ("gid", user.pw_gid), ("group", plan.user_group),
                       ("home", user.pw_dir), ("shell", user.pw_shell), ("comment", user.pw_gecos)]
        elif group:
            before += [("group", "%s (gid %d)" % (group.gr_name, group.gr_gid))]
        before += [("home_dir", "%s %s" % (s["home"], plan.home_state or "missing")),
                   ("subuid", plan.subid_lines["subuid"]), ("subgid", plan.subid_lines["subgid"]),
                   ("linger", plan.linger)]
        entry = "%s:%d:%d" % (name, s["subid_start"], s["subid_count"])
        after = [("user", name), ("uid", s["uid"]), ("gid", s["gid"]), ("group", s["group"]), ("home", s["home"]),
                 ("shell", s["shell"]), ("comment", s["comment"]),
                 ("home_dir", "%s %s" % (s["home"], self.wanted_home())),
                 ("subuid", entry), ("subgid", entry), ("linger", s["linger"])]
        if plan.manager is not None:
            before.append(("manager", plan.manager))
        if s["linger"] and s["manager_timeout"]:
            after.append(("manager", "active"))
        return dict(before=_text(before), after=_text(after))

    def apply(self, plan):
        """Run the plan's steps in order; ``self.changed`` turns true before the first one runs."""
        s = self.s
        uid, gid = s["uid"], s["gid"]
        if plan.stop and self.manager_state(plan.user.pw_uid) in ("active", "activating", "reloading"):
            self.stop(plan.stop)
        for args in plan.commands:
            self.act(args)
        if plan.home:
            self.changed = True
            parent = os.path.dirname(s["home"])
            if not os.path.isdir(parent):
                os.makedirs(parent, 0o755)
            ensure_directory(s["home"], s["home_mode"], uid, gid)
        for managed in plan.subids:
            self.changed = True
            managed.apply()
        if plan.set_linger:
            self.act(plan.set_linger)
        if s["linger"] and s["manager_timeout"]:
            # logind does not start the manager if linger was on already, or if it still
            # tears down an earlier user with this UID ("closing"): start it ourselves.
            if self.manager_state(uid) in ("inactive", "failed"):
                self.changed = True
                self.systemctl.start("user@%d.service" % uid, no_block=True)
            self.wait_manager(uid)

    def wait_manager(self, uid):
        unit = "user@%d.service" % uid
        deadline = time.time() + self.s["manager_timeout"]
        while True:
            state = self.manager_state(uid)
            if state == "active" and os.path.exists(self.bus(uid)):
                return
            if time.time() >= deadline:
                break
            time.sleep(POLL)
        raise HostStateError("%s not up within %d s (is-active: %s, %s %s)\n%s\n%s" % (
            unit, self.s["manager_timeout"], state, self.bus(uid),
            "exists" if os.path.exists(self.bus(uid)) else "missing", self.systemctl.status_text(unit),
            self.systemctl.journal_tail(unit)), field="manager_timeout")

    # -- absent --------------------------------------------------------------
    def absent(self):
        s = self.s
        name = s["name"]
        users = pwd.getpwall()
        user = next((u for u in users if u.pw_name == name), None)
        uid = user.pw_uid if user else s.get("uid")
        home = os.path.normpath(user.pw_dir) if user else s["home"]
        gid = user.pw_gid if user else None
        if user is not None and not created_here(user, s.get("comment")):
            raise ValidationError("%s is an existing account that selfhost.pi did not create (%s); nothing was "
                                  "changed, selfhost.pi removes only the accounts it made" % (name, _describe(user)),
                                  field="name")
        if user is None and uid is not None and [u for u in users if u.pw_uid == uid]:
            uid = None  # that UID is another account's now: its manager and subid entries are not ours
        if s.get("remove_home") and home in PROTECTED_PATHS:  # never a service's home, never removed
            raise ValidationError("refusing to remove %s (home of %s)" % (home, name), field="home")
        claim = home_claim(home, users, name, set([uid])) if s.get("remove_home") else None
        if claim:
            raise ValidationError("refusing to remove it, %s; nothing was changed" % claim, field="home")
        own = None
        if user:
            own = next((g for g in grp.getgrall() if g.gr_gid == user.pw_gid and g.gr_name == name), None)
            if own and ([m for m in own.gr_mem if m != name]
                        or [u for u in users if u.pw_gid == own.gr_gid and u.pw_name != name]):
                own = None
        keys = set([name] + ([str(uid)] if uid is not None else []))
        subids, before_ids = [], {}
        for kind, path, rows in self.subid_files():
            mine = [line for line, owner, _s, _c in rows if owner in keys]
            before_ids[kind] = ", ".join(mine) or "(none)"
            if mine:
                subids.append(ManagedFile(path, render_subids(rows, keys, None), mode=0o644, owner=0, group=0))
        linger = self.linger_on()
        manager = self.manager_state(uid) if user else "inactive"
        home_state = _dir_state(home)
        if s.get("remove_home") and home_state == "not a directory":
            raise UnsafePathError("%s is not a directory; refusing to remove it" % home, field="home")
        remove_home = bool(s.get("remove_home") and home_state)

        before = [("user", name if user else "absent")]
        if user:
            before += [("uid", uid), ("gid", gid), ("home", user.pw_dir), ("shell", user.pw_shell)]
        before += [("home_dir", "%s %s" % (home, home_state or "missing")), ("subuid", before_ids["subuid"]),
                   ("subgid", before_ids["subgid"]), ("linger", linger), ("manager", manager)]
        kept = "missing" if remove_home or not home_state else home_state + " (kept)"
        after = [("user", "absent"), ("home_dir", "%s %s" % (home, kept)),
                 ("subuid", "(none)"), ("subgid", "(none)"), ("linger", False), ("manager", "inactive")]
        if own:
            after.insert(1, ("group", "%s removed" % own.gr_name))

        if linger:
            self.act(["loginctl", "disable-linger", name])
        runtime = uid is not None and os.path.isdir(self.runtime_dir(uid))
        if manager in ("active", "activating", "reloading", "deactivating") or runtime:
            # Synchronous, unlike loginctl terminate-user; userdel refuses a user with processes.
            self.stop(["user@%d.service" % uid, "user-runtime-dir@%d.service" % uid])
        for managed in subids:
            self.changed = True
            if not self.check_mode:
                managed.apply()
        if user:
            self.act(["userdel", name])
        if own:
            # userdel already drops the user's own group when USERGROUPS_ENAB=yes.
            self.changed = True
            if not self.check_mode and [g for g in grp.getgrall() if g.gr_name == own.gr_name]:
                self.run(["groupdel", own.gr_name])
        if remove_home:
            self.changed = True
            if not self.check_mode:
                shutil.rmtree(home)
        return self.result(uid, gid, home, user.pw_shell if user else None,
                           dict(before=_text(before), after=_text(after)))

    # -- result ----------------------------------------------------------------
    def result(self, uid, gid, home, shell, diff):
        """The module result; the diff's after is the before when nothing changed."""
        s = self.s
        present = s["state"] == "present"
        return dict(
            changed=self.changed, name=s["name"], state=s["state"], uid=uid, gid=gid, group=s["group"],
            home=home, shell=shell, runtime_dir=self.runtime_dir(uid) if uid is not None else None,
            subid_start=s.get("subid_start") if present else None,
            subid_count=s.get("subid_count") if present else None,
            linger=s["linger"] if present else False,
            diff=dict(before_header="service user %s" % s["name"], after_header="service user %s" % s["name"],
                      before=diff["before"], after=diff["after"] if self.changed else diff["before"]),
        )

    def converge(self):
        return self.present() if self.s["state"] == "present" else self.absent()
