# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The declarative service spec: its options, clashes between specs, and what
each spec becomes (the service user, the Quadlet ``.container`` unit, the
nginx site).

Shared by the ``selfhost.pi.services`` module and the
``selfhost.pi.service_spec_conflicts`` filter, so that the role's early check
and the module agree on every rule.

A ``publish_ports`` entry must name its host address. Without one podman
publishes on every interface and clients reach the service past nginx (its
limits, logs and TLS). Refused rather than warned about: a warning scrolls
past in a converge that then exposes the port, and an inventory that wants it
says ``0.0.0.0:`` (or ``[::]:``) and converges as before. The inventories in
this repository all publish on 127.0.0.1.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import posixpath
import re

from ansible_collections.selfhost.pi.plugins.module_utils.errors import ValidationError
from ansible_collections.selfhost.pi.plugins.module_utils.service_data import DATA_OPTIONS

HEALTH_OPTIONS = dict(
    cmd=dict(type="str", required=True),
    interval=dict(type="str", default="30s"),
    timeout=dict(type="str", default="5s"),
    retries=dict(type="int", default=3),
    start_period=dict(type="str", default="0s"),
)

# Option spec of one service (the same keys as the service role's service_specs).
SPEC_OPTIONS = dict(
    name=dict(type="str", required=True),
    uid=dict(type="int", required=True),
    image=dict(type="str"),     # required without containers (checked by pod_errors)
    image_archive=dict(type="path"),
    exec=dict(type="str"),
    publish_ports=dict(type="list", elements="str", default=[]),
    volumes=dict(type="list", elements="str", default=[]),
    environment=dict(type="dict", default={}),
    secret_environment=dict(type="dict", default={}, no_log=True),
    health=dict(type="dict", options=HEALTH_OPTIONS),
    domain=dict(type="str"),
    tls=dict(type="raw"),
    client_max_body_size=dict(type="str"),
    basic_auth=dict(type="str", no_log=True),
    upstream=dict(type="str"),
    container_options=dict(type="dict", default={}),
    service_options=dict(type="dict", default={}),
    data=dict(type="dict", options=DATA_OPTIONS),
)

ARCHIVE_LABEL = "selfhost.pi.image-archive"
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PORT_RE = re.compile(r"^[1-9][0-9]{0,4}$")      # no 0, no leading zeros (08080 is not 8080 to every reader)
PROTOCOLS = ("tcp", "udp", "sctp")
WILDCARD = ("0.0.0.0", "::", "")
FQ_IMAGE_RE = re.compile(r"^[^/]*[.:][^/]*/|^localhost/")   # a registry-qualified reference (AutoUpdate=registry)

# Image updates (issue 4): see update_section() below and module_utils/update_window.py.
from ansible_collections.selfhost.pi.plugins.module_utils import update_window  # noqa: E402 pylint: disable=wrong-import-position

SPEC_OPTIONS.update(
    auto_update=dict(type="str", choices=["registry", "local"]),
    update_window=dict(type="dict"),
    update_webhook_secret=dict(type="str", no_log=True),
)


def _port_range(text, what, publish):
    """(first, last) of "PORT" or "FIRST-LAST"; every number 1-65535 written without leading zeros."""
    bounds = text.split("-")
    if len(bounds) > 2 or not all(PORT_RE.match(b) for b in bounds):
        raise ValidationError("%r: the %s %r is not a port (1-65535, no leading zeros) or a range FIRST-LAST"
                              % (publish, what, text))
    first, last = int(bounds[0]), int(bounds[-1])
    if not 1 <= first <= last <= 65535:
        raise ValidationError("%r: the %s %r is outside 1-65535 or its range runs backwards" % (publish, what, text))
    return first, last


