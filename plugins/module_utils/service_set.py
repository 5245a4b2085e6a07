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
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import pwd

from ansible_collections.selfhost.pi.plugins.module_utils import (
    nginx, quadlet, quadlet_render, service_data, service_spec, tls)
from ansible_collections.selfhost.pi.plugins.module_utils.constants import HTPASSWD_DIR
from ansible_collections.selfhost.pi.plugins.module_utils.errors import (
    CommandError, SelfhostError, UnsafePathError, ValidationError)
from ansible_collections.selfhost.pi.plugins.module_utils.files import ManagedFile, ensure_directory, read_text
from ansible_collections.selfhost.pi.plugins.module_utils.host import user_runtime_dir
from ansible_collections.selfhost.pi.plugins.module_utils.service_user import ServiceUser, normalize


def file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


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
        service_data.normalize(spec)  # backed up and restored by the backup role; checked here too
        self.user_spec = normalize(dict(name=spec["name"], uid=spec["uid"], linger=True,
                                        manager_timeout=params["manager_timeout"]))
        self.digest = None
        if spec.get("image_archive"):
            if os.path.isfile(spec["image_archive"]):
                self.digest = file_digest(spec["image_archive"])
            elif host.check_mode:  # the copy before this task did not run either
                host.warn("services[%d].image_archive: %s is not on the host yet; assuming it changes"
                          % (index, spec["image_archive"]))
                self.digest = "sha256:(not copied yet)"
            else:
                raise ValidationError("%s is not a file on the host" % spec["image_archive"], field="image_archive")
        self.env = None
        env_path = None
        if spec.get("secret_environment"):
            env_path = os.path.join(self.user_spec["home"], ".config", "selfhost-pi", "%s.env" % spec["name"])
            self.env = ManagedFile(env_path, service_spec.secret_env_content(spec), 0o600, spec["uid"], spec["uid"])
        service_options = dict(params["default_service_options"])
        service_options.update(spec.get("service_options") or {})
        self.unit_params = dict(
            name=spec["name"], type="container", user=spec["name"], state="started", restart_on_change=True,
            manager_timeout=params["manager_timeout"],
            unit={"Description": "selfhost.pi service %s" % spec["name"]},
            options=service_spec.container_section(spec, self.digest, env_path),
            service=service_options,
            install={"WantedBy": "default.target"},
        )
        quadlet_render.check_name(spec["name"], "container")
        self.content = quadlet_render.render("container", self.unit_params["unit"], self.unit_params["options"],
                                             self.unit_params["service"], self.unit_params["install"])
        self.site = None
        if spec.get("domain"):
            self.site = nginx.Site(spec["name"], nginx.render_site(site_params(host, params, spec)))
        self.bind_dirs = service_spec.bind_sources_in_home(spec, self.user_spec["home"])
        self.missing_dirs = []
        self.user = self.unit = None
        self.image_loaded = False
        self.error = None
        self.user_ok = True

    # -- plan -----------------------------------------------------------------
    def plan(self):
        """Run every step in check mode; raise SelfhostError when a step refuses."""
        check = self.host.checked()
        self.missing_dirs = [path for path in self.bind_dirs if not os.path.isdir(path)]
        self.user = ServiceUser(check, dict(self.user_spec)).converge()
        try:
            pw = pwd.getpwnam(self.name)
        except KeyError:
            pw = None
        if pw is not None and not self.user["changed"]:
            self.unit = quadlet.converge(check, self.unit_params)
            return
        # The user (or its manager) is not there yet: the unit can only be checked on its own.
        unit_dir = quadlet.unit_directory(pw) if pw else os.path.join(self.user_spec["home"], quadlet.USER_UNIT_SUBDIR)
        path = os.path.join(unit_dir, "%s.container" % self.name)
        error, warnings = quadlet.validate_dryrun(check, unit_dir,
                                                  {"%s.container" % self.name: self.content}, self.name)
        for warning in warnings:
            self.host.warn("quadlet: %s" % warning)
        if error:
            raise ValidationError("%s: the Quadlet generator rejects the unit, nothing was changed: %s" % (path, error))
        unit_file = ManagedFile(path, self.content)
        self.unit = dict(changed=True, path=path, service="%s.service" % self.name, scope="user",
                         content=self.content, active_state="active",
                         diff=[unit_file.diff()] if unit_file.content_changed else [])

    @property
    def env_changed(self):
        return bool(self.env and self.env.changed)

    @property
    def changed(self):
        return bool(self.user["changed"] or self.unit["changed"] or self.env_changed or self.missing_dirs
                    or (self.site and self.site.changed))

    # -- apply ----------------------------------------------------------------
    def apply(self):
        if self.user["changed"] or self.unit["changed"] or self.env_changed or self.missing_dirs:
            try:
                self.user = ServiceUser(self.host, dict(self.user_spec)).converge()
            except SelfhostError:
                self.user_ok = False
                raise
            params = self.unit_params
            if self.env_changed:
                self.write_env()
                if self.env.content_changed and self.env.before is not None:  # a running container sees new values only after a restart
                    params = dict(params, state="restarted")
            self.make_bind_dirs()
            if self.digest:
                self.load_image()
            self.unit = quadlet.converge(self.host, params)

    def write_env(self):
        uid = self.user["uid"]
        try:
            ensure_directory(os.path.dirname(self.env.path), 0o700, uid, uid)
            self.env.apply()
        except OSError as exc:
            raise UnsafePathError("cannot write %s: %s" % (self.env.path, exc), field="secret_environment")

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

    def load_image(self):
        """Load the archive when the image is missing or the archive is not the one the unit records."""
        before = read_text(self.unit["path"]) or ""
        recorded = "%s=%s" % (service_spec.ARCHIVE_LABEL, self.digest) in before
        if recorded and self.podman("image", "exists", self.spec["image"])[0] == 0:
            return
        rc, out, err = self.podman("load", "-q", "-i", self.spec["image_archive"])
        if rc != 0:
            raise CommandError("podman load -i %s failed (rc=%d): %s"
                               % (self.spec["image_archive"], rc, (err or out).strip()), field="image_archive")
        self.image_loaded = True

    def result(self):
        strip = ("diff", "content")
        return dict(
            name=self.name, changed=self.changed, image_loaded=self.image_loaded,
            user=dict((k, v) for k, v in (self.user or {}).items() if k not in strip),
            unit=dict((k, v) for k, v in (self.unit or {}).items() if k not in strip),
            site=self.site.path if self.site else None, error=self.error,
            env_file=self.env.path if self.env else None,
        )

    def diffs(self):
        out = []
        if self.user and self.user["changed"]:
            out.append(self.user["diff"])
        for path in self.missing_dirs:
            out.append({"before_header": path, "after_header": path, "before": "",
                        "after": "directory (bind mount source), 0750, owned by %s\n" % self.name})
        if self.env_changed:  # never the values
            out.append({"before_header": self.env.path, "after_header": self.env.path,
                        "before": "(secret environment)\n" if self.env.before is not None else "",
                        "after": "(secret environment, %d variables, changed)\n" % len(self.spec["secret_environment"])})
        if self.unit:
            out.extend(self.unit.get("diff") or [])
        if self.site and self.site.changed:
            out.extend(self.site.diff())
        return out


