#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: restic_repository
short_description: Check that a restic repository opens with the given settings, and initialize an empty one
version_added: 0.2.0
author: selfhost.pi maintainers (@selfhost)
description:
  - Asks restic whether the repository O(repository) opens with O(password) and O(environment)
    (C(restic cat config --no-lock), which reads one small file and takes no lock), before any of these settings is
    written to the host. The C(selfhost.pi.backup) role runs it first, so a wrong password or an unreachable server
    stops the play with nothing changed.
  - When there is no repository there (restic exit code 10) and O(init) is true, it runs C(restic init). A local
    repository (an absolute path, or C(local:/path)) is only initialized when its parent directory exists, so a backup
    disk that is not mounted is reported instead of a repository made on the SD card.
  - The password and the environment reach restic in its process environment (C(RESTIC_PASSWORD) and the given
    variables), which only root can read; never on a command line, which any user can read in C(/proc/PID/cmdline).
    All three settings are C(no_log); they never appear in the module's output.
  - Errors are one sentence that starts with the option at fault, named as in O(field_names), so that a role's errors
    name the variables its user sets (for example C(backup_password) for O(password)).
  - A custom module because restic is not covered by any collection in the C(ansible) package, and the check has
    branches on restic's exit codes that a C(command) task and a Jinja expression can only express as shell glue.
options:
  repository:
    description:
      - The repository, as restic's C(-r) / C(RESTIC_REPOSITORY) takes it, for example C(/mnt/backup/restic),
        C(sftp:user@host:/path), C(rest:https://user:pass@host/path) or C(s3:https://host/bucket/path).
      - C(no_log), as it may hold a REST server's credentials.
    type: str
    required: true
  password:
    description: The repository's password (restic's C(RESTIC_PASSWORD)).
    type: str
    required: true
  environment:
    description:
      - More environment for restic, for example C(AWS_ACCESS_KEY_ID) and C(AWS_SECRET_ACCESS_KEY) for S3, or
        C(RESTIC_REST_USERNAME). Keys must be shell variable names (letters, digits and C(_), not starting with a digit);
        C(RESTIC_REPOSITORY), C(RESTIC_REPOSITORY_FILE), C(RESTIC_PASSWORD), C(RESTIC_PASSWORD_FILE) and
        C(RESTIC_PASSWORD_COMMAND) come from O(repository) and O(password) and are refused here.
      - Values are strings; a NUL character is refused.
    type: dict
    default: {}
  init:
    description: Initialize the repository (C(restic init)) when there is none there; false fails instead.
    type: bool
    default: true
  timeout:
    description:
      - Seconds the check may take (run under C(timeout(1))); restic itself retries an unreachable server for minutes.
        C(restic init) is not limited.
    type: int
    default: 60
  restic:
    description: The restic command (a name looked up in C(PATH) and the sbin directories, or a path).
    type: str
    default: restic
  field_names:
    description:
      - How errors name the options, for a role that passes its own variables; keys are this module's option names
        (C(repository), C(password), C(environment), C(init), C(timeout)). Options not listed are named as themselves.
    type: dict
    default: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The check runs (it only reads); an initialization is reported as a change and not done.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff_mode).
    support: full
    details: The repository's state before (C(present) or C(absent)) and after.
notes:
  - Errors it raises, each naming the option (as O(field_names) names it), before any change
    - O(repository) or O(password) empty; C(environment.KEY) not a variable name, one of the names set from
    O(repository)/O(password), or a value with a NUL character; O(timeout) below 1;
    O(password) wrong (restic exit code 12); O(repository) absent (exit code 10) with O(init) false;
    O(repository) not answering within O(timeout) seconds (C(timeout) exit code 124); O(repository) local with a
    missing parent directory; O(repository) unreadable for any other reason (restic's last line of error output);
    the restic command missing. After the change started, a failed C(restic init) names O(repository).
  - Needs restic 0.17 or later on the host (its exit codes 10 and 12); Debian 13 ships 0.18.
seealso:
  - name: Scripting restic (exit codes)
    description: restic's exit codes, among them 10 (no repository) and 12 (wrong password).
    link: https://restic.readthedocs.io/en/stable/075_scripting.html
  - name: Preparing a new repository
    description: restic init and the repository locations restic accepts.
    link: https://restic.readthedocs.io/en/stable/030_preparing_a_new_repo.html
  - module: selfhost.pi.restic_restore
"""

EXAMPLES = r"""
- name: Check the repository, initializing an empty one
  selfhost.pi.restic_repository:
    repository: /mnt/backup/restic
    password: "{{ vault_backup_password }}"

- name: An S3 repository that must exist already; errors name the role's variables
  selfhost.pi.restic_repository:
    repository: s3:https://s3.example.org/bucket/pi
    password: "{{ vault_backup_password }}"
    environment:
      AWS_ACCESS_KEY_ID: "{{ vault_s3_key_id }}"
      AWS_SECRET_ACCESS_KEY: "{{ vault_s3_secret }}"
    init: false
    timeout: 30
    field_names:
      repository: backup_repository
      password: backup_password
      environment: backup_repository_environment
      init: backup_init
      timeout: backup_repository_timeout
"""

RETURN = r"""
before:
  description:
    - C(present) when the repository opened with the settings, C(absent) when there was none.
    - C(unknown) in check mode when restic is not installed yet (a freshly flashed host, where the apt task only
      planned it); the module then reports changed without running restic.
  type: str
  returned: always
  sample: absent
planned:
  description: In check mode without restic, what the real run will do.
  type: str
  returned: when restic is not installed yet in check mode
state:
  description: C(present) (in check mode, what it would be).
  type: str
  returned: always
  sample: present
initialized:
  description: Whether C(restic init) ran (never in check mode).
  type: bool
  returned: always
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.pi.plugins.module_utils.errors import SelfhostError, fail_module
from ansible_collections.selfhost.pi.plugins.module_utils.host import ModuleHost
from ansible_collections.selfhost.pi.plugins.module_utils.restore import Repository


def main():
    module = AnsibleModule(
        argument_spec=dict(
            repository=dict(type="str", required=True, no_log=True),
            password=dict(type="str", required=True, no_log=True),
            environment=dict(type="dict", default={}, no_log=True),
            init=dict(type="bool", default=True),
            timeout=dict(type="int", default=60),
            restic=dict(type="str", default="restic"),
            field_names=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    try:
        result = Repository(ModuleHost(module), module.params, names=module.params["field_names"]).converge()
    except SelfhostError as exc:
        fail_module(module, exc)
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