def parse_publish(publish):
    """Return (host_ip, host_ports, proto) of a PublishPort= value.

    Forms (podman-run(1) --publish): CONTAINER, HOST:CONTAINER, IP:HOST:CONTAINER,
    IP::CONTAINER, [IPv6]:HOST:CONTAINER, each optionally with /tcp, /udp or /sctp;
    a port may be a range FIRST-LAST. ``host_ip`` is "" when the value names no
    address (podman then publishes on every interface), otherwise the address
    as written. ``host_ports`` is (first, last), or None when podman
    picks the host port. Raises ValueError naming what is wrong.
    """
    value = str(publish)
    proto = "tcp"
    if "/" in value:
        value, proto = value.rsplit("/", 1)
    ip = ""
    if value.startswith("["):
        if "]:" not in value:
            raise ValidationError("%r is not [IP]:HOSTPORT:CONTAINERPORT" % (publish,))
        ip, value = value[1:].split("]:", 1)
        parts = [ip] + value.split(":")
        if len(parts) != 3:
            raise ValidationError("%r is not [IP]:HOSTPORT:CONTAINERPORT" % (publish,))
    else:
        parts = value.split(":")
    if len(parts) == 3:
        ip, host = parts[0], parts[1]
    elif len(parts) == 2:
        host = parts[0]
    elif len(parts) == 1:
        host = ""
    else:
        raise ValidationError("%r is not [IP:]HOSTPORT:CONTAINERPORT[/PROTO]" % (publish,))
    if proto not in PROTOCOLS:
        raise ValidationError("%r: the protocol %r is not one of %s" % (publish, proto, ", ".join(PROTOCOLS)))
    if len(parts) == 3 and _ip_key(ip) is None:
        raise ValidationError("%r: the host address %r is not an IP address" % (publish, ip))
    _port_range(parts[-1], "container port", publish)
    return ip, (_port_range(host, "host port", publish) if host else None), proto


def _ip_key(ip):
    """An address as ipaddress writes it (so ::1 and 0:0::1 compare equal); "" for none, None if invalid."""
    if not ip:
        return ""
    try:
        return ipaddress.ip_address(ip).compressed
    except ValueError:
        return None


def _ports_text(ports, proto):
    return "%s/%s" % (ports[0] if ports[0] == ports[1] else "%d-%d" % ports, proto)


def _clash(a, b):
    """True when two published (ip, (first, last), proto) can not both be bound."""
    ip_a, ip_b = _ip_key(a[0]), _ip_key(b[0])
    return (a[2] == b[2] and a[1][0] <= b[1][1] and b[1][0] <= a[1][1]
            and (ip_a == ip_b or ip_a in WILDCARD or ip_b in WILDCARD))


def domain_key(domain):
    """How nginx tells host names apart: without case and without a trailing dot."""
    return str(domain).lower().rstrip(".")


