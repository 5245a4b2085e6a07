# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build a Hugo site from git into per-commit releases behind a ``current`` symlink.

Layout under ``dest``::

    src/                         git working copy (owned by the module: local edits are discarded)
    .cache/                      hugo --cacheDir
    releases/<commit12>-<hash8>/ hugo --destination of one build
    releases/<commit12>-<hash8>.json   marker, written last: the release is complete
    current -> releases/<commit12>-<hash8>

git and hugo run as the site's owner (``runuser -u OWNER --`` when the module
runs as root). The module itself, running as root, only touches paths inside
``dest`` with operations that do not follow symlinks (fd-based chown/chmod,
rename, ``shutil.rmtree``), because ``dest`` is writable by the owner.

``converge(module, params)`` is the whole job as one call, so a composite module
can reuse it; it raises ``HugoSiteError`` instead of failing the module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import grp
import hashlib
import json
import os
import pwd
import re
import shutil
import stat
import tempfile

from ansible_collections.selfhost.pi.plugins.module_utils.files import ManagedFile

FULL_SHA_RE = re.compile(r"^[0-9a-fA-F]{40}$")
SHORT_SHA_RE = re.compile(r"^[0-9a-fA-F]{4,39}$")
RELEASE_RE = re.compile(r"^[0-9a-f]{12}-[0-9a-f]{8}$")
TMP_PREFIX = ".tmp-"
MARKER_SUFFIX = ".json"
ERROR_TAIL_LINES = 30
# hugo flags the module sets itself; extra_args may not repeat them.
CONTROLLED_FLAGS = (
    "-s", "--source", "-d", "--destination", "--cleanDestinationDir", "--noBuildLock",
    "--cacheDir", "-b", "--baseURL", "-e", "--environment", "--minify", "-D", "--buildDrafts",
    "-w", "--watch", "--renderToMemory",
)
COMMAND_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}

# The options of selfhost.pi.hugo_site; a composite module can reuse them for one site's entry.
ARGUMENT_SPEC = dict(
    dest=dict(type="path", required=True),
    repo=dict(type="str", required=True),
    version=dict(type="str", default="HEAD"),
    owner=dict(type="str", required=True),
    group=dict(type="str"),
    base_url=dict(type="str"),
    environment=dict(type="str", default="production"),
    minify=dict(type="bool", default=False),
    build_drafts=dict(type="bool", default=False),
    extra_args=dict(type="list", elements="str", default=[]),
    keep_releases=dict(type="int", default=3),
    hugo_path=dict(type="path", default="hugo"),
    git_path=dict(type="path", default="git"),
    timeout=dict(type="int", default=600),
)


class HugoSiteError(Exception):
    """A failure with a message for the user and extra result fields."""

    def __init__(self, msg, **fields):
        super(HugoSiteError, self).__init__(msg)
        self.msg = msg
        self.fields = fields


def validate_params(params, check_mode=False):
    """Check every option before anything is touched; return (uid, gid).

    In check mode a missing owner (made by an earlier task that did not run)
    is not an error; the uid and gid are then None.
    """
    errors = []
    dest = params["dest"]
    if not os.path.isabs(dest) or os.path.normpath(dest) == "/":
        errors.append("dest: %r must be an absolute path below /" % dest)
    uid = gid = None
    try:
        pw = pwd.getpwnam(params["owner"])
        uid, gid = pw.pw_uid, pw.pw_gid
    except KeyError:
        if not check_mode:
            errors.append("owner: user %r does not exist" % params["owner"])
    if params.get("group"):
        try:
            gid = grp.getgrnam(params["group"]).gr_gid
        except KeyError:
            errors.append("group: group %r does not exist" % params["group"])
    for name in ("repo", "version"):
        value = params[name]
        if not value or value.startswith("-") or any(c in value for c in "\n\0"):
            errors.append("%s: %r is not a valid git %s" % (name, value, "repository" if name == "repo" else "revision"))
    if params["keep_releases"] < 1:
        errors.append("keep_releases: %d must be at least 1" % params["keep_releases"])
    if params["timeout"] < 1:
        errors.append("timeout: %d must be at least 1 second" % params["timeout"])
    if params.get("base_url") is not None and not params["base_url"].strip():
        errors.append("base_url: must not be empty when set")
    if not params["environment"] or params["environment"].startswith("-"):
        errors.append("environment: %r is not a valid Hugo environment name" % params["environment"])
    for arg in params["extra_args"]:
        if not arg.startswith("-"):
            errors.append("extra_args: %r must start with '-' (write values as --flag=value)" % arg)
        elif arg.split("=", 1)[0] in CONTROLLED_FLAGS:
            errors.append("extra_args: %r is set by the module; use its own option instead" % arg)
    if uid is not None and os.geteuid() not in (0, uid):
        errors.append("owner: the module runs as uid %d; run it as root (become) or as %r"
                      % (os.geteuid(), params["owner"]))
    if errors:
        raise HugoSiteError("; ".join(errors))
    return uid, gid


