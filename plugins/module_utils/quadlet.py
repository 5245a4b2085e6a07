# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Quadlet unit files: render, name, validate, plan.

Plain functions shared by ``selfhost.pi.quadlet`` and by any module that
converges several units in one call:

* ``render(unit_type, unit, options, service, install)`` turns structured
  options (Quadlet's own key names) into deterministic unit-file text.
* ``service_name(name, unit_type, options)`` is the systemd service Quadlet
  generates for a unit (podman-systemd.unit(5)).
* ``unit_directory(pw)`` is where Quadlet reads units for root or a user.
* ``validate_dryrun(module, unit_dir, units, user)`` runs the Quadlet
  generator's ``-dryrun`` on a copy of the unit directory with the new
  contents, so references such as ``Pod=web.pod`` resolve, and reports the
  errors about those units.
* ``plan_service(state, active_state, content_changed, restart_on_change)``
  decides start/stop/restart.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import pwd
import re
import shutil
import tempfile

from ansible.module_utils.six import string_types

from ansible_collections.selfhost.pi.plugins.module_utils.files import ManagedFile, ensure_directory, read_text
from ansible_collections.selfhost.pi.plugins.module_utils.host import ModuleHost
from ansible_collections.selfhost.pi.plugins.module_utils.systemd import Systemctl

UNIT_TYPES = ("container", "pod", "volume", "network", "kube", "image", "build")
# The section of each type's own options, e.g. [Container].
SECTIONS = dict((t, t.capitalize()) for t in UNIT_TYPES)
# Suffix Quadlet adds to NAME for the generated service (podman-systemd.unit(5)).
SERVICE_SUFFIX = {"container": "", "kube": "", "pod": "-pod", "volume": "-volume",
                  "network": "-network", "image": "-image", "build": "-build"}

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.@-]*$")
KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
DICT_KEY_RE = re.compile(r"^[^\s=\"'\\]+$")

SYSTEM_UNIT_DIR = "/etc/containers/systemd"
USER_UNIT_SUBDIR = os.path.join(".config", "containers", "systemd")
GENERATOR = "/usr/libexec/podman/quadlet"
HEADER = "# Managed by Ansible (selfhost.pi.quadlet). Local changes will be overwritten.\n"

# Generator output lines that carry no information for the user.
NOISE = ("Loading source unit file", "No files parsed from")
LOG_PREFIX_RE = re.compile(r"^quadlet-generator\[\d+\]: ")
CONVERTING_RE = re.compile(r'(?:converting|error loading) "(?:[^"]*/)?([^"/]+)"')

RUNNING_STATES = ("active", "activating", "reloading", "refreshing")


class QuadletError(ValueError):
    """Bad input; the message starts with the field it is about."""


# ---------------------------------------------------------------- rendering

def _scalar(field, value):
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = str(value)
    elif isinstance(value, string_types):
        text = value
    else:
        raise QuadletError("%s: expected a string, number or boolean, got %s" % (field, type(value).__name__))
    if "\n" in text or "\r" in text:
        raise QuadletError("%s: value contains a newline" % field)
    if text.endswith("\\"):
        raise QuadletError("%s: value ends with a backslash, which would join the next line" % field)
    return text


def _quote_word(text):
    """Quote ``text`` as one word for systemd/Quadlet word splitting when needed."""
    if text and not re.search(r"[\s\"'\\]", text):
        return text
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')


def _render_entries(key, value, field):
    """The ``Key=value`` lines for one option (none for null or an empty list)."""
    if value is None:
        return []
    if isinstance(value, dict):
        lines = []
        for item_key, item_value in value.items():
            item_field = "%s.%s" % (field, item_key)
            if not DICT_KEY_RE.match(item_key):
                raise QuadletError("%s: the name must be non-empty without whitespace, quotes, '=' or '\\'"
                                   % item_field)
            if item_value is None:
                continue
            # Dict values are literal: systemd would expand % specifiers (%h, %s, ...) in them.
            literal = _scalar(item_field, item_value).replace("%", "%%")
            lines.append("%s=%s" % (key, _quote_word("%s=%s" % (item_key, literal))))
        return lines
    if isinstance(value, (list, tuple)):
        return ["%s=%s" % (key, _scalar("%s[%d]" % (field, index), item))
                for index, item in enumerate(value) if item is not None]
    return ["%s=%s" % (key, _scalar(field, value))]