def conflicts(specs, reserved=None, var="service_specs"):
    """One message per duplicate name, uid, published host port or domain, and per malformed
    or address-less publish_ports entry, naming the field.

    Domains compare without case and trailing dot (``Blog.Example.org.`` is
    ``blog.example.org`` to nginx and DNS); host ports compare as numbers, a
    range clashing with every port it covers.
    """
    reserved = reserved or {}
    errors = []
    keys = {"name": str, "uid": str, "domain": domain_key}
    seen = dict((key, {}) for key in keys)
    for key, normal in keys.items():
        for value in reserved.get(key) or []:
            if value is not None:
                seen[key][normal(value)] = "another role"
    ports = []
    for port in reserved.get("port") or []:
        first, last = _port_range(str(port), "reserved port", port)
        ports.append((("", (first, last), "tcp"), "another role"))

    for index, spec in enumerate(specs or []):
        where = "%s[%d]" % (var, index)
        label = "%s (%s)" % (where, spec.get("name", "?"))
        errors.extend(update_errors(spec, where + "."))
        errors.extend(shape_errors(spec, where + "."))
        for key, normal in keys.items():
            value = spec.get(key)
            if value in (None, ""):
                continue
            owner = seen[key].get(normal(value))
            if owner:
                same = "" if normal(value) == str(value) else " (as %s)" % normal(value)
                errors.append("%s.%s: %s is already used by %s%s" % (where, key, value, owner, same))
            else:
                seen[key][normal(value)] = label
        for pindex, publish in enumerate(spec.get("publish_ports") or []):
            field = "%s.publish_ports[%d]" % (where, pindex)
            try:
                parsed = parse_publish(publish)
            except ValueError as exc:
                errors.append("%s: %s" % (field, exc))
                continue
            if not parsed[0]:
                wanted = "127.0.0.1:%s%s" % ("" if parsed[1] else ":", publish)
                errors.append("%s: %r names no host address, so podman would publish it on every interface, past"
                              " nginx; write %s (or 0.0.0.0:... to expose it on purpose)"
                              % (field, str(publish), wanted))
            if parsed[1] is None:
                continue
            clash = next((other for other in ports if _clash(parsed, other[0])), None)
            if clash:
                errors.append("%s: host port %s is already published by %s%s"
                              % (field, _ports_text(parsed[1], parsed[2]), clash[1],
                                 "" if clash[0][1] == parsed[1] else " (%s)" % _ports_text(clash[0][1], clash[0][2])))
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
        ip, ports, proto = parse_publish(publish)
        if ports and proto == "tcp":
            ip = "127.0.0.1" if _ip_key(ip) in WILDCARD else ip
            if ":" in ip:
                ip = "[%s]" % ip
            return "http://%s:%d" % (ip, ports[0])
    raise ValidationError("upstream: required with a domain when no publish_ports entry has a TCP host port")


def secret_env_content(spec):
    """Text of the service's 0600 environment file (podman-run(1) --env-file format)."""
    lines = []
    for key in sorted(spec.get("secret_environment") or {}):
        value = spec["secret_environment"][key]
        value = "" if value is None else str(value)
        if not ENV_NAME_RE.match(str(key)):
            raise ValidationError("secret_environment: %r is not a valid variable name" % (key,))
        if "\n" in value or "\r" in value:
            raise ValidationError("secret_environment.%s: the value contains a newline" % key)
        lines.append("%s=%s\n" % (key, value))
    return "".join(lines)


def update_section(spec):
    """Quadlet keys of ``auto_update``: ``AutoUpdate=``, and with ``health`` ``Notify=healthy`` and
    ``HealthOnFailure=kill``, so a restart only succeeds once the new image is healthy and
    ``podman auto-update`` rolls a failing one back (podman-auto-update(1)). Raises ValueError."""
    errors = update_errors(spec)
    if errors:
        raise ValidationError("; ".join(errors))
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
    if not update_policies(spec) and (spec.get("update_window") or spec.get("update_webhook_secret")):
        errors.append("%supdate_window, update_webhook_secret: need auto_update%s"
                      % (where, " on a container" if is_pod(spec) else ""))
    if policy == "registry" and not FQ_IMAGE_RE.match(str(spec.get("image", ""))):
        errors.append("%simage: AutoUpdate=registry needs a fully qualified reference (registry/name:tag), got %r"
                      % (where, spec.get("image")))
    return errors


# -- Pods and jobs (issue 9) ----------------------------------------------------
#
# A spec with ``containers`` is a pod: NAME.pod (Quadlet [Pod], its service is
# NAME.service through ServiceName=) holds the published ports and the shared
# volumes; each member is NAME-MEMBER.container with Pod=NAME.pod. A spec's
# ``jobs`` are NAME-job-JOB.container units (Type=oneshot) started by the user
# timer NAME-job-JOB.timer. What the units contain is module_utils/service_units.py;
# here are the options and the checks that need no host (the schedules and time
# spans are checked with systemd-analyze on the host, in the services module's plan).

