#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: services
short_description: Converge rootless services (user, Quadlet unit, nginx site) in one call
version_added: 0.1.0
author: selfhost.pi maintainers (@selfhost)
description:
  - Converges a list of declarative service specs. For each service it makes the service's system user with a pinned
    UID/GID, subordinate IDs and linger (as M(selfhost.pi.service_user)), loads its image from an archive on the host
    when one is given and the image is missing or replaced, installs and starts a rootless Quadlet C(.container) unit
    under that user (as M(selfhost.pi.quadlet)), and writes an nginx reverse-proxy site for its C(domain)
    (as M(selfhost.pi.nginx_site)).
  - The same code as those modules does the work; this module exists for speed. A converge where nothing changed
    costs one module run for all services instead of three or more per service, and nginx is tested and reloaded
    once for all changed sites.
  - "Everything is checked before the host changes: every spec's fields, clashes between specs (duplicate C(name),
    C(uid), published host port or C(domain)), clashes with the host (a UID or subordinate ID range that another user
    owns), every changed unit with the Quadlet generator's dry run, every site's options. A failure names the field,
    for example C(services[1].uid)."
  - After that, each service is converged on its own; if one fails (for example its container does not start), the
    others are still converged and the module fails at the end, naming the services that failed.
  - Removing services that left the list is not done yet; use M(selfhost.pi.quadlet), M(selfhost.pi.nginx_site) and
    M(selfhost.pi.service_user) with C(state=absent).
