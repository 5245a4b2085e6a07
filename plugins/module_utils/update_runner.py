# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image update runner of roles/service: ``selfhost-update NAME``, run as root on the host.

``selfhost-update-NAME.service`` starts it, from its ``.path`` unit (a
verified webhook request was dropped in the service's request spool) and from
its ``.timer`` (window openings and a daily check). One run:

1. takes the requests: every entry of the spool counts as one request and is
   removed (the spool ends empty, so the ``.path`` unit does not trigger
   again); a pending flag in the state directory remembers them;
2. does nothing more when there is neither a pending request nor a check due
   (last check older than ``interval_hours``);
3. keeps the request queued when now is outside the service's update window
   (``module_utils/update_window.py``, the rules the controller checked);
4. otherwise runs ``podman auto-update`` as the service's user and clears the
   flag. podman restarts the unit; with ``Notify=healthy`` a new image that
   never turns healthy fails the restart and podman rolls back.

The spool is writable by the webhook user (``roles/webhook``), so root never
trusts what is in it: entries are listed and removed through a descriptor of
the spool, never followed (a symbolic link is unlinked, a directory is
emptied without following the links inside it, FIFOs, sockets and devices are
unlinked, nothing is opened or read). What cannot be removed is renamed aside
into a root-only directory of the state directory, so the spool still ends
empty and the runner never re-triggers itself.

For a pod (issue 9) podman 5.4 restarts the pod's unit ``NAME.service``,
and that restart succeeds once the pod runs, before its members are up: a
member whose new image never turns healthy would not be rolled back. So the
config of a pod lists its members' services (``members``), and after an
update the runner waits up to ``health_timeout`` seconds for all of them to
be active (and still active a few seconds later). If they are not, it does
what podman's rollback does: tags each member's previous image again under
its name, restarts ``NAME.service`` and fails the run.

Its paths come from the service's JSON config
(``UPDATES_CONFIG_DIR/NAME.json``, written by roles/service):
``user``, ``uid``, ``window``, ``interval_hours``, ``state_dir`` and
``request_dir``; for a pod ``members`` and optionally ``health_timeout``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import json
import os
import tempfile
import time

from ansible_collections.selfhost.pi.plugins.module_utils import update_window
from ansible_collections.selfhost.pi.plugins.module_utils.constants import UPDATES_CONFIG_DIR, USER_BUS_PATH
from ansible_collections.selfhost.pi.plugins.module_utils.errors import (
    HostStateError, UnsafePathError, ValidationError)
from ansible_collections.selfhost.pi.plugins.module_utils.host import user_runtime_dir
from ansible_collections.selfhost.pi.plugins.module_utils.nofollow import DIR_FLAGS, remove_at
from ansible_collections.selfhost.pi.plugins.module_utils.systemd import Systemctl

PODMAN_FORMAT = "{{.Unit}} {{.Image}} {{.Updated}}"
FAILURE_WORDS = ("rolled back", "failed")     # podman auto-update's Updated column on a bad update
DEFAULT_INTERVAL_HOURS = 24
DEFAULT_HEALTH_TIMEOUT = 300     # seconds for a pod's members to be up after an update (as TimeoutStartSec=)
SETTLE_SECONDS = 5               # ... and still up this much later (not a crash loop caught while active)
POLL_SECONDS = 2
_DIR_FLAGS = DIR_FLAGS | os.O_NOFOLLOW


def config_path(name, config_dir=None):
    """``config_dir/NAME.json`` (default UPDATES_CONFIG_DIR); NAME must be a plain file name (it comes
    from the unit's command line)."""
    if not name or "/" in name or "\0" in name or name.startswith("."):
        raise ValidationError("must be a service name, not %r" % (name,), field="NAME")
    return os.path.join(config_dir or UPDATES_CONFIG_DIR, name + ".json")


def load_config(path):
    """Read and check a service's update config; raise ValidationError naming the key at fault."""
    try:
        with open(path) as handle:
            config = json.load(handle)
    except (IOError, OSError) as exc:
        raise HostStateError("%s: cannot read the update settings: %s" % (path, exc.strerror or exc))
    except ValueError as exc:
        raise ValidationError("is not JSON: %s" % exc, field=path)
    if not isinstance(config, dict):
        raise ValidationError("must be a JSON object", field=path)
    for key in ("user", "state_dir", "request_dir"):
        if not isinstance(config.get(key), str) or not config[key]:
            raise ValidationError("must be a non-empty string", field="%s: %s" % (path, key))
    for key in ("state_dir", "request_dir"):
        if not os.path.isabs(config[key]):
            raise ValidationError("must be an absolute path, not %r" % config[key], field="%s: %s" % (path, key))
    try:
        config["uid"] = int(config.get("uid"))
        config["interval_hours"] = float(config.get("interval_hours", DEFAULT_INTERVAL_HOURS))
    except (TypeError, ValueError):
        raise ValidationError("uid and interval_hours must be numbers", field=path)
    members = config.get("members") or []
    if not isinstance(members, list) or not all(isinstance(m, str) and m.endswith(".service") for m in members):
        raise ValidationError("must be a list of service unit names", field="%s: members" % path)
    config["members"] = members
    try:
        config["health_timeout"] = float(config.get("health_timeout", DEFAULT_HEALTH_TIMEOUT))
    except (TypeError, ValueError):
        raise ValidationError("must be a number of seconds", field="%s: health_timeout" % path)
    errors = update_window.validate(config.get("window"), field="%s: window" % path)
    if errors:
        raise ValidationError("; ".join(errors))
    config["window"] = config.get("window") or {}
    return config


def _set_aside(spool_fd, name, discard_dir):
    """Rename ``name`` into a new root-only directory under ``discard_dir``; return where it went."""
    aside = tempfile.mkdtemp(prefix="discarded.", dir=discard_dir)   # 0700 root
    aside_fd = os.open(aside, _DIR_FLAGS)
    try:
        os.rename(name, "entry", src_dir_fd=spool_fd, dst_dir_fd=aside_fd)
    finally:
        os.close(aside_fd)
    return os.path.join(aside, "entry")


def take_requests(spool, discard_dir, warn):
    """Empty the request spool; return the number of entries it held (each one request).

    A missing spool holds no request. The spool itself must be a directory,
    not a link (its parent is root's). An entry that cannot be removed (a tree
    too deep to walk, say) is set aside into ``discard_dir`` with a warning;
    only when even that fails does this raise, naming the entry.
    """
    try:
        spool_fd = os.open(spool, _DIR_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return 0
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePathError("%s: the request spool is not a directory (a link or another type); "
                                  "not reading it" % spool)
        raise
    try:
        names = os.listdir(spool_fd)
        for name in names:
            try:
                remove_at(spool_fd, name)
            except (OSError, RecursionError) as exc:
                try:
                    where = _set_aside(spool_fd, name, discard_dir)
                except OSError as aside_exc:
                    raise HostStateError("%s: request entry %r can be neither removed (%s) nor set aside (%s)"
                                         % (spool, name, exc, aside_exc))
                warn("%s: request entry %r could not be removed (%s); set aside as %s"
                     % (spool, name, exc, where))
    finally:
        os.close(spool_fd)
    return len(names)


def _age_seconds(path, now):
    try:
        return now.timestamp() - os.stat(path).st_mtime
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def run(host, name, config, log, now=None):
    """One run of the runner for service ``name``, ``log`` taking each line for the journal; return the exit
    status (0 done or nothing to do, 1 failed)."""
    now = now or datetime.datetime.now()
    state_dir = config["state_dir"]
    if not os.path.isdir(state_dir):
        os.makedirs(state_dir, mode=0o755)
    pending = os.path.join(state_dir, name + ".pending")
    stamp = os.path.join(state_dir, name + ".last-check")

    count = take_requests(config["request_dir"], state_dir, host.warn)
    if count:
        with open(pending, "a") as handle:
            handle.write("%d request(s) at %s\n" % (count, now.isoformat()))
        log("%s: %d update request(s) received" % (name, count))

    queued = os.path.exists(pending)
    if not queued:
        age = _age_seconds(stamp, now)
        if age is not None and age < config["interval_hours"] * 3600:
            log("%s: no request, last check %.1f h ago; nothing to do" % (name, age / 3600.0))
            return 0

    window = config["window"]
    if not update_window.is_open(window, now):
        log("%s: %s is outside the update window %s; %s" % (
            name, now.strftime("%a %H:%M"), json.dumps(window),
            "request queued until it opens" if queued else "check postponed"))
        return 0

    uid = config["uid"]
    env = {"XDG_RUNTIME_DIR": user_runtime_dir(uid), "DBUS_SESSION_BUS_ADDRESS": "unix:path=" + USER_BUS_PATH % uid}
    members = config.get("members") or []
    previous = pod_images(host, name, config, env) if members else {}
    log("%s: running podman auto-update as %s" % (name, config["user"]))
    rc, out, err = host.run_as(config["user"], ["podman", "auto-update", "--format", PODMAN_FORMAT],
                               cwd="/", env=env, check=False, what="podman auto-update")
    for line in (out or "").splitlines() + (err or "").splitlines():
        log("%s: podman: %s" % (name, line))
    with open(stamp, "w") as handle:
        handle.write(now.isoformat() + "\n")
    if os.path.exists(pending):
        os.unlink(pending)
    bad = rc != 0 or any(word in (out or "") + (err or "") for word in FAILURE_WORDS)
    if not bad and members and updated(out):
        bad = not gate_pod(host, name, config, env, previous, log)
        if bad:
            log("%s: update FAILED: a member of the pod did not come up with its new image; rolled back" % name)
            return 1
    log("%s: update %s" % (name, "FAILED (see podman's lines above; a failing image was rolled back)" if bad
                           else "done"))
    return 1 if bad else 0


def updated(out):
    """True when podman auto-update's table says a unit was restarted with a new image (Updated ``true``)."""
    return any(line.split()[-1:] == ["true"] for line in (out or "").splitlines())


def pod_images(host, name, config, env):
    """{container: (image ID, image name)} of the pod's running containers, before an update."""
    rc, out, err = host.run_as(config["user"], ["podman", "ps", "--no-trunc", "--filter", "pod=%s" % name,
                                                "--format", "{{.Names}} {{.ImageID}} {{.Image}}"],
                               cwd="/", env=env, check=False, what="podman ps")
    images = {}
    for line in (out or "").splitlines() if rc == 0 else []:
        parts = line.split()
        if len(parts) == 3 and parts[0] != "%s-infra" % name:
            images[parts[0]] = (parts[1], parts[2])
    return images


def members_up(systemctl, members, timeout, log, name, sleep=None):
    """True once every member's service is active, and still is SETTLE_SECONDS later, within ``timeout``."""
    sleep = sleep or time.sleep
    deadline = time.time() + timeout
    while True:
        states = systemctl.states(members)
        down = [unit for unit in members if states[unit][0] != "active"]
        if not down:
            sleep(SETTLE_SECONDS)
            states = systemctl.states(members)
            down = [unit for unit in members if states[unit][0] != "active"]
            if not down:
                return True
        if time.time() >= deadline:
            log("%s: not active after %d s: %s" % (name, timeout, ", ".join(
                "%s (%s)" % (unit, "/".join(states[unit][:2])) for unit in down)))
            return False
        sleep(POLL_SECONDS)


def gate_pod(host, name, config, env, previous, log, sleep=None):
    """After podman restarted the pod: wait for its members; if they do not come up, tag each member's
    previous image again and restart the pod (what podman's own rollback does for one container).
    Return True when the members came up with the new images."""
    systemctl = Systemctl(host, config["user"], config["uid"])
    if members_up(systemctl, config["members"], config["health_timeout"], log, name, sleep):
        return True
    for container, (image_id, image) in sorted(previous.items()):
        log("%s: rolling back %s: tagging %s as %s again" % (name, container, image_id[:12], image))
        host.run_as(config["user"], ["podman", "tag", image_id, image], cwd="/", env=env, check=True,
                    what="podman tag %s %s" % (image_id[:12], image))
    rc, out, err = systemctl.restart("%s.service" % name, check=False)
    if rc != 0:
        log("%s: restarting %s.service with the previous images failed: %s" % (name, name, (err or out).strip()))
    elif members_up(systemctl, config["members"], config["health_timeout"], log, name, sleep):
        log("%s: the previous images are running again" % name)
    return False


def main(host, name, log, config_dir=None):
    """What ``selfhost-update NAME`` does; SelfhostError reaches the caller."""
    return run(host, name, load_config(config_path(name, config_dir)), log=log)
