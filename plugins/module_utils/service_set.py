# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge many services in one module run (``selfhost.pi.services``).

Two passes over the same code the single-purpose modules use:

1. plan: every spec is checked and every step is run in check mode (user,
   Quadlet dry run, nginx site). Any error fails the module before the host
   changes, naming ``services[i].field``.
2. apply: only services whose plan shows a change are converged for real, each
   on its own (a failing service does not stop the others); then all changed
   nginx sites are tested with one ``nginx -t`` and nginx is reloaded once.

The record (:mod:`managed_record`) is read first: a spec taking a retired UID
is refused in the plan. Services it names that the list no longer declares
are planned for removal in pass 1 and removed first in pass 2
(:mod:`service_prune`; their sites go with the others' nginx pass); the
record is written last, only when it changed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import pwd

from ansible_collections.selfhost.pi.plugins.module_utils import (
    managed_record, nginx, service_data, service_spec, service_units, systemd, tls, unit_set)
from ansible_collections.selfhost.pi.plugins.module_utils.constants import HTPASSWD_DIR, MANAGED_RECORD
from ansible_collections.selfhost.pi.plugins.module_utils.errors import (
    CommandError, SelfhostError, UnsafePathError, ValidationError)
from ansible_collections.selfhost.pi.plugins.module_utils.files import ManagedFile, ensure_directory, read_text
from ansible_collections.selfhost.pi.plugins.module_utils.host import user_runtime_dir
from ansible_collections.selfhost.pi.plugins.module_utils.service_prune import Retired
from ansible_collections.selfhost.pi.plugins.module_utils.service_user import ServiceUser, normalize


# Services often share one image archive: each file is hashed once per module run.
_DIGESTS = {}


def file_digest(path):
    st = os.stat(path)
    key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = "sha256:" + digest.hexdigest()
    return _DIGESTS[key]


def prefetch_states(host, services):
    """Every state the plan asks systemd for, read side by side (systemd.prefetch_states): the system
    manager's user@UID.service of every service, and each existing user's units."""
    asks = [(None, None, ["user@%d.service" % svc.spec["uid"] for svc in services])]
    for svc in services:
        try:
            uid = pwd.getpwnam(svc.name).pw_uid
        except KeyError:
            continue  # made by this run: nothing to ask
        asks.append((svc.name, uid, [unit["service"] for unit in svc.units]))
    systemd.prefetch_states(host, asks)


def site_params(host, params, spec):
    """The nginx_site parameters of a service's ``domain``: proxy, body size, HTTPS (module_utils/tls.py).

    A certificate whose files do not exist yet leaves the site on HTTP, with a
    warning. Raises ValidationError naming the spec's fields.
    """
    site = dict((key, opt.get("default")) for key, opt in nginx.site_argument_spec().items())
    site.update(name=spec["name"], server_name=[spec["domain"]], listen=params["nginx_listen"],
                proxy_pass=service_spec.upstream(spec))
    if spec.get("client_max_body_size") is not None:
        site["client_max_body_size"] = str(spec["client_max_body_size"])
    if spec.get("basic_auth"):  # the file itself is written by the service role (tasks/basic_auth.yml)
        errors = tls.htpasswd_errors(spec["basic_auth"], "basic_auth")
        if errors:
            raise ValidationError("; ".join(errors))
        site["auth_basic_user_file"] = "%s/%s" % (HTPASSWD_DIR, spec["name"])
    mode = tls.normalize_mode(spec.get("tls")) or params.get("tls_default") or "off"
    errors = tls.mode_errors(mode, "tls") or tls.domain_errors(mode, spec["domain"], "domain")
    if errors:
        raise ValidationError("; ".join(errors))
    site.update(tls.site_options(mode, spec["domain"]))
    for key in ("https_listen", "hsts_max_age", "hsts_preload"):
        if params.get(key) is not None:
            site[key] = params[key]
    errors = nginx.validate_site(site)
    if errors:  # name the spec's fields, not the site's
        renamed = {"server_name[0]": "domain", "proxy_pass": "upstream", "listen": "nginx_listen"}
        for old, new in renamed.items():
            errors = [e.replace(old + ":", new + ":", 1) if e.startswith(old + ":") else e for e in errors]
        raise ValidationError("; ".join(errors))
    served, warning = nginx.without_missing_certificate(site)
    if warning:
        host.warn("services: %s" % warning)
    return served


class Service(object):
    """One spec: its checked inputs, its plan, and how to apply it."""

    def __init__(self, host, params, index, spec):
        self.host = host
        self.index = index
        self.spec = spec
        self.name = spec["name"]
        self.field = "services[%d]" % index
        # Backed up and restored by the backup role; checked here too, kept in the record for a last snapshot.
        self.data = service_data.normalize(spec)
        self.user_spec = normalize(dict(name=spec["name"], uid=spec["uid"], linger=True,
                                        manager_timeout=params["manager_timeout"]))
        home = self.user_spec["home"]
        self.manager_timeout = params["manager_timeout"]
        # Images loaded from archives: the service's, or each member's. key: None or the member's name.
        self.images = []
        digests = {}
        sources = [(m["name"], m, "containers[%d]." % i) for i, m in enumerate(spec.get("containers") or [])] \
            if service_spec.is_pod(spec) else [(None, spec, "")]
        for key, source, prefix in sources:
            if source.get("image_archive"):
                digests[key] = self.archive_digest(source["image_archive"], prefix + "image_archive")
                self.images.append(dict(key=key, image=source["image"], archive=source["image_archive"],
                                        digest=digests[key], field=prefix + "image_archive"))
        # Secret environment files: the service's (shared by a pod's members and the jobs), each member's.
        self.envs = {}
        for key, source, prefix in [(None, spec, "")] + [s for s in sources if s[0] is not None]:
            if source.get("secret_environment"):
                base = self.name if key is None else service_spec.member_unit(spec, key)
                path = service_units.env_path(home, base)
                try:
                    content = service_spec.secret_env_content(source)
                except ValidationError as exc:
                    raise ValidationError(str(exc), field=prefix.rstrip(".") or None)
                self.envs[key] = ManagedFile(path, content, 0o600, spec["uid"], spec["uid"])
                self.envs[key].variables = len(source["secret_environment"])
        env_paths = dict((key, env.path) for key, env in self.envs.items())
        self.units = service_units.units(spec, home, params, digests, env_paths)
        self.content = self.units[0]["content"]
        self.site = None
        if spec.get("domain"):
            self.site = nginx.Site(spec["name"], nginx.render_site(site_params(host, params, spec)))
        volumes = list(spec.get("volumes") or [])
        for member in spec.get("containers") or []:
            volumes += member.get("volumes") or []
        for job in spec.get("jobs") or []:
            volumes += job.get("volumes") or []
        self.bind_dirs = service_spec.bind_sources_in_home(dict(volumes=volumes), home)
        self.missing_dirs = []
        self.user = self.unit = None
        self.plan_ = None
        self.image_loaded = False
        self.error = None
        self.user_ok = True

    def archive_digest(self, path, field):
        if os.path.isfile(path):
            return file_digest(path)
        if self.host.check_mode:  # the copy before this task did not run either
            self.host.warn("%s.%s: %s is not on the host yet; assuming it changes" % (self.field, field, path))
            return "sha256:(not copied yet)"
        raise ValidationError("%s is not a file on the host" % path, field=field)

    # -- plan -----------------------------------------------------------------
    def check_on_host(self, host):
        """Errors (naming services[i].field) for what systemd itself parses: the jobs' schedules and spans."""
        return service_units.host_checks(host, self.spec, self.field + ".")

    def plan(self):
        """Run every step in check mode; raise SelfhostError when a step refuses."""
        check = self.host.checked()
        self.missing_dirs = [path for path in self.bind_dirs if not os.path.isdir(path)]
        self.user = ServiceUser(check, dict(self.user_spec)).converge()
        # A user made (or changed: linger) by this run has no manager to ask yet: the units are only checked.
        self.plan_ = unit_set.converge(check, self.name, self.user_spec["home"], self.fresh_units(),
                                       self.manager_timeout, wait=not self.user["changed"])
        self.unit = self.plan_.results()[0]

    def fresh_units(self):
        return [dict(unit) for unit in self.units]

    @property
    def env_changed(self):
        return any(env.changed for env in self.envs.values())

    @property
    def changed(self):
        return bool(self.user["changed"] or self.plan_.changed or self.env_changed or self.missing_dirs
                    or (self.site and self.site.changed))

    # -- apply ----------------------------------------------------------------
    def apply(self):
        if self.user["changed"] or self.plan_.changed or self.env_changed or self.missing_dirs:
            try:
                self.user = ServiceUser(self.host, dict(self.user_spec)).converge()
            except SelfhostError:
                self.user_ok = False
                raise
            restart = set()
            for key, env in self.envs.items():
                if env.changed:
                    self.write_env(env)
                    if env.content_changed and env.before is not None:  # a running container sees new values only after a restart
                        restart.update(u["fname"] for u in self.units if env.path in u["env_files"])
            self.make_bind_dirs()
            loaded = set()
            for image in self.images:  # members sharing one archive load it once
                if (image["archive"], image["image"]) not in loaded:
                    self.load_image(image)
                    loaded.add((image["archive"], image["image"]))
            self.plan_ = unit_set.converge(self.host, self.name, self.user_spec["home"], self.fresh_units(),
                                           self.manager_timeout, restart=restart)
            self.unit = self.plan_.results()[0]

    def write_env(self, env):
        uid = self.user["uid"]
        try:
            ensure_directory(os.path.dirname(env.path), 0o700, uid, uid)
            env.apply()
        except OSError as exc:
            raise UnsafePathError("cannot write %s: %s" % (env.path, exc), field="secret_environment")

    def make_bind_dirs(self):
        """podman refuses a bind mount whose source is missing: make those in the home, owned by the user."""
        uid = self.user["uid"]
        for path in self.missing_dirs:
            try:
                ensure_directory(path, 0o750, uid, uid)
            except OSError as exc:
                raise UnsafePathError("cannot make the bind mount source %s: %s" % (path, exc), field="volumes")

    def podman(self, *args):
        """``podman ARGS`` as the service user, in its runtime directory; (rc, stdout, stderr)."""
        env = {"XDG_RUNTIME_DIR": user_runtime_dir(self.user["uid"])}
        return self.host.run_as(self.name, ["podman"] + list(args), cwd="/", env=env, check=False)

    def load_image(self, image):
        """Load the archive when the image is missing or the archive is not the one its unit records."""
        unit = next(u for u in self.plan_.units if u["kind"] == "quadlet" and u.get("member") == image["key"]
                    and u["type"] == "container" and not u.get("job"))
        before = read_text(unit["path"]) or ""
        recorded = "%s=%s" % (service_spec.ARCHIVE_LABEL, image["digest"]) in before
        if recorded and self.podman("image", "exists", image["image"])[0] == 0:
            return
        rc, out, err = self.podman("load", "-q", "-i", image["archive"])
        if rc != 0:
            raise CommandError("podman load -i %s failed (rc=%d): %s"
                               % (image["archive"], rc, (err or out).strip()), field=image["field"])
        self.image_loaded = True

    def result(self):
        strip = ("diff", "content")
        out = dict(
            name=self.name, changed=self.changed, image_loaded=self.image_loaded,
            user=dict((k, v) for k, v in (self.user or {}).items() if k not in strip),
            unit=dict((k, v) for k, v in (self.unit or {}).items() if k not in strip),
            site=self.site.path if self.site else None, error=self.error,
            env_file=self.envs[None].path if None in self.envs else None,
        )
        if len(self.units) > 1:
            out["units"] = self.plan_.results() if self.plan_ else []
        return out

    def record(self):
        """This service's entry in the record (module_utils/managed_record.py)."""
        return dict(uid=int(self.spec["uid"]), home=self.user_spec["home"],
                    units=[u["fname"] for u in self.units], site=self.name if self.site else None,
                    domain=self.spec.get("domain"), data=self.data)

    def diffs(self):
        out = []
        if self.user and self.user["changed"]:
            out.append(self.user["diff"])
        for path in self.missing_dirs:
            out.append({"before_header": path, "after_header": path, "before": "",
                        "after": "directory (bind mount source), 0750, owned by %s\n" % self.name})
        for env in self.envs.values():
            if env.changed:  # never the values
                out.append({"before_header": env.path, "after_header": env.path,
                            "before": "(secret environment)\n" if env.before is not None else "",
                            "after": "(secret environment, %d variables, changed)\n" % env.variables})
        if self.plan_:
            out.extend(self.plan_.diffs())
        if self.site and self.site.changed:
            out.extend(self.site.diff())
        return out


def prune_errors(params, specs, record):
    """Errors of the pruning options against the declared services (naming ``prune_data[i]``)."""
    declared = set(str(s.get("name")) for s in specs if isinstance(s, dict))
    errors = []
    for index, name in enumerate(params.get("prune_data") or []):
        if name in declared:
            errors.append("prune_data[%d]: %s is declared in services; its data is deleted only once it is "
                          "removed from the list" % (index, name))
    return errors


def converge(host, params, diff=False):
    """Plan and apply ``params['services']``, prune what the record has and the list lost; return
    (result, failures).

    Raises ValidationError, naming every service and field at fault, when the
    plan refuses anything: then nothing was changed.
    """
    specs = params["services"]
    record_path = params.get("record") or MANAGED_RECORD
    record = managed_record.load(record_path)  # None: no record yet, the declared services are adopted
    errors = service_spec.conflicts(specs, var="services")
    errors += managed_record.uid_errors(specs, record, var="services")
    errors += prune_errors(params, specs, record)
    services = []
    for index, spec in enumerate(specs):
        field = "services[%d]" % index
        if service_spec.shape_errors(spec):
            continue  # named by conflicts() above
        try:
            services.append(Service(host, params, index, spec))
        except (ValueError, SelfhostError) as exc:
            errors.append("%s.%s" % (field, exc))
    declared = set(svc.name for svc in services) | set(str(s.get("name")) for s in specs if isinstance(s, dict))
    leaving = sorted(name for name in (record or {}).get("services", {}) if name not in declared)
    retired = []
    if leaving and not params.get("prune", True):
        host.warn("services: %s no longer declared; prune is off, so left as they are"
                  % ", ".join(leaving))
    elif leaving and not errors:
        for name in leaving:
            try:
                retired.append(Retired(host, params, name, record["services"][name]))
            except (KeyError, TypeError, ValueError) as exc:
                errors.append("%s: its entry in %s is malformed (%s)" % (name, record_path, exc))
    if not errors:
        checked = host.checked()
        for svc in services:
            errors.extend(svc.check_on_host(checked))
    if not errors:
        prefetch_states(host.checked(), services)
        for svc in services:
            try:
                svc.plan()
            except SelfhostError as exc:
                errors.append("%s (%s): %s" % (svc.field, svc.name, exc))
        for old in retired:
            try:
                old.plan()
            except SelfhostError as exc:
                errors.append("removing %s: %s" % (old.name, exc))
    if errors:
        raise ValidationError("nothing was changed: %s" % "; ".join(errors), errors=errors)

    failures = []
    reloaded = False
    sites = []
    if not host.check_mode:
        # The removed first: a declared service may take over a port or a domain one of them had.
        for old in retired:
            try:
                old.apply()
                if old.site:
                    sites.append(old.site)
            except (SelfhostError, OSError, IOError) as exc:
                old.error = str(exc)
                failures.append("removing %s: %s" % (old.name, exc))
        for svc in services:
            try:
                svc.apply()
            except SelfhostError as exc:
                svc.error = str(exc)
                failures.append("%s (%s): %s" % (svc.field, svc.name, exc))
            except (OSError, IOError) as exc:  # e.g. a full SD card: say so, and go on with the others
                svc.error = "%s: %s" % (type(exc).__name__, exc)
                failures.append("%s (%s): %s" % (svc.field, svc.name, svc.error))
        sites += [svc.site for svc in services if svc.site and svc.site.changed and svc.user_ok]
        if sites:
            try:
                reloaded = nginx.apply_sites(host, sites)["reloaded"]
            except SelfhostError as exc:
                failures.append("nginx: %s" % exc)
    for old in retired:
        if host.check_mode or old.done:
            host.warn("services: %s" % old.message())
    new_record = next_record(record, services, retired, host.check_mode)
    record_file = managed_record.managed_file(record_path, new_record)
    if record_file.changed and not host.check_mode:
        try:
            managed_record.write(record_path, new_record)
        except (OSError, IOError) as exc:
            failures.append("%s: %s" % (record_path, exc))
    result = dict(
        changed=any(svc.changed for svc in services) or bool(retired) or record_file.changed,
        services=[svc.result() for svc in services],
        removed=[old.result() for old in retired],
        record=record_path,
        nginx_reloaded=reloaded,
    )
    if diff:
        result["diff"] = [entry for svc in services for entry in svc.diffs()]
        result["diff"] += [entry for old in retired for entry in old.diffs()]
        if record_file.changed:
            result["diff"].append(record_file.diff())
    return result, failures


def next_record(record, services, retired, check_mode=False):
    """The record after this converge: the declared services, the removed ones as tombstones (name -> UID),
    and recorded services that were kept (prune off, or their removal failed)."""
    out = managed_record.empty()
    old = record or managed_record.empty()
    out["retired"].update(old.get("retired") or {})
    gone = dict((r.name, r) for r in retired if r.done or check_mode)
    for name, entry in (old.get("services") or {}).items():
        if name in gone:
            r = gone[name]
            user_removed = bool(r.user_plan and r.user_plan["changed"]) or (
                (out["retired"].get(name) or {}).get("user_removed", False))
            out["retired"][name] = dict(uid=r.uid, home=r.home, user_removed=user_removed,
                                        data_removed=r.remove_data)
        else:
            out["services"][name] = entry
    for svc in services:
        out["services"][svc.name] = svc.record()
        out["retired"].pop(svc.name, None)  # the same service came back
    return out