MEMBER_OPTIONS = dict(
    name=dict(type="str", required=True),
    image=dict(type="str", required=True),
    image_archive=dict(type="path"),
    exec=dict(type="str"),
    environment=dict(type="dict", default={}),
    secret_environment=dict(type="dict", default={}, no_log=True),
    volumes=dict(type="list", elements="str", default=[]),
    health=dict(type="dict", options=HEALTH_OPTIONS),
    auto_update=dict(type="str", choices=["registry", "local"]),
    requires=dict(type="list", elements="str", default=[]),
    # Accepted so that the refusal names the field and says where the port goes (the pod).
    publish_ports=dict(type="list", elements="str", default=[]),
    container_options=dict(type="dict", default={}),
    service_options=dict(type="dict", default={}),
)

JOB_OPTIONS = dict(
    name=dict(type="str", required=True),
    schedule=dict(type="str", required=True),
    exec=dict(type="str", required=True),
    image=dict(type="str"),
    volumes=dict(type="list", elements="str"),
    environment=dict(type="dict", default={}),
    timeout=dict(type="str"),
    randomized_delay=dict(type="str"),
    persistent=dict(type="bool", default=False),
)

SPEC_OPTIONS.update(
    containers=dict(type="list", elements="dict", options=MEMBER_OPTIONS),
    pod_options=dict(type="dict", default={}),
    jobs=dict(type="list", elements="dict", default=[], options=JOB_OPTIONS),
)

# Unit, container and job names: one word for systemd and podman (no '@': that makes a template instance).
PART_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# podman names the pod's infra container NAME-infra (Quadlet's --infra-name).
RESERVED_MEMBER_NAMES = ("infra",)
# Keys of a single-container spec that belong to each member in a pod.
MEMBER_ONLY_KEYS = ("image", "image_archive", "exec", "health", "container_options", "auto_update")
JOB_PREFIX = "job-"


def is_pod(spec):
    return spec.get("containers") is not None


def member_unit(spec, member):
    """Base name of a member's unit and container: NAME-MEMBER."""
    return "%s-%s" % (spec["name"], member)


def job_unit(spec, job):
    """Base name of a job's units (.container, .timer) and container: NAME-job-JOB."""
    return "%s-%s%s" % (spec["name"], JOB_PREFIX, job)


def _set(value):
    return value not in (None, "", [], {})


def pod_errors(spec, where=""):
    """Messages naming the field for ``containers`` (and the single-container keys it excludes)."""
    errors = []
    members = spec.get("containers")
    if members is None:
        if not spec.get("image"):
            errors.append("%simage: required (or containers, for a pod)" % where)
        if _set(spec.get("pod_options")):
            errors.append("%spod_options: only for a pod (containers)" % where)
        return errors
    if not isinstance(members, list) or not members:
        return ["%scontainers: a pod needs at least one container" % where]
    for key in MEMBER_ONLY_KEYS:
        if _set(spec.get(key)):
            errors.append("%s%s: in a pod this belongs to each containers[] entry, not to the service" % (where, key))
    names = {}
    for index, member in enumerate(members):
        field = "%scontainers[%d]" % (where, index)
        if not isinstance(member, dict):
            errors.append("%s: expected a dictionary" % field)
            continue
        name = str(member.get("name") or "")
        if not PART_NAME_RE.match(name):
            errors.append("%s.name: %r is not a container name (%s)" % (field, name, PART_NAME_RE.pattern))
        elif name in RESERVED_MEMBER_NAMES:
            errors.append("%s.name: %r is taken by the pod's infra container (%s-%s)"
                          % (field, name, spec.get("name"), name))
        elif name in names:
            errors.append("%s.name: %s is already used by %scontainers[%d]" % (field, name, where, names[name]))
        else:
            names[name] = index
        if not member.get("image"):
            errors.append("%s.image: required" % field)
        if member.get("publish_ports"):
            errors.append("%s.publish_ports: the members of a pod publish no ports of their own; the pod publishes "
                          "them for all of them: move %s to %spublish_ports (Quadlet PublishPort= of %s.pod)"
                          % (field, ", ".join(str(p) for p in member["publish_ports"]), where, spec.get("name")))
        policy = member.get("auto_update")
        if policy not in (None, "registry", "local"):
            errors.append("%s.auto_update: %r is not registry or local" % (field, policy))
        if policy == "registry" and not FQ_IMAGE_RE.match(str(member.get("image", ""))):
            errors.append("%s.image: AutoUpdate=registry needs a fully qualified reference (registry/name:tag), got %r"
                          % (field, member.get("image")))
    for index, member in enumerate(members):
        if not isinstance(member, dict):
            continue
        for rindex, required in enumerate(member.get("requires") or []):
            field = "%scontainers[%d].requires[%d]" % (where, index, rindex)
            if required == member.get("name"):
                errors.append("%s: a container cannot wait for itself" % field)
            elif required not in names:
                errors.append("%s: %r is not a container of this pod (%s)" % (field, required, ", ".join(names)))
    cycle = _requires_cycle(members)
    if cycle:
        errors.append("%scontainers: the requires form a cycle (%s); systemd would refuse the start order"
                      % (where, " -> ".join(cycle)))
    return errors