options:
  services:
    description: The services. Names, UIDs, published host ports and domains must be unique.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Service name. It names the user and group, the unit C(~NAME/.config/containers/systemd/NAME.container)
            (generated service C(NAME.service)), the container (Quadlet C(ContainerName=)) and the nginx site.
        type: str
        required: true
      uid:
        description:
          - Pinned UID, also the GID, so restored files keep their owner on a rebuilt host. Its subordinate UID/GID
            range starts at C(uid * 65536) (65536 IDs). 1000..65533 (lower UIDs are system accounts, refused).
        type: int
        required: true
      image:
        description: Image reference, Quadlet C(Image=) (podman-systemd.unit(5)).
        type: str
        required: true
      image_archive:
        description:
          - Path on the host of an image archive (C(podman save) format) holding O(services[].image), for hosts that
            reach no registry. It is loaded into the user's image store when the image is missing or the archive's
            SHA-256 changed. The digest is kept as the container label C(selfhost.pi.image-archive), so a new archive
            changes the unit and restarts the service.
        type: path
      exec:
        description: Command and arguments of the container. Quadlet C(Exec=).
        type: str
      publish_ports:
        description:
          - Ports to publish, C(IP:HOSTPORT:CONTAINERPORT[/PROTO]) (C([IPv6]:...) for IPv6). Quadlet C(PublishPort=),
            one key each. The IP is required - C(127.0.0.1) for a port nginx proxies to; C(0.0.0.0) or C([::]) only
            to expose a port on every interface on purpose, bypassing nginx. Ports are 1..65535, without leading
            zeros; ranges (C(8000-8010)) may not overlap another service's.
        type: list
        elements: str
        default: []
      volumes:
        description:
          - Volumes and bind mounts, C(SOURCE:DEST[:OPTIONS]). Quadlet C(Volume=), one key each.
          - A bind mount source inside the service's home (C(%h/data) or C(/home/NAME/data)) that does not exist is
            made, mode C(0750), owned by the service user (podman refuses a missing source). An existing one is left
            as it is.
        type: list
        elements: str
        default: []
      environment:
        description: Environment variables. Quadlet C(Environment=), one key per variable.
        type: dict
        default: {}
      secret_environment:
        description:
          - Environment variables whose values are secret (for example from Ansible Vault). They are written to
            C(~NAME/.config/selfhost-pi/NAME.env), mode C(0600), owned by the service user, passed with Quadlet
            C(EnvironmentFile=), and never shown in logs or C(--diff) output (the option is C(no_log)).
          - A change of a value restarts the running service.
        type: dict
        default: {}
      health:
        description: Container health check (Quadlet C(HealthCmd=) and its companions).
        type: dict
        suboptions:
          cmd:
            description: Command run in the container. Quadlet C(HealthCmd=).
            type: str
            required: true
          interval:
            description: Time between checks, a systemd time span such as C(30s). Quadlet C(HealthInterval=).
            type: str
            default: 30s
          timeout:
            description: Time one check may take. Quadlet C(HealthTimeout=).
            type: str
            default: 5s
          retries:
            description: Consecutive failures before the container is unhealthy. Quadlet C(HealthRetries=).
            type: int
            default: 3
          start_period:
            description: Grace period after the start. Quadlet C(HealthStartPeriod=).
            type: str
            default: 0s
      auto_update:
        description:
          - Let C(podman auto-update) replace the image. Maps to Quadlet C(AutoUpdate=) (podman-systemd.unit(5),
            podman-auto-update(1)) - V(registry) pulls the reference again (it must be fully qualified), V(local)
            uses a newer local image of that name.
          - With O(services[].health) the unit also gets C(Notify=healthy) and C(HealthOnFailure=kill), so a restart
            only succeeds once the new container is healthy and C(podman auto-update) rolls a failing image back
            (its C(--rollback), on by default). Runs go through the C(selfhost.pi.service) role's update runner,
            which honours O(services[].update_window); this module only writes the Quadlet keys.
        type: str
        choices: [registry, local]
      update_window:
        description:
          - Maintenance window of the updates, host local time. C(allow) and/or C(deny), lists of
            C([DAYS ]HH:MM-HH:MM) entries, for example C(deny) V(06:00-07:30) or C(allow) V(Sun 03:00-05:00);
            DAYS are C(Mon)..C(Sun), comma lists or ranges (C(Mon-Fri)); C(24:00) ends the day; an end before the
            start runs past midnight. An update runs inside an C(allow) entry (any time when there is none) and
            outside every C(deny) entry. Needs O(services[].auto_update); a malformed entry fails naming
            C(update_window.allow[i]).
        type: dict
      update_webhook_secret:
        description:
          - HMAC-SHA256 secret of the service's update hook (C(selfhost.pi.webhook) role, hook id C(update-NAME)).
            Not used by this module beyond validation; keep it in Ansible Vault. Needs O(services[].auto_update).
        type: str
      domain:
        description: Host name of the service's nginx site (nginx C(server_name)). Without it, no site is written.
        type: str
      tls:
        description:
          - HTTPS of the site (see the C(selfhost.pi.tls) role); V(acme) and V(acme-dns) use certbot's
            C(/etc/letsencrypt/live/DOMAIN/fullchain.pem) and C(privkey.pem), V(internal) the host CA's
            C(/etc/selfhost-pi/tls/DOMAIN/), V(off) plain HTTP. Default O(tls_default).
          - Maps to nginx C(ssl_certificate) and C(ssl_certificate_key) in a server on O(https_listen), HTTP redirected
            (C(return 301)) except the ACME challenge path, and C(Strict-Transport-Security) (O(hsts_max_age)).
          - While the certificate's files do not exist (not issued yet) the site is written on HTTP only, with a
            warning; nginx never refers to a missing certificate.
          - One of V(acme), V(acme-dns), V(internal), V(off) (an unquoted YAML C(off), read as false, means V(off)).
        type: raw
      client_max_body_size:
        description: Largest request body of the site, nginx C(client_max_body_size) (C(10m) when unset; V(0) = no limit).
        type: str
      basic_auth:
        description:
          - htpasswd content (C(user:hash) lines, hashed with bcrypt C($2y$), C($y$), C($5$), C($6$), C($apr1$) or
            C({SSHA})) that every request to the site must match. The site gets nginx C(auth_basic "Restricted") and
            C(auth_basic_user_file /etc/nginx/selfhost-htpasswd/NAME); this module does not write that file (the
            C(selfhost.pi.service) role does, 0640 root:www-data). Never logged.
        type: str
      upstream:
        description:
          - URL nginx proxies to (nginx C(proxy_pass)). Default C(http://127.0.0.1:PORT), PORT being the host port of
            the first TCP entry of O(services[].publish_ports). nginx variables (C($)) are refused, since an upstream
            taken from a request would make the site an open proxy.
        type: str
      container_options:
        description: More C([Container]) keys by their Quadlet names; lists repeat the key, dicts give C(KEY=k=v).
        type: dict
        default: {}
      service_options:
        description: More C([Service]) keys (systemd.service(5)), merged over O(default_service_options).
        type: dict
        default: {}
      data:
        description:
          - The service's data, saved by the C(selfhost.pi.backup) role with restic and brought back by
            M(selfhost.pi.restic_restore) on a rebuilt host. This module only checks it.
        type: dict
        suboptions:
          paths:
            description: Files and directories, absolute or relative to C(/home/NAME) (for example a bind-mounted
              C(data) directory, Quadlet C(Volume=%h/data:/data)).
            type: list
            elements: str
            default: []
          volumes:
            description: Named podman volumes of the service user (Quadlet C(Volume=NAME:/path)), saved from their
              mount point C(/home/NAME/.local/share/containers/storage/volumes/NAME/_data).
            type: list
            elements: str
            default: []
          sqlite:
            description: SQLite database files, absolute, relative to C(/home/NAME), or C(VOLUME:PATH) inside a named
              volume. Saved as a consistent copy taken
              with SQLite's online backup API (never the live file), restored in place of the file.
            type: list
            elements: str
            default: []
          pre_backup:
            description: Shell commands run as the service user in its home before each backup (for example the
              service's own dump command, writing into one of O(services[].data.paths)). A failing command fails
              that service's backup.
            type: list
            elements: str
            default: []
  default_service_options:
    description: C([Service]) keys every service gets. C(TimeoutStartSec) is in seconds and covers a first image pull.
    type: dict
    default: {Restart: always, TimeoutStartSec: 300}
  nginx_listen:
    description: nginx C(listen) values of the services' sites.
    type: list
    elements: str
    default: ["80", "[::]:80"]
  manager_timeout:
    description: Seconds to wait for a user's systemd manager after linger is enabled.
    type: int
    default: 30
  tls_default:
    description: The O(services[].tls) of a service that sets none.
    type: str
    default: "off"
    choices: [acme, acme-dns, internal, "off"]
  https_listen:
    description: nginx C(listen) values of the services' HTTPS servers.
    type: list
    elements: str
    default: ["443 ssl", "[::]:443 ssl"]
  hsts_max_age:
    description: C(Strict-Transport-Security) max-age in seconds of the HTTPS sites (nginx C(add_header)); V(0) sends none.
    type: int
    default: 31536000
  hsts_preload:
    description: Add C(includeSubDomains; preload) to the HSTS header.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description:
      - Runs every check of the plan (users, the Quadlet dry run, nginx sites) and reports what would change; changes
        nothing on the host.
  diff_mode:
    support: full
    description: Shows each changed user, unit file, service state and nginx site before and after.
  platform:
    support: full
    platforms: [debian]
    description: Debian 13 "trixie" or newer, and Raspberry Pi OS built on it.
notes:
  - Needs Debian 13 or newer (podman with Quadlet, systemd 257), C(libpam-systemd), C(dbus-user-session), C(uidmap),
    C(passt) and nginx in Debian's C(sites-available)/C(sites-enabled) layout.
  - Fails before any change with a message naming the field for bad input; fails after converging the other services
    when a service's user, image, unit or site cannot be converged; an invalid unit never replaces a working one and a
    site that fails C(nginx -t) is rolled back while nginx keeps serving.
seealso:
  - module: selfhost.pi.service_user
  - module: selfhost.pi.quadlet
  - module: selfhost.pi.nginx_site
"""

EXAMPLES = r"""
- name: Two rootless services behind nginx
  selfhost.pi.services:
    services:
      - name: datasette
        uid: 2101
        image: ghcr.io/simonw/datasette:1.0
        exec: datasette serve /data --host 0.0.0.0 --port 8001
        publish_ports: ["127.0.0.1:8001:8001"]
        volumes: ["%h/data:/data:Z"]
        health:
          cmd: curl -fsS http://127.0.0.1:8001/-/versions.json
        domain: data.example.org
      - name: hello
        uid: 2102
        image: localhost/hello:1
        image_archive: /var/lib/selfhost-pi/images/hello.tar
        publish_ports: ["127.0.0.1:8081:8080"]
        domain: hello.example.org
"""

RETURN = r"""
services:
  description: One result per service, in the order given.
  type: list
  elements: dict
  returned: always
  contains:
    name:
      description: Service name.
      type: str
    changed:
      description: Whether anything of this service changed.
      type: bool
    user:
      description: The M(selfhost.pi.service_user) result (uid, gid, home, runtime_dir, subid_start, ...).
      type: dict
    unit:
      description: The M(selfhost.pi.quadlet) result (path, service, active_state, ...).
      type: dict
    image_loaded:
      description: Whether the image archive was loaded into the user's image store.
      type: bool
    site:
      description: Path of the nginx site file, or null without a domain.
      type: str
    env_file:
      description: Path of the secret environment file, or null without O(services[].secret_environment).
      type: str
    error:
      description: Why this service failed, when it did.
      type: str
  sample:
    - name: hello
      changed: false
      user: {uid: 2102, gid: 2102, home: /home/hello, runtime_dir: /run/user/2102}
      unit: {path: /home/hello/.config/containers/systemd/hello.container, service: hello.service,
             active_state: active}
      image_loaded: false
      site: /etc/nginx/sites-available/hello.conf
nginx_reloaded:
  description: Whether nginx was reloaded.
  type: bool
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.pi.plugins.module_utils import service_spec
from ansible_collections.selfhost.pi.plugins.module_utils.constants import HSTS_MAX_AGE, HTTPS_LISTEN, NGINX_LISTEN, TLS_MODES
from ansible_collections.selfhost.pi.plugins.module_utils.errors import SelfhostError, fail_module
from ansible_collections.selfhost.pi.plugins.module_utils.host import ModuleHost
from ansible_collections.selfhost.pi.plugins.module_utils.service_set import converge


def main():
    module = AnsibleModule(
        argument_spec=dict(
            services=dict(type="list", elements="dict", required=True, options=service_spec.SPEC_OPTIONS),
            default_service_options=dict(type="dict", default={"Restart": "always", "TimeoutStartSec": 300}),
            nginx_listen=dict(type="list", elements="str", default=list(NGINX_LISTEN)),
            manager_timeout=dict(type="int", default=30),
            tls_default=dict(type="str", default="off", choices=list(TLS_MODES)),
            https_listen=dict(type="list", elements="str", default=list(HTTPS_LISTEN)),
            hsts_max_age=dict(type="int", default=HSTS_MAX_AGE),
            hsts_preload=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    try:
        result, failures = converge(ModuleHost(module), module.params, diff=module._diff)
    except SelfhostError as exc:
        fail_module(module, exc)
    if failures:
        module.fail_json(msg="; ".join(failures), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