class Runner(object):
    """Run commands as the site owner: directly when the module already is that user."""

    def __init__(self, module, owner, uid):
        self.module = module
        self.prefix = []
        if os.geteuid() != uid:
            self.prefix = [module.get_bin_path("runuser", required=True), "-u", owner, "--"]
        self.timeout_bin = module.get_bin_path("timeout")

    def run(self, argv, cwd="/", timeout=None):
        """Return (rc, stdout, stderr); rc is None when ``timeout`` seconds ran out."""
        cmd = list(self.prefix)
        if timeout and self.timeout_bin:
            cmd += [self.timeout_bin, "--kill-after=10", str(timeout)]
        rc, out, err = self.module.run_command(cmd + list(argv), cwd=cwd, environ_update=COMMAND_ENV)
        if timeout and self.timeout_bin and rc == 124:
            rc = None
        return rc, out, err


def tail(text, lines=ERROR_TAIL_LINES):
    return "\n".join(text.strip().splitlines()[-lines:])


def _open_nofollow(path, flags):
    return os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))


def ensure_owned_dir(path, mode, uid, gid, check_mode=False, follow=False):
    """Create ``path`` and fix its mode/owner through an fd, not the path.

    Unlike ``files.ensure_directory`` (parents made like the target, any
    symlink on the way refused), missing parents are created root-owned, mode
    0755, and ``follow`` lets ``dest`` itself be reached through a link the
    administrator made; inside ``dest`` (the owner's) the directory is opened
    with O_NOFOLLOW. Returns True when something changed (or would change).
    """
    changed = False
    if not os.path.lexists(path):
        if check_mode:
            return True
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o755)
        os.mkdir(path, 0o700)
        changed = True
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)) if follow \
            else _open_nofollow(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise HugoSiteError("dest: %s is not a directory (%s)" % (path, exc.strerror))
    try:
        st = os.fstat(fd)
        if stat.S_IMODE(st.st_mode) != mode:
            changed = True
            if not check_mode:
                os.fchmod(fd, mode)
        if (st.st_uid, st.st_gid) != (uid, gid):
            changed = True
            if not check_mode:
                os.fchown(fd, uid, gid)
    finally:
        os.close(fd)
    return changed


def write_owned_file(path, content, uid, gid, mode=0o644):
    """Write ``content`` to ``path`` owned by uid:gid (files.ManagedFile: temp file, fchown, rename)."""
    ManagedFile(path, content, mode, uid, gid).apply()


def read_json(path):
    """Return the parsed JSON file, or None when it is missing, a symlink or unreadable."""
    try:
        fd = _open_nofollow(path, os.O_RDONLY)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        try:
            data = json.loads(handle.read(65536).decode("utf-8"))
        except ValueError:
            return None
    return data if isinstance(data, dict) else None


def build_options(params, hugo_version):
    """The options that make up a build's identity (besides the commit)."""
    return {
        "base_url": params.get("base_url"),
        "environment": params["environment"],
        "minify": bool(params["minify"]),
        "build_drafts": bool(params["build_drafts"]),
        "extra_args": list(params["extra_args"]),
        "hugo": hugo_version,
    }


def build_hash(options):
    blob = json.dumps(options, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:8]


def release_name(commit, options_hash):
    return "%s-%s" % (commit[:12].lower(), options_hash)


class HugoSite(object):
    """One site directory (``dest``) and the git/hugo calls that fill it."""

    def __init__(self, module, runner, params, uid, gid, git, hugo):
        self.module = module
        self.runner = runner
        self.params = params
        self.uid, self.gid = uid, gid
        self.git, self.hugo = [git], hugo
        self.dest = os.path.normpath(params["dest"])
        self.src = os.path.join(self.dest, "src")
        self.cache = os.path.join(self.dest, ".cache")
        self.releases_dir = os.path.join(self.dest, "releases")
        self.current = os.path.join(self.dest, "current")
        self.fetched = False

    # -- state -------------------------------------------------------------
    def cwd(self):
        for path in (self.src, self.dest):
            if os.path.isdir(path) and not os.path.islink(path):
                return path
        return "/"

    def current_release(self):
        """Name of the release ``current`` points at, or None."""
        if not os.path.lexists(self.current):
            return None
        if not os.path.islink(self.current):
            raise HugoSiteError("dest: %s exists and is not a symlink; move it away" % self.current)
        target = os.readlink(self.current)
        head, name = os.path.split(target.rstrip("/"))
        if head in ("releases", self.releases_dir) and RELEASE_RE.match(name):
            return name
        return None

    def release_path(self, name):
        return os.path.join(self.releases_dir, name) if name else None

    def marker(self, name):
        data = read_json(os.path.join(self.releases_dir, name + MARKER_SUFFIX))
        if data is None or not os.path.isdir(self.release_path(name)) or os.path.islink(self.release_path(name)):
            return None
        return data

    def is_complete(self, name, commit, options_hash):
        data = self.marker(name)
        return bool(data) and data.get("commit") == commit and data.get("build_hash") == options_hash

    def hugo_version(self):
        rc, out, err = self.runner.run([self.hugo, "version"], cwd=self.cwd())
        if rc != 0 or not out.strip():
            raise HugoSiteError("hugo_path: '%s version' failed: %s" % (self.hugo, tail(err or out, 5)))
        return out.strip().splitlines()[0]

    # -- git ---------------------------------------------------------------
    def _git(self, args, what, network=False, field="repo"):
        rc, out, err = self.runner.run(self.git + ["-C", self.src] + args, cwd=self.cwd(),
                                       timeout=self.params["timeout"] if network else None)
        if rc is None:
            raise HugoSiteError("%s: git %s timed out after %d seconds (timeout)" % (field, what, self.params["timeout"]))
        if rc != 0:
            raise HugoSiteError("%s: git %s failed for %s: %s" % (field, what, self.params[field], tail(err or out, 10)))
        return out

    def ls_remote(self):
        version = self.params["version"]
        patterns = ["HEAD"] if version == "HEAD" else [version, version + "^{}"]
        rc, out, err = self.runner.run(self.git + ["ls-remote", self.params["repo"]] + patterns,
                                       cwd=self.cwd(), timeout=self.params["timeout"])
        if rc is None:
            raise HugoSiteError("repo: git ls-remote %s timed out after %d seconds (timeout)"
                                % (self.params["repo"], self.params["timeout"]))
        if rc != 0:
            hint = ""
            if "dubious ownership" in err:
                hint = (" (git does not read a local repository owned by another user: make %s its owner, or"
                        " add it to safe.directory in /etc/gitconfig or %s's ~/.gitconfig)"
                        % (self.params["owner"], self.params["owner"]))
            raise HugoSiteError("repo: cannot read %s as user %s%s: %s"
                                % (self.params["repo"], self.params["owner"], hint, tail(err or out, 10)))
        refs = {}
        for line in out.splitlines():
            parts = line.split("\t", 1)
            if len(parts) == 2:
                refs[parts[1].strip()] = parts[0].strip().lower()
        return refs

    def rev_parse(self, spec):
        """Commit SHA of ``spec`` in the local clone, without fetching; None when unknown."""
        if not os.path.isdir(os.path.join(self.src, ".git")):
            return None
        argv = self.git + ["-C", self.src, "rev-parse", "--verify", "--quiet", spec + "^{commit}"]
        rc, out, dummy = self.runner.run(argv, cwd=self.cwd())
        return out.strip().lower() if rc == 0 and out.strip() else None

    def resolve(self):
        """Return (commit, ref, spec) for ``version`` without writing anything.

        Branches, tags and HEAD are resolved with one ``git ls-remote``; a full
        SHA needs no lookup; a short SHA or an unpeeled tag (bundles do not
        list peeled tags) is looked up in the existing clone. commit is None
        when only fetching can tell; then ``spec`` is what to look up after
        ``fetch(ref, spec)``.
        """
        version = self.params["version"]
        if FULL_SHA_RE.match(version):
            return version.lower(), None, version.lower()
        refs = self.ls_remote()
        if version == "HEAD":
            candidates = ["HEAD"]
        elif version.startswith("refs/"):
            candidates = [version]
        else:
            candidates = ["refs/heads/" + version, "refs/tags/" + version]
        for ref in candidates:
            if ref in refs:
                if ref + "^{}" in refs:
                    return refs[ref + "^{}"], ref, refs[ref + "^{}"]
                if not ref.startswith("refs/tags/"):
                    return refs[ref], ref, refs[ref]
                return self.rev_parse(refs[ref]), ref, refs[ref]
        if not SHORT_SHA_RE.match(version):
            raise HugoSiteError("version: %r is not a branch or tag of repo %s" % (version, self.params["repo"]))
        return self.rev_parse(version), None, version

    def fetch(self, ref, commit):
        """Clone the repository, or fetch all branches and tags into the existing clone."""
        if not self.fetched:
            if os.path.isdir(os.path.join(self.src, ".git")):
                url = self.runner.run(self.git + ["-C", self.src, "config", "--get", "remote.origin.url"],
                                      cwd=self.cwd())[1].strip()
                if url != self.params["repo"]:
                    self._git(["remote", "set-url", "origin", self.params["repo"]], "remote set-url")
                self._git(["fetch", "--quiet", "--force", "--prune", "origin",
                           "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"],
                          "fetch", network=True)
            else:
                if os.path.lexists(self.src):
                    self._remove(self.src)
                ensure_owned_dir(self.src, 0o755, self.uid, self.gid)
                self._git(["clone", "--quiet", "--no-checkout", "--origin", "origin", self.params["repo"], "."],
                          "clone", network=True)
            self.fetched = True
        if commit and self.rev_parse(commit) is None:
            # Not on any branch or tag: ask for the ref (or the commit) itself.
            self.runner.run(self.git + ["-C", self.src, "fetch", "--quiet", "origin", ref or commit],
                            cwd=self.cwd(), timeout=self.params["timeout"])

    def checkout(self, commit):
        self._git(["checkout", "--quiet", "--force", "--detach", commit], "checkout", field="version")
        self._git(["clean", "-ffdxq"], "clean")
        if os.path.isfile(os.path.join(self.src, ".gitmodules")):
            self._git(["submodule", "--quiet", "sync", "--recursive"], "submodule sync")
            self._git(["submodule", "--quiet", "update", "--init", "--recursive", "--force"],
                      "submodule update", network=True)
            self._git(["submodule", "--quiet", "foreach", "--recursive", "git clean -ffdxq"], "submodule clean")

    # -- build, switch, prune -------------------------------------------------
    def hugo_argv(self, destination):
        p = self.params
        argv = [self.hugo, "--source", self.src, "--destination", destination, "--cleanDestinationDir",
                "--noBuildLock", "--cacheDir", self.cache, "--environment", p["environment"]]
        if p.get("base_url"):
            argv += ["--baseURL", p["base_url"]]
        if p["minify"]:
            argv.append("--minify")
        if p["build_drafts"]:
            argv.append("--buildDrafts")
        return argv + list(p["extra_args"])

    def guard(self):
        """Refuse to go on, as root, when ``dest`` or ``releases`` became a symlink.

        The owner can write in ``dest`` (and its git and hugo run as the owner
        between these steps); a link there must not send root's writes and
        removals elsewhere.
        """
        for path in (self.dest, self.releases_dir):
            if os.path.islink(path) or os.path.realpath(path) != path:
                raise HugoSiteError("dest: %s is (or passes through) a symlink; refusing to continue" % path)

    def build(self, commit, name, options, options_hash, previous):
        """Build into releases/.tmp-*, then rename to releases/NAME and write the marker."""
        self.guard()
        tmp = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=self.releases_dir)
        try:
            ensure_owned_dir(tmp, 0o755, self.uid, self.gid)
            rc, out, err = self.runner.run(self.hugo_argv(tmp), cwd=self.src, timeout=self.params["timeout"])
            if rc != 0:
                keep = "; current still points at %s" % (self.release_path(previous) or "nothing")
                if rc is None:
                    msg = "hugo build of commit %s timed out after %d seconds (timeout)%s" % (
                        commit, self.params["timeout"], keep)
                else:
                    # hugo logs its ERROR lines to stdout, the final "Error:" to stderr.
                    msg = "hugo build of commit %s failed (rc=%d)%s:\n%s" % (
                        commit, rc, keep, tail("%s\n%s" % (out.strip(), err.strip())))
                raise HugoSiteError(msg, commit=commit, stdout=tail(out), stderr=tail(err))
            final = self.release_path(name)
            if os.path.lexists(final):
                self._remove(final)
            os.rename(tmp, final)
            tmp = None
        finally:
            if tmp is not None and os.path.lexists(tmp):
                self._remove(tmp)
        data = {
            "commit": commit,
            "version": self.params["version"],
            "repo": self.params["repo"],
            "build_hash": options_hash,
            "options": options,
            "built_at": _now(),
        }
        self.write_marker(name, data)

    def write_marker(self, name, data):
        write_owned_file(self.release_path(name) + MARKER_SUFFIX, json.dumps(data, indent=2, sort_keys=True) + "\n",
                         self.uid, self.gid)

    def switch(self, name):
        """Point ``current`` at releases/NAME atomically (symlink beside it, then rename over).

        The marker records the time as ``activated_at``; pruning keeps the
        releases that were live most recently.
        """
        self.guard()
        data = self.marker(name)
        data["activated_at"] = _now()
        self.write_marker(name, data)
        tmp = os.path.join(self.dest, ".current.%s" % os.urandom(4).hex())
        os.symlink(os.path.join("releases", name), tmp)
        try:
            os.lchown(tmp, self.uid, self.gid)
            os.rename(tmp, self.current)
        except Exception:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise

    def plan_prune(self, current, keep, new=None):
        """Return (kept, removed) release names.

        kept holds ``current`` and the releases that were live most recently
        (``activated_at``, else ``built_at``), newest first; releases without
        a marker, stray temporary directories and orphan markers are removed.
        """
        names, stray = [], []
        if os.path.isdir(self.releases_dir):
            for entry in sorted(os.listdir(self.releases_dir)):
                path = os.path.join(self.releases_dir, entry)
                if RELEASE_RE.match(entry) and os.path.isdir(path) and not os.path.islink(path):
                    names.append(entry)
                elif entry.startswith(TMP_PREFIX) or (
                        entry.endswith(MARKER_SUFFIX) and RELEASE_RE.match(entry[:-len(MARKER_SUFFIX)])
                        and not os.path.isdir(path[:-len(MARKER_SUFFIX)])):
                    stray.append(entry)
        if new and new not in names:
            names.append(new)
        stamp = {}
        for name in names:
            data = self.marker(name) if name != new else None
            stamp[name] = "9999" if name == new else (data or {}).get("activated_at", (data or {}).get("built_at"))
        complete = sorted((n for n in names if stamp[n]), key=lambda n: stamp[n], reverse=True)
        kept = [n for n in complete if n == current]
        kept += [n for n in complete if n != current][:max(keep - len(kept), 0)]
        if current in names and current not in kept:
            kept.append(current)
        kept.sort(key=lambda n: stamp[n] or "", reverse=True)
        removed = [n for n in names if n not in kept] + stray
        return kept, removed

    def prune(self, removed):
        self.guard()
        for entry in removed:
            path = os.path.join(self.releases_dir, entry)
            if os.path.lexists(path):
                self._remove(path)
            if RELEASE_RE.match(entry) and os.path.lexists(path + MARKER_SUFFIX):
                os.unlink(path + MARKER_SUFFIX)

    @staticmethod
    def _remove(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)

    def dest_state(self):
        try:
            st = os.stat(self.dest)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return "%s (absent)" % self.dest
            raise
        return "%s (%s, mode %04o)" % (self.dest, _user_desc(st.st_uid, st.st_gid), stat.S_IMODE(st.st_mode))


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _user_desc(uid, gid):
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    return "owner %s, group %s" % (user, group)