def converge(host, params, diff=False):
    """Plan and apply ``params['services']``; return (result, failures).

    Raises ValidationError, naming every service and field at fault, when the
    plan refuses anything: then nothing was changed.
    """
    specs = params["services"]
    errors = service_spec.conflicts(specs, var="services")
    services = []
    for index, spec in enumerate(specs):
        field = "services[%d]" % index
        try:
            services.append(Service(host, params, index, spec))
        except (ValueError, SelfhostError) as exc:
            errors.append("%s.%s" % (field, exc))
    if not errors:
        for svc in services:
            try:
                svc.plan()
            except SelfhostError as exc:
                errors.append("%s (%s): %s" % (svc.field, svc.name, exc))
    if errors:
        raise ValidationError("nothing was changed: %s" % "; ".join(errors), errors=errors)

    failures = []
    reloaded = False
    if not host.check_mode:
        for svc in services:
            try:
                svc.apply()
            except SelfhostError as exc:
                svc.error = str(exc)
                failures.append("%s (%s): %s" % (svc.field, svc.name, exc))
            except (OSError, IOError) as exc:  # e.g. a full SD card: say so, and go on with the others
                svc.error = "%s: %s" % (type(exc).__name__, exc)
                failures.append("%s (%s): %s" % (svc.field, svc.name, svc.error))
        sites = [svc.site for svc in services if svc.site and svc.site.changed and svc.user_ok]
        if sites:
            try:
                reloaded = nginx.apply_sites(host, sites)["reloaded"]
            except SelfhostError as exc:
                failures.append("nginx: %s" % exc)
    result = dict(
        changed=any(svc.changed for svc in services),
        services=[svc.result() for svc in services],
        nginx_reloaded=reloaded,
    )
    if diff:
        result["diff"] = [entry for svc in services for entry in svc.diffs()]
    return result, failures
