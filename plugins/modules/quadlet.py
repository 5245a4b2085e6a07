#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: quadlet
short_description: Manage one Podman Quadlet unit file and the service it generates
version_added: 0.1.0
author:
  - selfhost.pi contributors (@selfhost)
description:
  - Writes one Quadlet unit file (C(.container), C(.pod), C(.volume), C(.network), C(.kube), C(.image), C(.build))
    for root (C(/etc/containers/systemd)) or for one user (rootless, C(~USER/.config/containers/systemd)),
    from structured options that use Quadlet's own key names (see podman-systemd.unit(5)).
  - The new file is checked with the Quadlet generator's dry run (C(/usr/libexec/podman/quadlet -dryrun [-user]))
    against a copy of the unit directory, so references such as C(Pod=web.pod) resolve, B(before) it is installed.
    An invalid unit is refused and the installed one, and its running service, stay untouched.
    A valid one is renamed into place atomically.
  - Then runs C(systemctl daemon-reload) in the unit's scope (only when the file changed) and brings the
    generated service to I(state). For a user's unit, root runs C(systemctl --user) as that user (C(runuser -u USER),
    C(XDG_RUNTIME_DIR=/run/user/UID)); a person does the same as root with C(systemctl --user -M USER@).
  - This is a custom module because C(ansible.builtin.template) + C(ansible.builtin.systemd_service) cannot
    validate a unit with the generator together with its sibling units, cannot reach a user's manager without
    C(become_user) and a login session, and cannot restart only when the unit changed in one idempotent step;
    C(containers.podman.podman_container) with C(generate_systemd)/quadlet output writes files but does not
    validate them, reload the right manager or manage the service.
  - A run that changes nothing reads the file, compares it and asks systemd once for the service's state
    (C(systemctl show --property=ActiveState,SubState), which unlike C(is-active) tells a crash-looping
    service, C(activating/auto-restart), from a running one; I(state=started) starts such a service).