def _describe(dest, current, releases):
    return "current: %s\nreleases: %s\ndest: %s\n" % (current, ", ".join(releases) or "(none)", dest)


def find_tool(module, params, field):
    """Absolute path of git_path/hugo_path (searched on PATH when it has no slash), or None."""
    value = params[field]
    path = value if "/" in value else module.get_bin_path(value)
    return path if path and os.access(path, os.X_OK) else None


def converge(module, params=None):
    """Bring ``dest`` to the wanted commit and build options; return the result dict.

    Raises HugoSiteError (with ``msg`` and extra ``fields``) on bad input or a
    failed git/hugo step; ``current`` is never switched then.
    """
    params = params or module.params
    check = module.check_mode
    uid, gid = validate_params(params, check)
    tools = {}
    for field in ("git_path", "hugo_path"):
        tools[field] = find_tool(module, params, field)
        if tools[field] is None or uid is None:
            if not check:
                raise HugoSiteError("%s: %s not found or not executable" % (field, params[field]))
            module.warn("%s is not there yet; assuming the site would be built" % (
                "owner: user %s" % params["owner"] if uid is None else "%s: %s" % (field, params[field])))
            current = os.path.join(os.path.normpath(params["dest"]), "current")
            return dict(changed=True, built=False, commit=None, release=None, previous_release=None,
                        current=current, releases=[], diff=dict(before="", after="build %s of %s\n" % (
                            params["version"], params["repo"]), before_header=current, after_header=current))

    site = HugoSite(module, Runner(module, params["owner"], uid), params, uid, gid,
                    tools["git_path"], tools["hugo_path"])
    # Read the state and resolve the target: no writes so far.
    previous = site.current_release()
    before_commit = (site.marker(previous) or {}).get("commit", "unknown") if previous else None
    before_releases = site.plan_prune(previous, 10 ** 6)[0]
    dest_before = site.dest_state()
    options = build_options(params, site.hugo_version())
    options_hash = build_hash(options)
    commit, ref, spec = site.resolve()
    if commit is not None:
        name = release_name(commit, options_hash)
        up_to_date = name == previous and site.is_complete(name, commit, options_hash)
    else:
        name, up_to_date = None, False

    dirs_changed = False
    for path, mode in ((site.dest, 0o755), (site.releases_dir, 0o755), (site.cache, 0o700)):
        if check and not os.path.isdir(site.dest):
            dirs_changed = True
            break
        dirs_changed = ensure_owned_dir(path, mode, uid, gid, check_mode=check,
                                        follow=path == site.dest) or dirs_changed

    built = False
    if not up_to_date and not check:
        if commit is None:
            site.fetch(ref, None)
            commit = site.rev_parse(spec)
            if commit is None:
                raise HugoSiteError("version: %r is not a branch, tag or commit of repo %s"
                                    % (params["version"], params["repo"]))
            name = release_name(commit, options_hash)
        if not site.is_complete(name, commit, options_hash):
            site.fetch(ref, commit)
            site.checkout(commit)
            site.build(commit, name, options, options_hash, previous)
            built = True
        if name != previous:
            site.switch(name)

    active = name or previous
    kept, removed = site.plan_prune(active, params["keep_releases"],
                                    new=name if check and name and not up_to_date else None)
    if not check:
        site.prune(removed)

    if check:
        dest_after = "%s (%s, mode 0755)" % (site.dest, _user_desc(uid, gid)) if dirs_changed else dest_before
    else:
        dest_after = site.dest_state()
    if previous:
        current_before = "commit %s (release %s)" % (before_commit, site.release_path(previous))
    else:
        current_before = "(none)"
    if commit:
        current_after = "commit %s (release %s)" % (commit, site.release_path(name))
    else:
        current_after = "commit of version %r (known after fetching)" % params["version"]
    return dict(
        changed=dirs_changed or not up_to_date or bool(removed),
        built=built,
        commit=commit,
        release=site.release_path(name),
        previous_release=site.release_path(previous),
        current=site.current,
        releases=[site.release_path(n) for n in kept],
        diff=dict(before_header=site.current, after_header=site.current,
                  before=_describe(dest_before, current_before, before_releases),
                  after=_describe(dest_after, current_after, kept)),
    )
