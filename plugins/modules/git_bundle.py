#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: git_bundle
short_description: Snapshot a directory as a deterministic one-commit git bundle
version_added: 0.2.0
author:
  - selfhost.pi contributors (@selfhost)
description:
  - Commits the files of O(src) as the only commit of branch O(branch) in a new, temporary git
    repository, with a fixed author, committer and date, and writes a git bundle of it
    (C(git bundle create)) to O(dest).
  - The same files give the same commit and the same bundle bytes, so a consumer sees no change
    while O(src) is unchanged. M(selfhost.pi.hugo_site) builds from such a bundle (O(selfhost.pi.hugo_site#module:repo)
    is the bundle's path) and rebuilds only when the commit changes; M(ansible.builtin.copy) copies it
    only when the bytes changed.
  - O(dest) is written only when its bytes differ from the new bundle, atomically (a temporary
    file beside it, renamed over it). Nothing else is left behind.
  - The selfhost.pi C(blog) role runs it on the controller (C(delegate_to localhost)) for
    C(blog_source), a Hugo site kept beside the inventory.
  - This is a custom module because a C(command) task running the git steps cannot tell whether the
    bundle changed, and git has no single command that snapshots a directory reproducibly.
options:
  src:
    description:
      - Directory to snapshot. Every file in it is committed, except those matched by O(exclude) or by
        the C(.gitignore) files in it, and a C(.git) directory (a nested repository is not followed).
      - Executable bits and symbolic links are recorded as git records them; owners and other modes are not.
    type: path
    required: true
  dest:
    description:
      - Path of the bundle file to write, mode C(0644). Its directory must exist.
    type: path
    required: true
  branch:
    description:
      - Branch of the bundle that holds the commit (C(refs/heads/BRANCH)); checked with
        C(git check-ref-format --branch).
    type: str
    default: main
  commit_message:
    description:
      - Commit message, one line. Part of the commit, so changing it changes the bundle.
    type: str
    required: true
  exclude:
    description:
      - gitignore patterns (C(gitignore(5))) of files left out, written to the temporary repository's
        C(info/exclude), for example C(/public/) for Hugo's default output directory.
    type: list
    elements: str
    default: []
  git_path:
    description:
      - The C(git) executable; a name without C(/) is searched on C(PATH).
    type: path
    default: git
attributes:
  check_mode:
    support: full
    description: Makes the bundle in a temporary directory and compares it with O(dest) without writing O(dest).
  diff_mode:
    support: full
    description: Shows the commit of O(branch) in the existing bundle and in the new one.
  platform:
    support: full
    platforms: [posix]
    description: Any machine with git 2.28 or later (C(init.defaultBranch)); usually the controller.
notes:
  - "Identity: author and committer C(selfhost.pi <selfhost@localhost>), date C(2000-01-01T00:00:00Z)
    (C(GIT_AUTHOR_*) and C(GIT_COMMITTER_*)). The objects are packed with C(pack.threads=1), so
    their order, and the bundle's bytes, do not depend on the number of CPUs."
  - "The git configuration of the user running the module applies (for example C(core.excludesFile)
    or C(core.compression)), as for any git command; C(commit.gpgsign) is turned off, because a
    signature would make every commit different. The same O(src) gives the same bundle on the same
    machine; another machine gives the same commit as long as its git configuration does not change
    what is added."
  - "Failures: O(src) not a directory, the directory of O(dest) missing or O(dest) a directory,
    O(branch) not a valid branch name, O(commit_message) empty or more than one line, an empty O(exclude)
    pattern, git not found (C(git_path)), a git step failing (the message names the step and
    has git's last lines)."
seealso:
  - name: git bundle
    description: The bundle format and C(git bundle create).
    link: https://git-scm.com/docs/git-bundle
  - module: selfhost.pi.hugo_site
"""

EXAMPLES = r"""
- name: Bundle the site kept beside the inventory
  selfhost.pi.git_bundle:
    src: "{{ inventory_dir }}/files/blog"
    dest: /tmp/blog.bundle
    commit_message: Site from blog
    exclude: [/public/, /resources/_gen/, .hugo_build.lock]
  delegate_to: localhost
  run_once: true

- name: Build the blog from the bundle copied to the host
  selfhost.pi.hugo_site:
    dest: /srv/blog
    repo: /var/lib/selfhost-pi/blog.bundle
    version: main
    owner: blog
  become: true
"""

RETURN = r"""
dest:
  description: Path of the bundle.
  returned: always
  type: str
  sample: /tmp/blog.bundle
commit:
  description: SHA of the bundle's only commit (the tip of O(branch)); the same files give the same SHA.
  returned: always
  type: str
  sample: 5d0c8e8f3b9a0c1d2e3f4a5b6c7d8e9f0a1b2c3d
checksum:
  description: SHA-1 of the bundle's bytes (as M(ansible.builtin.copy) reports C(checksum)).
  returned: always
  type: str
  sample: 2aae6c35c94fcfb415dbe95f408b9ce91ee846ed
size:
  description: Size of the bundle in bytes.
  returned: always
  type: int
  sample: 5120
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.pi.plugins.module_utils.errors import SelfhostError, fail_module
from ansible_collections.selfhost.pi.plugins.module_utils.git_bundle import converge
from ansible_collections.selfhost.pi.plugins.module_utils.host import ModuleHost


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            branch=dict(type="str", default="main"),
            commit_message=dict(type="str", required=True),
            exclude=dict(type="list", elements="str", default=[]),
            git_path=dict(type="path", default="git"),
        ),
        supports_check_mode=True,
    )
    try:
        result = converge(ModuleHost(module), module.params)
    except SelfhostError as exc:
        fail_module(module, exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