def render_section(section, entries, field):
    """Lines of one ``[section]``; ``field`` names it in errors (e.g. ``options``)."""
    if not isinstance(entries, dict):
        raise QuadletError("%s: expected a dictionary of Quadlet keys" % field)
    lines = ["[%s]" % section]
    for key, value in entries.items():
        if not KEY_RE.match(key):
            raise QuadletError("%s.%s: invalid key, it must match %s" % (field, key, KEY_RE.pattern))
        lines.extend(_render_entries(key, value, "%s.%s" % (field, key)))
    return lines


def render(unit_type, unit=None, options=None, service=None, install=None, header=HEADER):
    """The unit file text: [Unit], [<Type>], [Service], [Install] in that order.

    Keys keep the order they were given in; empty sections other than the
    type's own are left out. Raises QuadletError on bad input.
    """
    if unit_type not in SECTIONS:
        raise QuadletError("type: must be one of %s" % ", ".join(UNIT_TYPES))
    blocks = []
    for section, entries, field in (("Unit", unit, "unit"), (SECTIONS[unit_type], options, "options"),
                                    ("Service", service, "service"), ("Install", install, "install")):
        if entries or field == "options":
            blocks.append("\n".join(render_section(section, entries or {}, field)) + "\n")
    return (header or "") + "\n".join(blocks)


# ---------------------------------------------------------------- naming

def check_name(name, unit_type):
    """Raise QuadletError unless ``name`` is a usable unit base name."""
    if not NAME_RE.match(name or ""):
        raise QuadletError("name: %r is not a valid unit name, it must match %s" % (name, NAME_RE.pattern))
    if name.endswith("." + unit_type):
        raise QuadletError("name: give the base name without the .%s suffix" % unit_type)


def service_name(name, unit_type, options=None):
    """The service Quadlet generates for NAME.TYPE; ``ServiceName=`` overrides."""
    explicit = (options or {}).get("ServiceName")
    if explicit:
        return "%s.service" % explicit
    return "%s%s.service" % (name, SERVICE_SUFFIX[unit_type])


def service_name_from_content(name, unit_type, content):
    """service_name() for an installed unit file's text (honours its ServiceName=)."""
    section, options = None, {}
    for line in (content or "").splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif section == SECTIONS[unit_type] and line.startswith("ServiceName="):
            options["ServiceName"] = line.split("=", 1)[1].strip()
    return service_name(name, unit_type, options)


def unit_directory(pw=None):
    """Quadlet's unit directory for root (pw=None) or for the pwd entry ``pw``."""
    if pw is None:
        return SYSTEM_UNIT_DIR
    return os.path.join(pw.pw_dir, USER_UNIT_SUBDIR)


# ---------------------------------------------------------------- validation

def find_generator(module, path=None):
    """The Quadlet generator's path; fail with the podman version when it is missing."""
    path = path or GENERATOR
    if os.access(path, os.X_OK):
        return path
    podman = module.get_bin_path("podman")
    version = "no podman installed"
    if podman:
        rc, out, err = module.run_command([podman, "--version"])
        version = (out or err).strip() or "podman of unknown version"
    module.fail_json(msg="Quadlet needs podman >= 4.4 (Debian 13); this host has %s (%s is missing)"
                         % (version, path))


def _is_unit_file(name):
    return os.path.splitext(name)[1][1:] in UNIT_TYPES and not name.startswith(".")


def copy_unit_tree(src, dst, skip=(), skip_dirs=()):
    """Copy Quadlet units and drop-in ``*.d/*.conf`` files from ``src`` to ``dst``.

    Top-level files named in ``skip`` are left out (they get new contents),
    as are top-level directories named in ``skip_dirs``.
    """
    if not os.path.isdir(src):
        return
    for root, dirs, files in os.walk(src):
        rel = os.path.relpath(root, src)
        dirs[:] = [d for d in dirs if not d.startswith(".") and not (rel == "." and d in skip_dirs)]
        in_dropin = any(part.endswith(".d") for part in rel.split(os.sep))
        for name in files:
            if rel == "." and name in skip:
                continue
            if _is_unit_file(name) or (in_dropin and name.endswith(".conf")):
                target_dir = os.path.join(dst, rel)
                if not os.path.isdir(target_dir):
                    os.makedirs(target_dir)
                try:
                    shutil.copyfile(os.path.join(root, name), os.path.join(target_dir, name))
                except (IOError, OSError):
                    pass  # a dangling symlink: Quadlet skips it too


