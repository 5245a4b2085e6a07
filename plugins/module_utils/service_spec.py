# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The declarative service spec: its options, clashes between specs, and what
each spec becomes (the service user, the Quadlet ``.container`` unit, the
nginx site).

Shared by the ``selfhost.pi.services`` module and the
``selfhost.pi.service_spec_conflicts`` filter, so that the role's early check
and the module agree on every rule.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath
import re

from ansible_collections.selfhost.pi.plugins.module_utils.service_data import DATA_OPTIONS

# Option spec of one service (the same keys as the service role's service_specs).
SPEC_OPTIONS = dict(
    name=dict(type="str", required=True),
    uid=dict(type="int", required=True),
    image=dict(type="str", required=True),
    image_archive=dict(type="path"),
    exec=dict(type="str"),
    publish_ports=dict(type="list", elements="str", default=[]),
    volumes=dict(type="list", elements="str", default=[]),
    environment=dict(type="dict", default={}),
    secret_environment=dict(type="dict", default={}, no_log=True),
    health=dict(type="dict", options=dict(
        cmd=dict(type="str", required=True),
        interval=dict(type="str", default="30s"),
        timeout=dict(type="str", default="5s"),
        retries=dict(type="int", default=3),
        start_period=dict(type="str", default="0s"),
    )),
    domain=dict(type="str"),
    upstream=dict(type="str"),
    container_options=dict(type="dict", default={}),
    service_options=dict(type="dict", default={}),
    data=dict(type="dict", options=DATA_OPTIONS),
)

ARCHIVE_LABEL = "selfhost.pi.image-archive"
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PORT_RE = re.compile(r"^\d{1,5}(-\d{1,5})?$")
WILDCARD = ("0.0.0.0", "::", "")

# Image updates (issue 4): see update_section() below and module_utils/update_window.py.
from ansible_collections.selfhost.pi.plugins.module_utils import update_window  # noqa: E402 pylint: disable=wrong-import-position

SPEC_OPTIONS.update(
    auto_update=dict(type="str", choices=["registry", "local"]),
    update_window=dict(type="dict"),
    update_webhook_secret=dict(type="str", no_log=True),
)


def host_port(publish):
    """Return (host_ip, host_port, proto) of a PublishPort= value, or None when podman picks the port.

    Forms (podman-run(1) --publish): CONTAINER, HOST:CONTAINER, IP:HOST:CONTAINER,
    IP::CONTAINER, [IPv6]:HOST:CONTAINER, each optionally with /tcp or /udp.
    Raises ValueError for anything else.
    """
    value = str(publish)
    proto = "tcp"
    if "/" in value:
        value, proto = value.rsplit("/", 1)
    ip = ""
    if value.startswith("["):
        if "]:" not in value:
            raise ValueError("%r is not [IP]:HOSTPORT:CONTAINERPORT" % (publish,))
        ip, value = value[1:].split("]:", 1)
        parts = [ip] + value.split(":")
    else:
        parts = value.split(":")
    if len(parts) == 3:
        ip, host = parts[0], parts[1]
    elif len(parts) == 2:
        host = parts[0]
    elif len(parts) == 1:
        host = ""
    else:
        raise ValueError("%r is not [IP:]HOSTPORT:CONTAINERPORT[/PROTO]" % (publish,))
    if proto not in ("tcp", "udp", "sctp") or not all(PORT_RE.match(p) for p in ([host] if host else []) + [parts[-1]]):
        raise ValueError("%r is not [IP:]HOSTPORT:CONTAINERPORT[/PROTO]" % (publish,))
    if not host:
        return None
    return (ip or "0.0.0.0", host, proto)


def _overlaps(a, b):
    return a[1] == b[1] and a[2] == b[2] and (a[0] == b[0] or a[0] in WILDCARD or b[0] in WILDCARD)


def conflicts(specs, reserved=None, var="service_specs"):
    """One message per duplicate name, uid, published host port or domain, naming the field."""
    reserved = reserved or {}
    errors = []
    seen = {"name": {}, "uid": {}, "domain": {}}
    for key in seen:
        for value in reserved.get(key) or []:
            if value is not None:
                seen[key][str(value)] = "another role"
    ports = [(("0.0.0.0", str(p), "tcp"), "another role") for p in reserved.get("port") or []]

    for index, spec in enumerate(specs or []):
        where = "%s[%d]" % (var, index)
        label = "%s (%s)" % (where, spec.get("name", "?"))
        errors.extend(update_errors(spec, where + "."))
        for key in ("name", "uid", "domain"):
            value = spec.get(key)
            if value in (None, ""):
                continue
            owner = seen[key].get(str(value))
            if owner:
                errors.append("%s.%s: %s is already used by %s" % (where, key, value, owner))
            else:
                seen[key][str(value)] = label
        for pindex, publish in enumerate(spec.get("publish_ports") or []):
            try:
                parsed = host_port(publish)
            except ValueError as exc:
                errors.append("%s.publish_ports[%d]: %s" % (where, pindex, exc))
                continue
            if parsed is None:
                continue
            clash = next((owner for other, owner in ports if _overlaps(parsed, other)), None)
            if clash:
                errors.append("%s.publish_ports[%d]: host port %s/%s is already published by %s"
                              % (where, pindex, parsed[1], parsed[2], clash))
            else:
                ports.append((parsed, label))
    return errors