options:
  name:
    description:
      - Base name of the unit; the file is C(NAME.TYPE), e.g. C(web) gives C(web.container).
      - Must match C(^[a-zA-Z0-9][a-zA-Z0-9_.@-]*$) and must not end in C(.TYPE).
    type: str
    required: true
  type:
    description:
      - The Quadlet unit type, i.e. the file's extension and the name of its own section
        (C([Container]), C([Pod]), ...). See podman-systemd.unit(5), podman-pod.unit(5) and friends.
    type: str
    default: container
    choices: [container, pod, volume, network, kube, image, build]
  user:
    description:
      - Owner of a rootless unit. The file goes to C(~USER/.config/containers/systemd), owned by the user
        (mode C(0644); directories created C(0755)), and the service runs in the user's systemd manager.
      - Unset for a system (rootful) unit in C(/etc/containers/systemd), owned by root.
      - The user must exist. For I(state=started), C(stopped) and C(restarted) its manager must run, which
        needs linger (C(loginctl enable-linger), done by C(selfhost.pi.service_user)).
    type: str
  unit:
    description:
      - The C([Unit]) section, e.g. C(Description), C(After), C(Requires). See systemd.unit(5).
      - Values are written as for I(service).
    type: dict
    default: {}
  options:
    description:
      - The type's own section (C([Container]), C([Pod]), C([Volume]), C([Network]), C([Kube]), C([Image]),
        C([Build])) with Quadlet's key names, e.g. C(Image), C(PublishPort), C(Volume), C(Environment),
        C(Pod), C(Network), C(ServiceName). See podman-systemd.unit(5).
      - Keys must match C(^[A-Za-z][A-Za-z0-9]*$) and are written in the order given.
      - "Values: a string, number or boolean (written C(true)/C(false)) gives one C(Key=value) line; a list
        repeats the key once per item, in order; a dictionary repeats the key as C(Key=name=value) per item
        (for C(Environment), C(Label), C(Annotation), C(Sysctl)). C(null) and empty lists leave the key out."
      - "Every value here is literal: Quadlet puts these keys on the podman command line of the service's
        C(ExecStart=), where systemd would resolve C(%) specifiers and expand C($VAR) and C(${VAR})
        (systemd.unit(5) Specifiers, systemd.service(5) Command lines), so the module writes C(%) as C(%%) and
        C($) as C($$) and podman gets the text as given: C(HealthCmd: date +%s) runs C(date +%s), and
        C(${HOME}) reaches the container unexpanded. Words of a command line (C(Exec), C(HealthCmd),
        C(PodmanArgs)) are split by Quadlet with systemd's quoting rules; quote them yourself."
      - "Specifiers are kept in the keys that name host paths or the unit's own resources: C(Volume), C(Mount),
        C(EnvironmentFile), C(Rootfs), C(Yaml), C(ConfigMap), C(File), C(AuthFile), C(CertDir),
        C(SeccompProfile), C(ContainersConfModule), C(Device), C(ContainerName), C(PodName), C(VolumeName),
        C(NetworkName), C(PodmanArgs) and C(GlobalArgs). There C(%h) is the user's home
        (C(Volume: '%h/data:/data:Z')), C(%%) a literal C(%), and a C(%) followed by a letter systemd does not
        resolve (C(%Q)) is refused, because systemd would drop the whole command; C($) is still written C($$)."
      - "A dictionary item is one word, quoted when it contains whitespace, quotes or backslashes (C(\\) and
        C(\\\") escaped), so its name and value reach podman exactly as given. C(Sysctl), C(LogOpt) and
        C(AutoUpdate) are read by Quadlet without unescaping: a backslash or a double quote is refused there."
      - "Refused, naming the field (e.g. C(options.Environment.FOO)), in every section: control characters
        (newline, tab, escape, ...) and a value ending with a backslash, even when spaces follow it (Quadlet
        strips each line and would join the next directive to it)."
    type: dict
    default: {}
  service:
    description:
      - The C([Service]) section, e.g. C(Restart), C(TimeoutStartSec). See systemd.service(5).
      - "Strings, numbers and list items are systemd syntax, written as given: Quadlet copies this section to the
        generated service, where specifiers (C(%h), C(%n)), variables in C(Exec*=) lines (C($MAINPID)) and
        percentages (C(CPUQuota=50%)) mean what systemd.unit(5) and systemd.service(5) say; write C(%%) and
        C($$) for the characters where systemd would expand them."
      - "A dictionary item is literal, quoted as one word as for I(options): C(%) is written C(%%), and in
        C(Exec*=) keys C($) is written C($$) (C(Environment=) expands no variables)."
      - Control characters and a value ending with a backslash are refused, as for I(options).
    type: dict
    default: {}
  install:
    description:
      - The C([Install]) section. C(WantedBy=default.target) (user) or C(multi-user.target) (system) is how
        a Quadlet service starts at boot; generated units cannot be C(systemctl enable)d. See systemd.unit(5).
      - Values are written as for I(service).
    type: dict
    default: {}
  state:
    description:
      - C(started) installs the file and makes sure the service is active; it is restarted when the file
        changed and I(restart_on_change) is true.
      - C(stopped) installs the file and makes sure the service is not running.
      - C(restarted) installs the file and always restarts the service.
      - C(present) only installs the file (and reloads systemd); the service state is left alone.
      - C(absent) stops the service, removes the file and reloads systemd.
    type: str
    default: started
    choices: [started, stopped, restarted, present, absent]
  restart_on_change:
    description:
      - With I(state=started), restart an active service when its unit file changed.
    type: bool
    default: true
  manager_timeout:
    description:
      - Seconds to wait for a user's systemd manager (its bus socket C(/run/user/UID/bus)) before failing.
      - Only used with I(user) and I(state=started), C(stopped) or C(restarted).
    type: int
    default: 30
attributes:
  check_mode:
    support: full
    description: Reports the file diff and the service change it would make; runs the dry-run validation
      (in a temporary directory) but changes nothing on the host.
  diff_mode:
    support: full
    description: Shows the unit file before and after, and the service's ActiveState change.
  platform:
    support: full
    platforms: [debian]
    description: Debian 13 (podman 5.4 with Quadlet, systemd 257); any systemd host with podman >= 4.4.
notes:
  - Needs podman >= 4.4 with Quadlet (Debian 13 has 5.4). On older hosts (Debian 12, podman 4.3) the module
    fails with C(Quadlet needs podman >= 4.4 (Debian 13); this host has ...).
  - >-
    Fails, changing nothing, when an option is malformed (the message names the field, e.g.
    C(options.PublishPort[1]: value contains a newline)), when I(user) does not exist, when the user's manager
    does not come up within I(manager_timeout) seconds (the message says to enable linger), when the unit
    directory is reached through a symbolic link (root does not follow links a service user can place), or when
    the generator rejects the unit (its message is returned, e.g. C(converting "web.container": unsupported key
    'Bogus' in group 'Container')).
  - Errors the dry run reports about other, unrelated units of the same directory are returned as warnings
    and do not block this unit; errors about a unit this one references (C(Pod=), C(Network=), C(Volume=)...)
    do.
  - When the service fails to start, the module fails with the last 20 journal lines of the service; the
    (valid) unit file stays installed and the message says so.
  - The dry run sees the units of the scope's own directory (C(/etc/containers/systemd) or
    C(~USER/.config/containers/systemd), with subdirectories and drop-ins), not those in C(/usr/share) or
    C(/etc/containers/systemd/users).
  - The dry run copies that directory as root without following links; only regular files owned by the
    directory's owner are copied (at most 1 MiB each, 1000 files and 16 MiB in all, 16 directories deep).
    Symbolic links, FIFOs, devices and other accounts' files are left out unread, with a warning naming them; a
    unit that references one of them may then fail the dry run.
  - With I(state=absent), a C(ServiceName=) in the installed file that is not a plain unit name is refused
    (the name goes on root's C(systemctl) command line).
  - C(systemctl start) waits for the service; a first start that pulls a large image may need
    C(service.TimeoutStartSec).
seealso:
  - name: podman-systemd.unit(5)
    description: Quadlet unit files and their keys.
    link: https://docs.podman.io/en/latest/markdown/podman-systemd.unit.5.html
"""

EXAMPLES = r"""
- name: Rootless web container, started now and at boot
  selfhost.pi.quadlet:
    name: web
    user: web
    unit:
      Description: Blog backend
    options:
      Image: docker.io/library/nginx:1.27
      PublishPort:
        - 127.0.0.1:8080:80
      Volume:
        - /srv/web/html:/usr/share/nginx/html:ro,Z
      Environment:
        TZ: Europe/Berlin
        GREETING: hello world
      AutoUpdate: registry
    service:
      Restart: always
    install:
      WantedBy: default.target

- name: A pod and a container in it (system scope)
  selfhost.pi.quadlet:
    name: app
    type: pod
    options:
      PublishPort: 8000:8000
    state: present

- name: Container joining that pod
  selfhost.pi.quadlet:
    name: app-api
    options:
      Image: ghcr.io/example/api:2
      Pod: app.pod

- name: Named volume, file only
  selfhost.pi.quadlet:
    name: data
    type: volume
    user: web
    state: present

- name: Remove the unit and stop its service
  selfhost.pi.quadlet:
    name: web
    user: web
    state: absent
"""

RETURN = r"""
path:
  description: The unit file's path.
  type: str
  returned: always
  sample: /home/web/.config/containers/systemd/web.container
service:
  description: The systemd service Quadlet generates for the unit (C(NAME.service) for container and kube,
    C(NAME-pod.service), C(NAME-volume.service), ... otherwise, or C(ServiceName=).service).
  type: str
  returned: always
  sample: web.service
scope:
  description: C(system) for a rootful unit, C(user) for a rootless one.
  type: str
  returned: always
  sample: user
content:
  description: The rendered unit file (empty for I(state=absent)).
  type: str
  returned: always
  sample: "[Container]\nImage=docker.io/library/nginx:1.27\n"
active_state:
  description: The service's ActiveState afterwards (C(active), C(inactive), C(failed), C(activating), ...);
    in check mode the expected one. C(inactive) when a user's manager is not running.
  type: str
  returned: always
  sample: active
diff:
  description: The unit file's before/after and, when it changes, the service's ActiveState before/after.
  type: list
  elements: dict
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.pi.plugins.module_utils import quadlet, quadlet_render
from ansible_collections.selfhost.pi.plugins.module_utils.errors import SelfhostError, fail_module
from ansible_collections.selfhost.pi.plugins.module_utils.host import ModuleHost


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            type=dict(type="str", default="container", choices=list(quadlet_render.UNIT_TYPES)),
            user=dict(type="str"),
            unit=dict(type="dict", default={}),
            options=dict(type="dict", default={}),
            service=dict(type="dict", default={}),
            install=dict(type="dict", default={}),
            state=dict(type="str", default="started",
                       choices=["started", "stopped", "restarted", "present", "absent"]),
            restart_on_change=dict(type="bool", default=True),
            manager_timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    try:
        result = quadlet.converge(ModuleHost(module), module.params)
    except SelfhostError as exc:
        fail_module(module, exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
