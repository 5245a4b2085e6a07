# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificates this collection made, and removing those no longer declared.

The record (a small JSON file the tls role owns, ``TLS_STATE``) lists
certbot lineages and internal certificates by name. A name gets recorded
only while it is declared and on the host with this collection's marks:
for ACME a renewal configuration that uses the collection's webroot or its
RFC 2136 credentials file, for internal the directory ``INTERNAL_TLS_DIR/NAME``
holding ``fullchain.pem``. A name recorded but no longer declared is
removed: ``certbot delete --cert-name NAME`` for ACME, the directory's two
files and the directory for internal. A certificate a person made with
certbot by hand is never recorded (undeclared, or not made the
collection's way), so never removed.

A certificate some nginx configuration still names (a site this run did
not rewrite, for example the blog's when only services.yml ran) is kept,
with a warning, and removed by a later run. Check mode does not look:
the sites a real run would rewrite first are not rewritten yet.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.selfhost.pi.plugins.module_utils import certbot
from ansible_collections.selfhost.pi.plugins.module_utils.constants import (
    INTERNAL_TLS_DIR, LETSENCRYPT_DIR, TLS_STATE)
from ansible_collections.selfhost.pi.plugins.module_utils.errors import HostStateError
from ansible_collections.selfhost.pi.plugins.module_utils.files import ManagedFile, read_text

NGINX_DIR = "/etc/nginx"
INTERNAL_FILES = ("fullchain.pem", "privkey.pem")


def read_state(path):
    """{"acme": [names], "internal": [names]} from the record (empty lists when absent)."""
    text = read_text(path)
    if text is None:
        return {"acme": [], "internal": []}
    try:
        data = json.loads(text)
        return {kind: sorted(set(str(n) for n in data.get(kind) or [])) for kind in ("acme", "internal")}
    except (ValueError, AttributeError, TypeError):
        raise HostStateError("%s: not the JSON this collection writes; fix or remove it" % path)


def acme_marked(name, params, base=None):
    """Whether lineage NAME exists and was made the collection's way (its webroot or its DNS credentials)."""
    conf = certbot.renewal_conf(name, base)
    if not conf:
        return False
    webroots = [p.strip() for p in conf.get("webroot_path", "").split(",") if p.strip()]
    return bool((params.get("webroot") and params["webroot"] in webroots)
                or (params.get("dns_credentials") and conf.get("dns_rfc2136_credentials") == params["dns_credentials"]))


def nginx_references(path, nginx_dir=None):
    """The nginx configuration files (sites-enabled, conf.d) that name ``path``."""
    found = []
    for sub in ("sites-enabled", "conf.d"):
        directory = os.path.join(nginx_dir or NGINX_DIR, sub)
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for entry in names:
            conf = os.path.join(directory, entry)
            if entry.startswith(".") or not os.path.isfile(conf):
                continue
            text = read_text(conf) or ""
            if path in text:
                found.append(conf)
    return found


def _internal_removable(directory):
    """Whether the directory holds nothing but the two files the tls role writes there."""
    try:
        return set(os.listdir(directory)) <= set(INTERNAL_FILES) and not os.path.islink(directory)
    except OSError:
        return False


def prune(host, params, letsencrypt=None, internal_dir=None, nginx_dir=None):
    """Record the declared certificates, remove the recorded ones no longer declared.

    ``params``: ``certificates`` (declared lineages, dicts with ``name``),
    ``internal_certificates`` (declared internal names), ``state_file``,
    ``webroot``, ``dns_credentials``. Returns a result dict (changed,
    removed, kept, diff). Raises HostStateError or CommandError.
    """
    letsencrypt = letsencrypt or LETSENCRYPT_DIR
    internal_dir = internal_dir or INTERNAL_TLS_DIR
    state_file = params.get("state_file") or TLS_STATE
    before = read_state(state_file)
    wanted = {"acme": sorted(set(c["name"] for c in params.get("certificates") or [])),
              "internal": sorted(set(params.get("internal_certificates") or []))}
    after = {"acme": [], "internal": []}
    removals, kept = [], []
    for name in before["acme"]:
        if name in wanted["acme"]:
            continue
        if not certbot.renewal_conf(name, letsencrypt):
            continue  # gone already (deleted by hand)
        users = [] if host.check_mode else nginx_references(os.path.join(letsencrypt, "live", name) + "/", nginx_dir)
        if users:
            kept.append(name)
            after["acme"].append(name)
            host.warn("certificate %s is no longer declared but %s still names it; kept until a run that"
                      " rewrote that site" % (name, ", ".join(users)))
            continue
        removals.append(("acme", name, os.path.join(letsencrypt, "live", name, "fullchain.pem")))
    for name in before["internal"]:
        if name in wanted["internal"]:
            continue
        directory = os.path.join(internal_dir, name)
        if not os.path.lexists(directory):
            continue
        users = [] if host.check_mode else nginx_references(directory + "/", nginx_dir)
        if users or not _internal_removable(directory):
            kept.append(name)
            after["internal"].append(name)
            host.warn("certificate %s is no longer declared but %s; kept" % (
                name, "%s still names it" % ", ".join(users) if users
                else "%s holds files the tls role did not write" % directory))
            continue
        removals.append(("internal", name, os.path.join(directory, "fullchain.pem")))
    # Declared ones that exist the collection's way join the record.
    for name in wanted["acme"]:
        if name in before["acme"] or acme_marked(name, params, letsencrypt):
            if certbot.renewal_conf(name, letsencrypt):
                after["acme"].append(name)
    for name in wanted["internal"]:
        if os.path.isfile(os.path.join(internal_dir, name, "fullchain.pem")):
            after["internal"].append(name)
    after = {kind: sorted(set(names)) for kind, names in after.items()}

    diff = [dict(before_header=path, after_header="%s (absent)" % path,
                 before="%s certificate %s\n" % (kind, name), after="") for kind, name, path in removals]
    record = ManagedFile(state_file, json.dumps(after, indent=2, sort_keys=True) + "\n", mode=0o644)
    record_changed = record.changed and (after != before or read_text(state_file) is not None)
    if not host.check_mode:
        certbot_bin = host.which("certbot", required=any(r[0] == "acme" for r in removals))
        for kind, name, _path in removals:
            if kind == "acme":
                host.run([certbot_bin, "delete", "--non-interactive", "--cert-name", name],
                         what="certbot delete --cert-name %s" % name)
            else:
                directory = os.path.join(internal_dir, name)
                for entry in INTERNAL_FILES:
                    try:
                        os.unlink(os.path.join(directory, entry))
                    except FileNotFoundError:
                        pass
                os.rmdir(directory)
        if record_changed:
            parent = os.path.dirname(state_file)
            if not os.path.isdir(parent):
                os.makedirs(parent, mode=0o755)
            record.apply()
    return dict(changed=bool(removals) or record_changed, removed=[dict(kind=r[0], name=r[1]) for r in removals],
                kept=sorted(kept), recorded=after, diff=diff)