def container_section(spec, archive_digest=None, env_file=None):
    """The [Container] section (Quadlet keys, podman-systemd.unit(5)) of one service."""
    section = {"ContainerName": spec["name"], "Image": spec["image"]}
    if spec.get("exec"):
        section["Exec"] = spec["exec"]
    if spec.get("publish_ports"):
        section["PublishPort"] = list(spec["publish_ports"])
    if spec.get("volumes"):
        section["Volume"] = list(spec["volumes"])
    if spec.get("environment"):
        section["Environment"] = dict(spec["environment"])
    if env_file:
        section["EnvironmentFile"] = env_file
    health = spec.get("health")
    if health:
        section.update(HealthCmd=health["cmd"], HealthInterval=health["interval"], HealthTimeout=health["timeout"],
                       HealthRetries=health["retries"], HealthStartPeriod=health["start_period"])
    if archive_digest:
        section["Label"] = {ARCHIVE_LABEL: archive_digest}
    section.update(update_section(spec))
    section.update(spec.get("container_options") or {})
    return section


def bind_sources_in_home(spec, home):
    """Bind mount sources of ``volumes`` inside the service's home (``%h/...`` or ``HOME/...``), as paths."""
    paths = []
    for volume in spec.get("volumes") or []:
        source = str(volume).split(":", 1)[0]
        if source.startswith("%h/"):
            source = home + source[2:]
        if source.startswith(home + "/") and "%" not in source:
            path = posixpath.normpath(source)
            if path.startswith(home + "/") and path not in paths:
                paths.append(path)
    return paths


def upstream(spec):
    """The URL nginx proxies to: ``upstream``, else loopback and the first published host port."""
    if spec.get("upstream"):
        return spec["upstream"]
    for publish in spec.get("publish_ports") or []:
        parsed = host_port(publish)
        if parsed and parsed[2] == "tcp":
            ip = "127.0.0.1" if parsed[0] in WILDCARD else parsed[0]
            if ":" in ip:
                ip = "[%s]" % ip
            return "http://%s:%s" % (ip, parsed[1])
    raise ValueError("upstream: required with a domain when no publish_ports entry has a TCP host port")


def secret_env_content(spec):
    """Text of the service's 0600 environment file (podman-run(1) --env-file format)."""
    lines = []
    for key in sorted(spec.get("secret_environment") or {}):
        value = spec["secret_environment"][key]
        value = "" if value is None else str(value)
        if not ENV_NAME_RE.match(str(key)):
            raise ValueError("secret_environment: %r is not a valid variable name" % (key,))
        if "\n" in value or "\r" in value:
            raise ValueError("secret_environment.%s: the value contains a newline" % key)
        lines.append("%s=%s\n" % (key, value))
    return "".join(lines)


def update_section(spec):
    """Quadlet keys of ``auto_update``: ``AutoUpdate=``, and with ``health`` ``Notify=healthy`` and
    ``HealthOnFailure=kill``, so a restart only succeeds once the new image is healthy and
    ``podman auto-update`` rolls a failing one back (podman-auto-update(1)). Raises ValueError."""
    errors = update_errors(spec)
    if errors:
        raise ValueError("; ".join(errors))
    if not spec.get("auto_update"):
        return {}
    section = {"AutoUpdate": spec["auto_update"]}
    if spec.get("health"):
        section.update(Notify="healthy", HealthOnFailure="kill")
    return section


def update_errors(spec, where=""):
    """Messages naming the field for ``auto_update``, ``update_window`` and ``update_webhook_secret``."""
    errors = update_window.validate(spec.get("update_window"), where + "update_window")
    policy = spec.get("auto_update")
    if policy not in (None, "registry", "local"):
        errors.append("%sauto_update: %r is not registry or local" % (where, policy))
    if not policy and (spec.get("update_window") or spec.get("update_webhook_secret")):
        errors.append("%supdate_window, update_webhook_secret: need auto_update" % where)
    if policy == "registry" and not re.match(r"^[^/]*[.:][^/]*/|^localhost/", str(spec.get("image", ""))):
        errors.append("%simage: AutoUpdate=registry needs a fully qualified reference (registry/name:tag), got %r"
                      % (where, spec.get("image")))
    return errors
