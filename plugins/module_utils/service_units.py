# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The units one service spec becomes, for its user's managers (pure, but for host_checks()).

* A single-container spec: ``NAME.container`` (service ``NAME.service``),
  exactly what it was before pods and jobs existed.
* A pod (``containers``): ``NAME.pod`` with ``ServiceName=NAME`` (so the
  service is ``NAME.service`` here too), ``PodName=NAME``, the published ports
  and the shared volumes; one ``NAME-MEMBER.container`` per member with
  ``Pod=NAME.pod``, ``ContainerName=NAME-MEMBER`` and no port of its own.
  Quadlet (podman 5.4) binds each member's service to the pod's
  (``BindsTo=``/``After=``) and makes the pod's service want its members; a
  member's ``requires`` adds ``After=``/``Requires=`` on the others' services,
  and a required member with a ``health`` check gets ``Notify=healthy``: its
  service is started only once it is healthy, so the member waiting for it
  starts after that.
  The pod is created with ``--exit-policy=continue`` (``PodmanArgs=``, a 5.4
  .pod key): with Quadlet's default (``stop``) a member that is restarted
  while it is the only one running stops the whole pod.
* A job: ``NAME-job-JOB.container`` with ``[Service] Type=oneshot`` (never
  ``RemainAfterExit=``: the next elapse must start it again) and the plain
  user unit ``NAME-job-JOB.timer`` in ``~/.config/systemd/user/``, enabled by
  its link in ``timers.target.wants``. A job of a pod joins the pod
  (``Pod=``, ``StartWithPod=false``), so it reaches the members on 127.0.0.1.