def _mentions(text, fname):
    """True when ``text`` names the unit file ``fname`` (not just a longer name ending in it)."""
    return re.search(r"(?<![\w.@-])%s(?![\w.@-])" % re.escape(fname), text) is not None


def parse_dryrun(stderr, units, tmpdir=None, unit_dir=None):
    """Sort the generator's log lines into (errors about ``units``, warnings about them, other errors).

    An error is "about" a unit when it names one of the ``units`` file names,
    or names a unit those contents reference (e.g. the ``web.pod`` of
    ``Pod=web.pod``).
    """
    mine, warnings, others = [], [], []
    for raw in stderr.splitlines():
        line = LOG_PREFIX_RE.sub("", raw.strip())
        if not line or line.startswith(NOISE):
            continue
        if tmpdir and unit_dir:
            line = line.replace(tmpdir, unit_dir)
        match = CONVERTING_RE.search(line)
        subject = match.group(1) if match else None
        about_mine = any(
            _mentions(line, fname) if subject is None else (subject == fname or _mentions(content, subject))
            for fname, content in units.items())
        if line.startswith("Warning:"):
            if about_mine:
                warnings.append(line)
        elif about_mine:
            mine.append(line)
        else:
            others.append(line)
    return mine, warnings, others


def validate_dryrun(module, unit_dir, units, user=None, generator=None):
    """Check new unit contents with ``quadlet -dryrun [-user]``.

    ``units`` maps file names (``web.container``) to their new text. They are
    written with copies of the other units in ``unit_dir`` to a temporary
    directory that ``QUADLET_UNIT_DIRS`` points the generator at; nothing on
    the host changes. Returns ``(error, warnings)``: ``error`` is None when
    the units convert, else the generator's message; ``warnings`` are its
    warnings about them plus errors of other, unrelated units.
    """
    generator = generator or find_generator(module)
    tmpdir = tempfile.mkdtemp(prefix="quadlet-dryrun.")
    try:
        # Rootful Quadlet ignores /etc/containers/systemd/users (units for users).
        copy_unit_tree(unit_dir, tmpdir, skip=set(units), skip_dirs=() if user else ("users",))
        for fname, content in units.items():
            with open(os.path.join(tmpdir, fname), "wb") as handle:
                handle.write(content.encode("utf-8", errors="surrogateescape"))
        cmd = [generator, "-dryrun"] + (["-user"] if user else [])
        rc, out, err = module.run_command(cmd, environ_update={"QUADLET_UNIT_DIRS": tmpdir, "LC_ALL": "C"})
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    mine, warnings, others = parse_dryrun(err, units, tmpdir, unit_dir)
    warnings += ["another unit in %s fails to convert: %s" % (unit_dir, line) for line in others]
    if mine:
        return "; ".join(mine), warnings
    if rc != 0 and not out.strip():
        return "quadlet -dryrun failed (rc=%d): %s" % (rc, "; ".join(others) or err.strip()), warnings
    return None, warnings


# ---------------------------------------------------------------- service state

def plan_service(state, active_state, content_changed, restart_on_change=True, sub_state=""):
    """(action, expected ActiveState afterwards); action is None, start, stop or restart.

    A service waiting to be restarted after a crash (SubState auto-restart*)
    counts as not started (it gets a start, which reports the failure) but
    as running for stopped/absent (it gets a stop, which ends the loop).
    """
    alive = active_state in RUNNING_STATES
    healthy = alive and not sub_state.startswith("auto-restart")
    if state == "started":
        if not healthy:
            return "start", "active"
        if content_changed and restart_on_change:
            return "restart", "active"
        return None, active_state
    if state == "restarted":
        return "restart", "active"
    if state in ("stopped", "absent"):
        if alive:
            return "stop", "inactive"
        return None, "inactive" if state == "absent" else active_state
    return None, active_state  # present


DIR_MODE = 0o755
FILE_MODE = 0o644


def service_diff(service, before, sub, after, action):
    """A diff entry showing the service's ActiveState change."""
    if sub.startswith("auto-restart"):
        before = "%s (%s)" % (before, sub)
    if action == "restart":
        after += " (restarted)"
    return {"before_header": "service %s" % service, "after_header": "service %s" % service,
            "before": "%s: %s\n" % (service, before), "after": "%s: %s\n" % (service, after)}


