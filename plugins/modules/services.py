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
  - A service is one container, or a pod of several (O(services[].containers)), plus its scheduled
    O(services[].jobs). All units of one service are validated together in one Quadlet dry run, written, and loaded
    with one C(daemon-reload) of its user's manager. Units the service no longer declares (a job or a member taken out
    of its spec, C(NAME.container) when it became a pod, or the pod's units when it became one container) are stopped
    and removed - only files named like the service's units that carry this collection's header.
  - "Every converge keeps a record of what it manages, O(record) (default C(/var/lib/selfhost-pi/managed.json), root,
    0600, written atomically): each service's UID, home, unit files, nginx site and data, and the retired services'
    UIDs. On a host converged before the record existed, the first converge only writes it (the declared services
    are adopted); a service that is not in the record is never removed."
  - "A recorded service the list no longer declares is removed (O(prune)): a last restic snapshot of its data
    (O(final_snapshot)), its units stopped and removed (only files named like its units that carry this collection's
    header), its nginx site removed (only a file that carries the header, linked from C(sites-enabled); nginx tested
    and reloaded once with the other sites), linger turned off. Its home and volumes stay in place and a warning
    (and RV(removed[].msg)) says where; the account goes only with O(prune_users), the home only with O(prune_data).
    A failing snapshot leaves the service as it was and fails the module at the end."
  - "A removed service's UID stays retired in the record: a service of another name declaring it is refused before
    the host changes, naming the field (C(services[2].uid)); the same name coming back gets its UID, home and data
    again. The system units the C(selfhost.pi.service) role adds beside the service (update runner, webhook hook)
    are not this module's."
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
        description:
          - Image reference, Quadlet C(Image=) (podman-systemd.unit(5)). Required unless the service is a pod
            (O(services[].containers)); the two exclude each other.
        type: str
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
      containers:
        description:
          - A pod instead of one container. The service becomes the Quadlet unit C(~NAME/.config/containers/systemd/NAME.pod)
            with C(PodName=NAME) and C(ServiceName=NAME) (so its service is C(NAME.service), as for one container),
            O(services[].publish_ports) as its C(PublishPort=), O(services[].volumes) as its C(Volume=) (shared by every
            container of the pod), C(PodmanArgs=--exit-policy=continue) (with Quadlet's C(stop), a member restarted
            while it is the only one running would stop the pod) and O(services[].pod_options); and one
            C(NAME-MEMBER.container) per entry, with C(Pod=NAME.pod), C(ContainerName=NAME-MEMBER) and no port of its
            own. The members share one network namespace (they reach each other on 127.0.0.1).
          - Quadlet binds each member's service C(NAME-MEMBER.service) to the pod's (C(BindsTo=), C(After=)) and the
            pod's service wants them. C(NAME.service) is active once the pod runs; this module starts each member
            after it and reports each one's state (RV(services[].units)).
          - O(services[].environment) and O(services[].secret_environment) are given to every member, under its own.
            O(services[].image), O(services[].image_archive), O(services[].exec), O(services[].health),
            O(services[].container_options) and O(services[].auto_update) belong to each member instead, and are
            refused at the service level.
        type: list
        elements: dict
        suboptions:
          name:
            description: Member name, unique in the pod and not C(infra) (podman's C(NAME-infra) container).
            type: str
            required: true
          image:
            description: Image reference. Quadlet C(Image=).
            type: str
            required: true
          image_archive:
            description: Image archive on the host holding O(services[].containers[].image), loaded as for one
              container (label C(selfhost.pi.image-archive) on this member).
            type: path
          exec:
            description: Command and arguments. Quadlet C(Exec=).
            type: str
          environment:
            description: Environment variables, over the service's. Quadlet C(Environment=).
            type: dict
            default: {}
          secret_environment:
            description: Secret variables, written to C(~NAME/.config/selfhost-pi/NAME-MEMBER.env) (0600) and passed
              with Quadlet C(EnvironmentFile=) after the service's file. A change restarts this member.
            type: dict
            default: {}
          volumes:
            description: This member's own volumes and bind mounts. Quadlet C(Volume=).
            type: list
            elements: str
            default: []
          health:
            description:
              - Health check, as O(services[].health) (Quadlet C(HealthCmd=) and its companions). A member that another
                one requires also gets C(Notify=healthy), so its service is active only once it is healthy and the
                other starts after that.
            type: dict
            suboptions:
              cmd:
                description: Command run in the container. Quadlet C(HealthCmd=).
                type: str
                required: true
              interval:
                description: Time between checks. Quadlet C(HealthInterval=).
                type: str
                default: 30s
              timeout:
                description: Time one check may take. Quadlet C(HealthTimeout=).
                type: str
                default: 5s
              retries:
                description: Failures before unhealthy. Quadlet C(HealthRetries=).
                type: int
                default: 3
              start_period:
                description: Grace period after the start. Quadlet C(HealthStartPeriod=).
                type: str
                default: 0s
          auto_update:
            description:
              - Quadlet C(AutoUpdate=) of this member (as O(services[].auto_update)). podman 5.4 restarts the pod's
                unit C(NAME.service) for a new image of any member, which restarts every member. podman rolls back
                only when that restart fails, and the pod's service is active once the pod runs; the
                C(selfhost.pi.service) role's update runner then waits for every member and puts the previous images
                back when one does not come up (README, "Pods and jobs").
            type: str
            choices: [registry, local]
          requires:
            description: Members this one waits for; C(After=) and C(Requires=) on their C(NAME-OTHER.service). No
              cycles.
            type: list
            elements: str
            default: []
          publish_ports:
            description: Refused, naming the field - the pod publishes the ports of all its members
              (O(services[].publish_ports)).
            type: list
            elements: str
            default: []
          container_options:
            description: More C([Container]) keys of this member, by their Quadlet names.
            type: dict
            default: {}
          service_options:
            description: More C([Service]) keys of this member, over O(services[].service_options).
            type: dict
            default: {}
      pod_options:
        description: More C([Pod]) keys of a pod, by their Quadlet names (only podman 5.4's .pod keys exist on Debian 13).
        type: dict
        default: {}
      jobs:
        description:
          - Scheduled jobs. Each is the rootless Quadlet unit C(NAME-job-JOB.container) with C([Service] Type=oneshot)
            (never C(RemainAfterExit=), so the next elapse starts it again) and the plain user unit
            C(~NAME/.config/systemd/user/NAME-job-JOB.timer), enabled by its link in C(timers.target.wants) and
            started. The timer starts the job; this module never does.
          - A run never overlaps the previous one (systemd does not start a oneshot service again while it runs). A
            failed run leaves C(NAME-job-JOB.service) failed (C(systemctl --user -M NAME@ --failed), its output in the
            journal) and the next elapse runs it again; the service itself is not touched.
          - The job runs the service's image (for a pod, its first member's), with the service's O(services[].volumes),
            O(services[].environment) and secret environment file. A job of a pod joins the pod (C(Pod=NAME.pod),
            C(StartWithPod=false)), so it reaches the members on 127.0.0.1 and sees the pod's volumes.
        type: list
        elements: dict
        default: []
        suboptions:
          name:
            description: Job name, unique in the service; its units must not clash with a member's (C(job-X)).
            type: str
            required: true
          schedule:
            description: When it runs, C([Timer] OnCalendar=) (systemd.time(7), for example C(daily) or
              C(Mon..Fri *-*-* 03:00)); parsed with C(systemd-analyze calendar) on the host before anything changes.
              The timer has C(AccuracySec=1s).
            type: str
            required: true
          exec:
            description: Command and arguments. Quadlet C(Exec=).
            type: str
            required: true
          image:
            description: Image reference (Quadlet C(Image=)); default the service's, or the pod's first member's.
            type: str
          volumes:
            description: Volumes (Quadlet C(Volume=)); default the service's (a pod's job has the pod's already).
            type: list
            elements: str
          environment:
            description: Environment variables, over the service's (Quadlet C(Environment=)).
            type: dict
            default: {}
          timeout:
            description:
              - Longest run, a systemd time span (C(30min)); C([Service] TimeoutStartSec=). A oneshot service runs in its
                start phase, where C(RuntimeMaxSec=) does not apply. A run past it is stopped (SIGTERM, then SIGKILL
                after C(TimeoutStopSec=15)) and failed. Parsed with C(systemd-analyze timespan) before any change.
            type: str
          randomized_delay:
            description: Random delay before each run, a systemd time span. C([Timer] RandomizedDelaySec=).
            type: str
          persistent:
            description: Run at boot when a run was missed while the host was off. C([Timer] Persistent=).
            type: bool
            default: false
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
  prune:
    description:
      - Remove the services O(record) names that O(services) no longer declares (see the description). With V(false)
        they are left as they are (a warning names them) and stay in the record.
    type: bool
    default: true
  prune_users:
    description:
      - Also remove a removed service's account (C(userdel), its own group, its subordinate ID ranges; as
        M(selfhost.pi.service_user) C(state=absent)). Its home stays, owned by the retired UID, which no other
        service may take.
    type: bool
    default: false
  prune_data:
    description:
      - Names of removed services whose home (with their podman volumes) is deleted too, with the account. Only a
        service that O(services) no longer declares; a declared name is refused (C(prune_data[i])). Data declared
        outside the home (O(services[].data.paths)) is never deleted.
    type: list
    elements: str
    default: []
  final_snapshot:
    description:
      - The last snapshot of a removed service, before its units stop. V(auto) runs C(selfhost-backup --final NAME)
        (installed by the C(selfhost.pi.backup) role) when the backups are configured (C(/etc/selfhost-pi/backup.json)
        exists), and nothing otherwise; V(true) the same but fails when backups are not configured; V(false) none.
        Any other string is a command (split as a shell does; no shell runs it), run as root with NAME appended.
      - The command gets the service's data entry from the record on standard input (JSON - name, uid, home, paths,
        sqlite, pre_backup). C(selfhost-backup --final) backs it up as a nightly backup does, tagged C(selfhost-pi),
        C(service:NAME) and C(final) (the home, without podman's image store, when the service declared no data).
    type: raw
    default: auto
  record:
    description: Path of the record of what this module manages (JSON, see the description).
    type: path
    default: /var/lib/selfhost-pi/managed.json
attributes:
  check_mode:
    support: full
    description:
      - Runs every check of the plan (users, the Quadlet dry run, nginx sites) and reports what would change, the
        removals included (RV(removed), and a warning per removed service); changes nothing on the host.
  diff_mode:
    support: full
    description: Shows each changed user, unit file, service state and nginx site before and after, each removed
      unit, site, linger and account, where each removed service's data stays, and the record.
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

- name: A pod (an app and its database) with a nightly job
  selfhost.pi.services:
    services:
      - name: miniflux
        uid: 2103
        publish_ports: ["127.0.0.1:8082:8080"]   # the pod's
        secret_environment:                     # every member and the job (a 0600 file)
          POSTGRES_PASSWORD: "{{ vault_miniflux_db }}"
          PGPASSWORD: "{{ vault_miniflux_db }}"
        containers:
          - name: db
            image: docker.io/library/postgres:17
            volumes: ["miniflux-db:/var/lib/postgresql/data"]
            health: {cmd: "pg_isready -h 127.0.0.1 -U postgres"}
          - name: app
            image: docker.io/miniflux/miniflux:2.2
            requires: [db]                      # starts once db is healthy
            secret_environment:
              DATABASE_URL: "postgres://postgres:{{ vault_miniflux_db }}@127.0.0.1/postgres?sslmode=disable"
        jobs:
          - name: vacuum
            schedule: "*-*-* 04:00:00"
            image: docker.io/library/postgres:17
            exec: vacuumdb -h 127.0.0.1 -U postgres --all --analyze
            timeout: 30min
        domain: news.example.org
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
      description: The service's main unit (C(NAME.container), or C(NAME.pod)) - path, service, active_state, changed.
      type: dict
    units:
      description: Every unit of a pod or of a service with jobs, in the order converged (the main unit, the members,
        each job's C(.container) and C(.timer)) - fname, path, service, active_state, changed.
      type: list
      elements: dict
      returned: when the service has more than one unit
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
removed:
  description: One entry per recorded service that left the list and was removed (or would be, in check mode).
  type: list
  elements: dict
  returned: always
  contains:
    name:
      description: "Service name."
      type: str
    uid:
      description: "Its UID, now retired in the record."
      type: int
    units:
      description: "Unit files removed."
      type: list
      elements: str
    site:
      description: "nginx site file removed, or null."
      type: str
    site_kept:
      description: "Why its site was left in place (not this collection's file), or null."
      type: str
    linger_off:
      description: "Whether linger was turned off."
      type: bool
    user_removed:
      description: "Whether the account was removed (O(prune_users))."
      type: bool
    data_removed:
      description: "Whether its home was deleted (O(prune_data))."
      type: bool
    data_kept:
      description: "Where its data stays."
      type: list
      elements: str
    final_snapshot:
      description: "The command of the last snapshot, or null when none was taken."
      type: str
    msg:
      description: "What happened and where the data is (also a warning)."
      type: str
    error:
      description: "Why its removal failed, when it did."
      type: str
  sample:
    - name: notes
      uid: 2103
      units: [/home/notes/.config/containers/systemd/notes.container]
      site: /etc/nginx/sites-available/notes.conf
      linger_off: true
      user_removed: false
      data_removed: false
      data_kept: [/home/notes]
      final_snapshot: /usr/local/sbin/selfhost-backup --final notes
record:
  description: Path of the record.
  type: str
  returned: always
nginx_reloaded:
  description: Whether nginx was reloaded.
  type: bool
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.pi.plugins.module_utils import service_spec
from ansible_collections.selfhost.pi.plugins.module_utils.constants import (
    HSTS_MAX_AGE, HTTPS_LISTEN, MANAGED_RECORD, NGINX_LISTEN, TLS_MODES)
from ansible_collections.selfhost.pi.plugins.module_utils.errors import SelfhostError, fail_module
from ansible_collections.selfhost.pi.plugins.module_utils.host import ModuleHost
from ansible_collections.selfhost.pi.plugins.module_utils.service_set import converge


def main():
    module = AnsibleModule(
        argument_spec=dict(
            services=dict(type="list", elements="dict", required=True, options=service_spec.SPEC_OPTIONS,
                          required_one_of=[["image", "containers"]], mutually_exclusive=[["image", "containers"]]),
            default_service_options=dict(type="dict", default={"Restart": "always", "TimeoutStartSec": 300}),
            nginx_listen=dict(type="list", elements="str", default=list(NGINX_LISTEN)),
            manager_timeout=dict(type="int", default=30),
            tls_default=dict(type="str", default="off", choices=list(TLS_MODES)),
            https_listen=dict(type="list", elements="str", default=list(HTTPS_LISTEN)),
            hsts_max_age=dict(type="int", default=HSTS_MAX_AGE),
            hsts_preload=dict(type="bool", default=False),
            prune=dict(type="bool", default=True),
            prune_users=dict(type="bool", default=False),
            prune_data=dict(type="list", elements="str", default=[]),
            final_snapshot=dict(type="raw", default="auto"),
            record=dict(type="path", default=MANAGED_RECORD),
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