def shape_errors(spec, where=""):
    """pod_errors() of a pod (a spec with neither image nor containers is refused by the argument specs) and
    job_errors()."""
    return (pod_errors(spec, where) if is_pod(spec) else []) + job_errors(spec, where)


def _requires_cycle(members):
    """One cycle of ``requires`` as a list of names, or None."""
    graph = dict((m.get("name"), list(m.get("requires") or [])) for m in members if isinstance(m, dict))
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in graph.get(node, []):
            if nxt not in graph:
                continue
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in graph:
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def job_errors(spec, where=""):
    """Messages naming the field for ``jobs``: names (unique, and no unit clashing with a member's), the keys
    that need no host. ``schedule``, ``timeout`` and ``randomized_delay`` are parsed on the host
    (systemd-analyze), see service_units.host_checks()."""
    errors = []
    jobs = spec.get("jobs") or []
    if not isinstance(jobs, list):
        return ["%sjobs: expected a list" % where]
    taken = {}
    for index, member in enumerate(spec.get("containers") or []):
        if isinstance(member, dict) and member.get("name"):
            taken[member_unit(spec, member["name"])] = "%scontainers[%d]" % (where, index)
    for index, job in enumerate(jobs):
        field = "%sjobs[%d]" % (where, index)
        if not isinstance(job, dict):
            errors.append("%s: expected a dictionary" % field)
            continue
        name = str(job.get("name") or "")
        if not PART_NAME_RE.match(name):
            errors.append("%s.name: %r is not a job name (%s)" % (field, name, PART_NAME_RE.pattern))
        else:
            unit = job_unit(spec, name)
            if unit in taken:
                errors.append("%s.name: %s clashes with %s (both would be the unit %s)"
                              % (field, name, taken[unit], unit))
            else:
                taken[unit] = "%s (%s)" % (field, name)
        for key in ("schedule", "exec"):
            if not str(job.get(key) or "").strip():
                errors.append("%s.%s: required" % (field, key))
        if not job.get("image") and is_pod(spec) and not (spec.get("containers") or [{}])[0].get("image"):
            errors.append("%s.image: required (the pod's first container has no image)" % field)
    return errors


def update_policies(spec):
    """The auto_update policies of a spec: its own, or those of its pod's members."""
    if is_pod(spec):
        return [m.get("auto_update") for m in spec.get("containers") or [] if isinstance(m, dict)
                and m.get("auto_update")]
    return [spec["auto_update"]] if spec.get("auto_update") else []


def updates_wanted(spec):
    """True when podman auto-update may replace an image of this service (the update runner is installed)."""
    return bool(update_policies(spec))
