#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: hugo_site
short_description: Build a Hugo site from git into atomic, per-commit releases
version_added: 0.1.0
author:
  - selfhost.pi contributors (@selfhost)
description:
  - Checks out a git repository at a branch, tag or commit, builds it with C(hugo) into
    a release directory named after the commit and the build options, switches the
    C(current) symlink to it atomically and keeps the last O(keep_releases) releases.
  - "Layout under O(dest): C(src/) (git working copy), C(.cache/) (Hugo C(--cacheDir)),
    C(releases/<commit12>-<buildhash8>/) (Hugo C(--destination)), C(releases/<name>.json)
    (marker written last, so a release without it is incomplete and is never served) and
    C(current -> releases/<name>) (relative symlink). Point the web server at C(DEST/current)."
  - Nothing is rebuilt when C(current) already points at a complete release of the same
    commit and build options; that check costs one C(git ls-remote) and one C(hugo version).
  - A failed build is removed and C(current) is left untouched, so the site stays online.
  - git and hugo run as O(owner) (through C(runuser -u OWNER --) when the module runs as
    root), so the build never runs as root and nothing lands in root's home.
  - This is a custom module because no builtin combines these steps safely.
    M(ansible.builtin.git) updates a working copy in place (a failed build would leave a
    half-updated site and it cannot run as another user without C(become_user)), and a
    C(command) task for C(hugo) cannot tell whether anything changed, so every run would
    rebuild and report a change.