Each unit is a dict for :mod:`unit_set`: ``fname``, ``kind`` (quadlet or
systemd), ``content``, ``service`` (the unit converged: a service or the
timer), ``state`` (started or present), ``wanted_by`` (a target whose
``.wants`` link enables it), ``part_of`` (the pod's fname for its members),
``env_files`` (secret environment files it reads).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.selfhost.pi.plugins.module_utils import quadlet_render, service_spec
from ansible_collections.selfhost.pi.plugins.module_utils.errors import ValidationError

ENV_SUBDIR = ".config/selfhost-pi"
TIMER_HEADER = "# Managed by Ansible (selfhost.pi.services). Local changes will be overwritten.\n"
# The pod keeps running while a member restarts (Quadlet's default --exit-policy=stop ends it with the last member).
POD_EXIT_POLICY = "--exit-policy=continue"
# A job that ignores SIGTERM (a shell as PID 1 does) is killed this long after its timeout or a stop.
JOB_STOP_TIMEOUT = 15
# Timers elapse on the second asked for (systemd's default coalesces them within a minute).
TIMER_ACCURACY = "1s"


def env_path(home, base):
    """The 0600 secret environment file of a service (base NAME) or a pod member (base NAME-MEMBER)."""
    return os.path.join(home, ENV_SUBDIR, "%s.env" % base)


def _merged(*dicts):
    out = {}
    for value in dicts:
        out.update(value or {})
    return out


def _quadlet(fname, unit_type, sections, **extra):
    unit, options, service, install = sections
    quadlet_render.check_name(fname.rsplit(".", 1)[0], unit_type)
    unit = dict(fname=fname, kind="quadlet", type=unit_type, unit=unit, options=options, service_section=service,
                install=install, content=quadlet_render.render(unit_type, unit, options, service, install),
                service=quadlet_render.service_name(fname.rsplit(".", 1)[0], unit_type, options),
                state="started", wanted_by=None, part_of=None, env_files=[])
    unit.update(extra)
    return unit


def single_unit(spec, params, digest, env_file):
    """The ``NAME.container`` of a single-container spec (unchanged since before pods)."""
    service_options = dict(params["default_service_options"])
    service_options.update(spec.get("service_options") or {})
    return _quadlet("%s.container" % spec["name"], "container", (
        {"Description": "selfhost.pi service %s" % spec["name"]},
        service_spec.container_section(spec, digest, env_file),
        service_options,
        {"WantedBy": "default.target"}), env_files=[env_file] if env_file else [])


def pod_units(spec, params, digests, env_files):
    """``NAME.pod`` and one ``NAME-MEMBER.container`` per member.

    ``digests`` maps a member name to its archive's digest; ``env_files`` maps
    None (the service's) and member names to their secret environment files.
    """
    name = spec["name"]
    options = {"PodName": name, "ServiceName": name}
    if spec.get("publish_ports"):
        options["PublishPort"] = list(spec["publish_ports"])
    if spec.get("volumes"):
        options["Volume"] = list(spec["volumes"])
    options["PodmanArgs"] = POD_EXIT_POLICY
    options.update(spec.get("pod_options") or {})
    pod_fname = "%s.pod" % name
    required = set(r for member in spec["containers"] for r in member.get("requires") or [])
    units = [_quadlet(pod_fname, "pod", ({"Description": "selfhost.pi service %s (pod)" % name}, options, {},
                                         {"WantedBy": "default.target"}))]
    for member in spec["containers"]:
        base = service_spec.member_unit(spec, member["name"])
        view = dict(name=base, image=member["image"], exec=member.get("exec"), volumes=member.get("volumes"),
                    environment=_merged(spec.get("environment"), member.get("environment")),
                    health=member.get("health"), auto_update=member.get("auto_update"),
                    container_options=member.get("container_options"))
        section = service_spec.container_section(view, digests.get(member["name"]))
        if member.get("health") and member["name"] in required and "Notify" not in section:
            section["Notify"] = "healthy"  # another member waits for this one: its service is up once healthy
        section["Pod"] = pod_fname
        files = [path for path in (env_files.get(None), env_files.get(member["name"])) if path]
        if files:
            section["EnvironmentFile"] = files
        unit = {"Description": "selfhost.pi service %s, container %s" % (name, member["name"])}
        needs = ["%s.service" % service_spec.member_unit(spec, other) for other in member.get("requires") or []]
        if needs:
            unit.update(After=needs, Requires=needs)
        service_options = _merged(params["default_service_options"], spec.get("service_options"),
                                  member.get("service_options"))
        units.append(_quadlet("%s.container" % base, "container", (unit, section, service_options, None),
                              part_of=pod_fname, env_files=files, member=member["name"]))
    return units


def job_units(spec, env_file):
    """``NAME-job-JOB.container`` (oneshot) and ``NAME-job-JOB.timer`` of each job."""
    units = []
    pod = service_spec.is_pod(spec)
    for job in spec.get("jobs") or []:
        base = service_spec.job_unit(spec, job["name"])
        image = job.get("image") or (spec["containers"][0]["image"] if pod else spec["image"])
        options = {"ContainerName": base, "Image": image}
        if pod:
            options.update(Pod="%s.pod" % spec["name"], StartWithPod=False)
        options["Exec"] = job["exec"]
        volumes = job.get("volumes")
        if volumes is None:  # a pod's volumes are the pod's, shared with every container that joins it
            volumes = [] if pod else spec.get("volumes")
        if volumes:
            options["Volume"] = list(volumes)
        environment = _merged(spec.get("environment"), job.get("environment"))
        if environment:
            options["Environment"] = environment
        if env_file:
            options["EnvironmentFile"] = env_file
        service = {"Type": "oneshot"}
        if job.get("timeout"):
            # A oneshot service runs in its start phase: TimeoutStartSec= ends it (RuntimeMaxSec= does not
            # apply to Type=oneshot, systemd.service(5)).
            service["TimeoutStartSec"] = job["timeout"]
        service["TimeoutStopSec"] = JOB_STOP_TIMEOUT
        units.append(_quadlet("%s.container" % base, "container", (
            {"Description": "selfhost.pi job %s of service %s" % (job["name"], spec["name"])},
            options, service, None), state="present", env_files=[env_file] if env_file else [],
            job=job["name"]))
        timer = {"OnCalendar": job["schedule"], "AccuracySec": TIMER_ACCURACY}
        if job.get("randomized_delay"):
            timer["RandomizedDelaySec"] = job["randomized_delay"]
        if job.get("persistent"):
            timer["Persistent"] = True
        units.append(dict(
            fname="%s.timer" % base, kind="systemd", type="timer", service="%s.timer" % base, state="started",
            wanted_by="timers.target", part_of=None, env_files=[], job=job["name"],
            content=render_plain([
                ("Unit", {"Description": "selfhost.pi schedule of job %s of service %s" % (job["name"], spec["name"])},
                 "unit"),
                ("Timer", timer, "timer"),
                ("Install", {"WantedBy": "timers.target"}, "install")])))
    return units


def render_plain(sections):
    """A plain systemd unit's text: ``(section, entries, field)`` in order, values in systemd syntax as given."""
    return TIMER_HEADER + "\n".join(
        "\n".join(quadlet_render.render_section(section, entries, field)) + "\n"
        for section, entries, field in sections)


# ---------------------------------------------------------------- checks on the host

def _analyze(host, what, value):
    """None when ``systemd-analyze WHAT VALUE`` accepts the value, else systemd's reason."""
    analyze = host.which("systemd-analyze", required=True)
    rc, out, err = host.run([analyze, what, "--", str(value)], check=False)
    if rc == 0:
        return None
    reason = (err or out).strip().splitlines()
    return reason[-1] if reason else "systemd-analyze %s refused it (rc=%d)" % (what, rc)


def host_checks(host, spec, where=""):
    """Messages naming the field for the job values systemd itself parses: ``schedule`` (OnCalendar=, with
    ``systemd-analyze calendar``), ``timeout`` and ``randomized_delay`` (time spans, ``systemd-analyze
    timespan``). Read-only: run in the plan, before anything changes."""
    errors = []
    for index, job in enumerate(spec.get("jobs") or []):
        field = "%sjobs[%d]" % (where, index)
        checks = [("schedule", "calendar", "OnCalendar="), ("timeout", "timespan", "TimeoutStartSec="),
                  ("randomized_delay", "timespan", "RandomizedDelaySec=")]
        for key, what, target in checks:
            value = job.get(key)
            if value in (None, ""):
                continue
            if "\n" in str(value):
                errors.append("%s.%s: the value contains a newline" % (field, key))
                continue
            reason = _analyze(host, what, value)
            if reason:
                errors.append("%s.%s: %r is not a systemd %s for %s: %s" % (
                    field, key, value, "calendar event" if what == "calendar" else "time span", target, reason))
    return errors


def units(spec, home, params, digests, env_files):
    """Every unit of ``spec``: the main one(s) first (the container, or the pod then its members), then the jobs.

    ``digests`` maps None (the service's image archive) or a member name to an archive digest; ``env_files`` maps
    None or a member name to its secret environment file. Raises ValidationError.
    """
    if service_spec.is_pod(spec):
        out = pod_units(spec, params, digests, env_files)
    else:
        out = [single_unit(spec, params, digests.get(None), env_files.get(None))]
    out += job_units(spec, env_files.get(None))
    names = set()
    for unit in out:
        if unit["fname"] in names:  # job_errors() refuses these first; never two writers of one file
            raise ValidationError("two units would be %s" % unit["fname"], field="jobs")
        names.add(unit["fname"])
    return out