def act(module, systemctl, service, action, path):
    """Run start/stop/restart; on a failed start/restart fail with the journal tail."""
    if action == "stop":
        systemctl.stop(service)
        return
    rc, out, err = systemctl.run(action, service, check=False)
    if rc != 0:
        journal = systemctl.journal_tail(service, 20)
        module.fail_json(
            msg="systemctl %s %s failed (rc=%d): %s. The unit file %s passed the Quadlet dry run and stays "
                "installed; fix the cause and run again. Last journal lines:\n%s"
                % (action, service, rc, (err or out).strip(), path, journal or "(none readable)"),
            path=path, service=service, rc=rc, stderr=err, journal=journal.splitlines())


def converge(module, p):
    """Converge one unit as described by the module options ``p``; return the result dict.

    Fails through ``module.fail_json`` (bad input, a unit the generator rejects,
    a service that does not start); nothing is changed before the checks pass.
    """
    name, unit_type, user, state = p["name"], p["type"], p["user"], p["state"]
    fname = "%s.%s" % (name, unit_type)

    # Validate everything before touching the host.
    try:
        check_name(name, unit_type)
        content = "" if state == "absent" else render(
            unit_type, p["unit"], p["options"], p["service"], p["install"])
    except QuadletError as exc:
        module.fail_json(msg=str(exc))
    if p["manager_timeout"] < 0:
        module.fail_json(msg="manager_timeout: %d must be >= 0 seconds" % p["manager_timeout"])
    pw = None
    if user is not None:
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            module.fail_json(msg="user: %s does not exist on this host" % user)
    uid, gid = (pw.pw_uid, pw.pw_gid) if pw else (0, 0)
    unit_dir = unit_directory(pw)
    path = os.path.join(unit_dir, fname)
    systemctl = Systemctl(ModuleHost(module), user)
    if state in ("started", "stopped", "restarted"):
        systemctl.wait_for_manager(p["manager_timeout"])
    manager = systemctl.manager_ready()

    if state == "absent":
        before = read_text(path)
        service = service_name_from_content(name, unit_type, before)
    else:
        before = None
        service = service_name(name, unit_type, p["options"])
    result = dict(changed=False, path=path, service=service, scope=systemctl.scope, content=content, diff=[])

    if state == "absent":
        file_changed = content_changed = before is not None
        if file_changed:
            result["diff"].append({"before_header": path, "after_header": "%s (absent)" % path,
                                   "before": before, "after": ""})
    else:
        managed = ManagedFile(path, content, FILE_MODE, owner=uid, group=gid)
        dir_changed = ensure_directory(unit_dir, DIR_MODE, uid, gid, check_mode=True)
        content_changed = managed.content_changed
        file_changed = managed.changed or dir_changed
        if content_changed:
            error, warnings = validate_dryrun(module, unit_dir, {fname: content}, user)
            for warning in warnings:
                module.warn("quadlet: %s" % warning)
            if error:
                module.fail_json(msg="%s: the Quadlet generator rejects the unit, nothing was changed: %s"
                                     % (path, error), path=path, content=content)
        if file_changed:
            result["diff"].append(managed.diff())

    active, sub = systemctl.state(service) if manager else ("inactive", "dead")
    # The file is as wanted but systemd still runs an older one (a run cut off
    # between writing it and daemon-reload): finish that job now.
    stale = bool(manager and state != "absent" and not content_changed and systemctl.need_daemon_reload)
    if stale:
        result["diff"].append({"before_header": service, "after_header": service,
                               "before": "%s: loaded from an older %s\n" % (service, path),
                               "after": "%s: daemon-reload\n" % service})
    action, expected = plan_service(state, active, content_changed or stale, p["restart_on_change"], sub)
    if action and not manager:  # absent/present never wait; nothing runs without a manager
        action, expected = None, active
    if action:
        result["diff"].append(service_diff(service, active, sub, expected, action))
    result["changed"] = bool(file_changed or action or stale)
    result["active_state"] = expected if module.check_mode else active
    if module.check_mode or not result["changed"]:
        return result

    if state == "absent":
        if action:
            act(module, systemctl, service, action, path)
        if file_changed:
            os.unlink(path)
    else:
        ensure_directory(unit_dir, DIR_MODE, uid, gid)
        managed.apply()
    if (content_changed or stale) and manager:
        systemctl.daemon_reload()
    if action and state != "absent":
        act(module, systemctl, service, action, path)
    if action:
        result["active_state"] = systemctl.state(service)[0]
    return result