options:
  dest:
    description:
      - Base directory of the site, for example C(/srv/blog). Created (mode C(0755)) and
        owned by O(owner) and O(group); missing parents are created owned by root.
      - Must be an absolute path that does not pass through a symlink (the module refuses it before
        changing anything). C(DEST/src) belongs to the module, local changes there are discarded.
    type: path
    required: true
  repo:
    description:
      - git URL, local repository path or git bundle file, as for C(git clone).
      - O(owner) must be able to read it (SSH keys, credentials and C(known_hosts) of O(owner) are used).
      - Keep credentials out of the URL. A password or token in it (C(https://user:TOKEN@host/...)) is
        masked as C(***) in the module's messages, diff, result and release markers, but git shows it on
        its command line (C(/proc/PID/cmdline), readable by every local user) and stores it in
        C(DEST/src/.git/config); the module warns. Give O(owner) an SSH deploy key (C(~OWNER/.ssh/)) or a
        git credential helper (C(git config --global credential.helper store) as O(owner), with the
        token in O(owner)'s C(~/.git-credentials), mode C(0600)) instead.
    type: str
    required: true
  version:
    description:
      - What to check out, as in M(ansible.builtin.git) C(version). C(HEAD) (the remote's
        default branch), a branch or tag name (a branch wins over a tag of the same name),
        a full ref such as C(refs/pull/1/head), or a full or abbreviated commit SHA.
      - Branches and tags are resolved with C(git ls-remote); an abbreviated SHA is looked up
        in the existing clone and, if missing there, after fetching.
    type: str
    default: HEAD
  owner:
    description:
      - User that owns O(dest) and runs git and hugo. Must exist.
      - The module must run as root (C(become)) or as this user.
    type: str
    required: true
  group:
    description:
      - Group of O(dest) and of the directories and markers the module creates in it. Files that
        git and hugo write get the primary group of O(owner) (they run as O(owner)).
      - Defaults to the primary group of O(owner).
    type: str
  base_url:
    description:
      - Maps to Hugo C(--baseURL), for example C(https://blog.example.org/).
      - When unset, the C(baseURL) of the site's configuration is used.
    type: str
  environment:
    description:
      - Maps to Hugo C(--environment); selects C(config/<environment>/) and C(hugo.Environment).
    type: str
    default: production
  minify:
    description:
      - Maps to Hugo C(--minify) (minify HTML, XML, CSS, JS and JSON output).
    type: bool
    default: false
  build_drafts:
    description:
      - "Maps to Hugo C(--buildDrafts): include content with C(draft: true) in its front matter."
    type: bool
    default: false
  extra_args:
    description:
      - More arguments for the C(hugo) build, for example C(--buildFuture) or C(--config=hugo.toml,prod.toml).
      - Each item must start with C(-); write values as C(--flag=value). Flags the module sets
        itself (C(--source), C(--destination), C(--cacheDir), C(--baseURL), C(--environment),
        C(--minify), C(--buildDrafts), C(--cleanDestinationDir), C(--noBuildLock), C(--watch),
        C(--renderToMemory) and their short forms) are rejected.
    type: list
    elements: str
    default: []
  keep_releases:
    description:
      - Number of releases kept, counting the one C(current) points at, which is never deleted.
        The releases that were live most recently are kept (so the previous one stays available
        for a switch back); incomplete releases and leftovers of failed builds are removed.
      - Must be at least 1. Pruning also happens when nothing else changed, so lowering it takes effect.
    type: int
    default: 3
  hugo_path:
    description:
      - The C(hugo) executable; a name without C(/) is searched on C(PATH).
    type: path
    default: hugo
  git_path:
    description:
      - The C(git) executable; a name without C(/) is searched on C(PATH).
    type: path
    default: git
  timeout:
    description:
      - Time limit in seconds for the hugo build and for each git network operation
        (C(ls-remote), C(clone), C(fetch), C(submodule update)). Enforced with coreutils C(timeout).
    type: int
    default: 600
attributes:
  check_mode:
    support: full
    description: Resolves the target commit with C(git ls-remote) (or from the existing clone, without
      fetching into it) and reports what would change and the diff; writes nothing on the host.
  diff_mode:
    support: full
    description: Shows the commit and release C(current) points at, the kept releases and the
      owner, group and mode of O(dest), before and after.
  platform:
    support: full
    platforms: [posix]
    description: Debian 13 (hugo 0.131, git 2.47); any Linux host with git, hugo, C(runuser) and C(timeout).
notes:
  - "Build identity: the resolved commit plus a hash of O(base_url), O(environment), O(minify),
    O(build_drafts), O(extra_args) and the output of C(hugo version), so upgrading Hugo rebuilds.
    The release name is C(<first 12 hex digits of the commit>-<first 8 hex digits of that hash>)."
  - "The build runs C(hugo --source DEST/src --destination DEST/releases/.tmp-XXXX
    --cleanDestinationDir --noBuildLock --cacheDir DEST/.cache --environment ENV) plus the options,
    then renames the directory to the release name, writes the marker and switches C(current)
    (a new symlink renamed over the old one)."
  - Switching back to a kept release (for example an older O(version)) does not rebuild it.
  - "The marker C(releases/<name>.json) holds the commit, O(version), O(repo), the build options,
    C(built_at) and C(activated_at) (UTC); it lies beside the release, so it is not served."
  - "git submodules: when the checkout has a C(.gitmodules) file the module runs
    C(git submodule update --init --recursive --force), so themes added as submodules work.
    git refuses C(file://) and local-path submodule URLs by default (C(protocol.file.allow));
    Hugo Modules (C(go.mod)) need Go and network access and are not handled."
  - "Failures (the module fails and C(current) is not switched): O(owner) or O(group) missing,
    O(dest) not absolute, O(keep_releases) or O(timeout) below 1, invalid O(extra_args),
    C(DEST/current) not a symlink; O(repo) unreadable (C(git ls-remote) error); O(version) not
    a branch, tag or commit of O(repo); git or hugo not installed (in check mode only a warning);
    the hugo build failing (the message has the commit and the last 30 lines of hugo's output)
    or exceeding O(timeout); O(dest), or C(releases) in it, being or passing through a symlink."
  - "A local O(repo) owned by another user than O(owner) is refused by git (C(detected dubious
    ownership)); make O(owner) its owner or list it in C(safe.directory) in C(/etc/gitconfig)
    or in the O(owner)'s C(~/.gitconfig). The module does not override that git safety check."
  - "Security: git and hugo run as O(owner). Inside O(dest), which O(owner) can write to, the
    module (as root) works through directory descriptors: it opens O(dest) and every entry below it
    without following a link, and creates, chowns, renames and removes relative to those
    descriptors, so a link O(owner) places there (even while its hugo runs) is refused or removed
    as a link, never followed."
seealso:
  - name: Hugo command line
    description: Flags of the C(hugo) build command.
    link: https://gohugo.io/commands/hugo/
  - module: ansible.builtin.git
"""

EXAMPLES = r"""
- name: Build the blog from the main branch
  selfhost.pi.hugo_site:
    dest: /srv/blog
    repo: https://git.example.org/me/blog.git
    version: main
    owner: blog
    base_url: https://blog.example.org/
    minify: true
  become: true

- name: Pin a tag, keep five releases, include future posts
  selfhost.pi.hugo_site:
    dest: /srv/blog
    repo: /home/blog/blog.git
    version: v2025.03
    owner: blog
    group: www-data
    keep_releases: 5
    extra_args:
      - --buildFuture
  become: true

- name: Preview with drafts from a git bundle into a staging directory
  selfhost.pi.hugo_site:
    dest: /srv/blog-staging
    repo: /var/backups/blog.bundle
    owner: blog
    environment: staging
    build_drafts: true
  become: true
"""

RETURN = r"""
commit:
  description:
    - Full SHA of the commit C(current) points at after the run (in check mode, would point at).
    - null only in check mode when the commit can only be known after fetching (an abbreviated
      SHA or a new tag that is not in the existing clone).
  returned: always
  type: str
  sample: 3f1c2a9be0d4c1e8a7b6f5e4d3c2b1a098765432
release:
  description: Release directory for O(version) and the build options (C(current) points here).
  returned: always
  type: str
  sample: /srv/blog/releases/3f1c2a9be0d4-5e0a1b2c
previous_release:
  description: Release directory C(current) pointed at before the run; null when there was none.
    Equal to RV(release) when nothing was switched.
  returned: always
  type: str
  sample: /srv/blog/releases/9a8b7c6d5e4f-5e0a1b2c
current:
  description: Path of the C(current) symlink, the directory to serve.
  returned: always
  type: str
  sample: /srv/blog/current
built:
  description: Whether hugo ran. False when the release already existed (no change, or a switch
    back to a kept release).
  returned: always
  type: bool
  sample: true
releases:
  description: Release directories kept after pruning, the most recently live first.
  returned: always
  type: list
  elements: str
  sample: [/srv/blog/releases/3f1c2a9be0d4-5e0a1b2c, /srv/blog/releases/9a8b7c6d5e4f-5e0a1b2c]
diff:
  description: Before and after of C(current) (commit and release), the kept releases and the
    owner, group and mode of O(dest).
  returned: always
  type: dict
  sample:
    before: "current: commit 9a8b... (release /srv/blog/releases/9a8b7c6d5e4f-5e0a1b2c)\n..."
    after: "current: commit 3f1c... (release /srv/blog/releases/3f1c2a9be0d4-5e0a1b2c)\n..."
stdout:
  description: Last 30 lines of hugo's standard output when the build failed (hugo logs its C(ERROR) lines there).
  returned: failure of the build
  type: str
stderr:
  description: Last 30 lines of hugo's standard error when the build failed.
  returned: failure of the build
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.pi.plugins.module_utils.errors import SelfhostError, fail_module
from ansible_collections.selfhost.pi.plugins.module_utils.host import ModuleHost
from ansible_collections.selfhost.pi.plugins.module_utils.hugo import ARGUMENT_SPEC, converge
from ansible_collections.selfhost.pi.plugins.module_utils.hugo_source import url_secret


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
    )
    secret = url_secret(module.params["repo"])
    if secret:
        module.no_log_values.add(secret)
    try:
        result = converge(ModuleHost(module), module.params)
    except SelfhostError as exc:
        fail_module(module, exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
