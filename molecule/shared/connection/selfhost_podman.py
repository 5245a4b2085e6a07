# Test harness only: how Ansible reaches the molecule test hosts.
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""containers.podman.podman with pipelining (`podman exec -i`), for the molecule scenarios.

containers.podman's connection runs each module task as four podman
commands: `podman mount` (every task connects anew), `podman exec mkdir` for
a remote temporary directory, a copy of the module into it, `podman exec`
of the module, and the clean-up. That plugin declares no pipelining because
it runs `podman exec` without `-i`, so a module sent on stdin never arrives
(ansible/ansible#67004). With `-i` it does: one `podman exec` per module
task, the module on stdin, as over SSH with `pipelining = true` (what
inventory/hosts.yml uses on a real Pi, and the ssh scenario tests). The
container is mounted only when a file is copied (copy, template).

Everything else (the commands the modules run, become, the files they write)
is unchanged: this only changes how the module reaches the host.
"""
from __future__ import annotations

DOCUMENTATION = """
    name: selfhost_podman
    short_description: containers.podman.podman with pipelining (molecule test hosts)
    description:
        - Run modules in an existing podman container by piping them to C(podman exec -i).
    options:
      remote_addr:
        description:
          - The name or ID of the container.
        default: inventory_hostname
        vars:
          - name: ansible_host
          - name: inventory_hostname
          - name: ansible_podman_host
      remote_user:
        description:
          - User (name or UID) the commands run as inside the container.
        ini:
          - section: defaults
            key: remote_user
        env:
          - name: ANSIBLE_REMOTE_USER
        vars:
          - name: ansible_user
      podman_extra_args:
        description:
          - Extra arguments to pass to the podman command line.
        default: ''
        vars:
          - name: ansible_podman_extra_args
        env:
          - name: ANSIBLE_PODMAN_EXTRA_ARGS
      podman_executable:
        description:
          - Executable for podman command.
        default: podman
        vars:
          - name: ansible_podman_executable
        env:
          - name: ANSIBLE_PODMAN_EXECUTABLE
      pipelining:
        description:
          - Send modules on stdin instead of copying them to the container first.
        type: boolean
        default: true
        vars:
          - name: ansible_pipelining
"""

import shlex

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection


class Connection(PodmanConnection):
    transport = "selfhost_podman"
    has_pipelining = True

    def _connect(self):
        # No `podman mount` here: only put_file and fetch_file need the container's filesystem.
        ConnectionBase._connect(self)
        self._connected = True

    def _mounted(self):
        if self._mount_point is None:
            PodmanConnection._connect(self)
        return self._mount_point

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        ConnectionBase.exec_command(self, cmd, in_data=in_data, sudoable=sudoable)
        args = ["exec"]
        if in_data is not None:
            args.append("-i")  # a pipelined module arrives on stdin
        if self.user:
            args.extend(("--user", self.user))
        return self._podman(args, shlex.split(to_native(cmd, errors="surrogate_or_strict")), in_data)

    def put_file(self, in_path, out_path):
        self._mounted()
        super().put_file(in_path, out_path)

    def fetch_file(self, in_path, out_path):
        self._mounted()
        super().fetch_file(in_path, out_path)
