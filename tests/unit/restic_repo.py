"""A real restic repository in a temporary directory, for the tests of the backup and restore code.

``Repo`` copies one repository initialized per session (restic init derives
its key for about a second), writes a ``selfhost-restic``-like wrapper that
knows the repository and its password file, and backs up trees with the
tags, host name and time the backup program gives them.

Debian 12 (where CI and these tests run) ships restic 0.14; the hosts run
0.17+, whose exit codes 10 (no repository) and 12 (wrong password) 0.14 does
not have. ``exit_code_shim()`` is the one stand-in: a wrapper around the
real restic that turns 0.14's messages for those two cases into 0.17's exit
codes, and passes everything else (and any 0.17+ restic) through unchanged.
The selfhost-restic stand-in also drops ``--retry-lock`` (0.16+) for 0.14.
"""
import json
import os
import shutil
import subprocess

import pytest

RESTIC = shutil.which("restic")
needs_restic = pytest.mark.skipif(RESTIC is None, reason="restic is not installed (apt-get install restic)")
PASSWORD = "correct horse battery staple"
# The backup program passes --retry-lock (restic 0.16+); the wrapper drops it for an older restic.
DROP_RETRY_LOCK = """skip=
for arg do
  shift
  if [ -n "$skip" ]; then skip=; continue; fi
  if [ "$arg" = --retry-lock ]; then skip=1; continue; fi
  set -- "$@" "$arg"
done
"""


def restic_version():
    out = subprocess.run([RESTIC, "version"], capture_output=True, text=True, check=True).stdout
    return tuple(int(part) for part in out.split()[1].split(".")[:2])


def write_script(path, text):
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o755)
    return str(path)


@pytest.fixture(scope="session")
def repo_template(tmp_path_factory):
    base = tmp_path_factory.mktemp("restic-template")
    (base / "password").write_text(PASSWORD + "\n")
    env = dict(os.environ, RESTIC_REPOSITORY=str(base / "repo"), RESTIC_PASSWORD_FILE=str(base / "password"),
               RESTIC_CACHE_DIR=str(base / "cache"))
    subprocess.run([RESTIC, "init", "-q"], env=env, check=True, capture_output=True)
    return base


class Repo(object):
    """One test's repository (a copy of the template) and the wrapper that runs restic on it."""

    def __init__(self, template, root):
        self.root = root
        self.path = str(root / "repo")
        shutil.copytree(str(template / "repo"), self.path)
        self.password_file = str(template / "password")
        self.env = dict(RESTIC_REPOSITORY=self.path, RESTIC_PASSWORD_FILE=self.password_file,
                        RESTIC_CACHE_DIR=str(root / "cache"))
        # As /usr/local/sbin/selfhost-restic: the repository and password come from files, not argv.
        self.wrapper = write_script(root / "selfhost-restic", "#!/bin/sh\n" + "".join(
            "export %s='%s'\n" % item for item in sorted(self.env.items())) + (
            "" if restic_version() >= (0, 16) else DROP_RETRY_LOCK) + 'exec %s "$@"\n' % RESTIC)

    def restic(self, *args):
        proc = subprocess.run([RESTIC] + list(args), env=dict(os.environ, **self.env), capture_output=True,
                              text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def backup(self, paths, service, hostname="pi", time="2026-01-01 00:00:00"):
        """``restic backup`` of ``paths`` as the backup program tags it; return the snapshot's (short) ID."""
        out = self.restic("backup", "--json", "--host", hostname, "--tag", "selfhost-pi", "--tag",
                          "service:" + service, "--time", time, *paths)
        summary = [json.loads(line) for line in out.splitlines() if '"summary"' in line][-1]
        return summary["snapshot_id"]  # restic 0.14 prints the short ID, 0.17+ the full one

    def snapshots(self, *args):
        return json.loads(self.restic("snapshots", "--json", *args))

    def add(self, service, tree, time="2026-01-01 00:00:00", hostname="pi"):
        """A snapshot holding ``tree`` (absolute path -> file content, or {name: content} for a directory).

        The tree is written at its absolute paths for the backup and taken away
        again after it (what was there before is put back): the host looks as
        the test made it, and the repository holds the snapshot.
        """
        held, made = [], []
        for path in tree:
            if os.path.lexists(path):
                os.rename(path, path + ".held-by-test")
                held.append(path)
            top = path
            while not os.path.lexists(os.path.dirname(top)):
                top = os.path.dirname(top)
            made.append(top)
            if isinstance(tree[path], dict):
                os.makedirs(path)
                for name, text in tree[path].items():
                    with open(os.path.join(path, name), "w") as handle:
                        handle.write(text)
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as handle:
                    handle.write(tree[path])
        snap_id = self.backup(sorted(tree), service, hostname=hostname, time=time)
        for top in made:
            if os.path.isdir(top) and not os.path.islink(top):
                shutil.rmtree(top)
            elif os.path.lexists(top):
                os.unlink(top)
        for path in held:
            os.rename(path + ".held-by-test", path)
        return snap_id

    def exit_code_shim(self, real=None):
        """A restic command with 0.17's exit codes 10 and 12 (a stand-in only where the restic here is older)."""
        real = real or RESTIC
        if restic_version() >= (0, 17):
            return real
        shim = self.root / "restic-0.17-codes"
        if shim.exists():
            return str(shim)
        return write_script(shim, """#!/bin/sh
# restic 0.14 exits 1 for both; restic 0.17+ exits 10 (no repository) and 12 (wrong password).
# (Only a local repository's missing config file is "no repository" here.)
err=$(mktemp)
%s "$@" 2>"$err"
rc=$?
cat "$err" >&2
if [ $rc -eq 1 ] && grep -q 'unable to open config file: .*no such file or directory' "$err"; then rc=10; fi
if [ $rc -eq 1 ] && grep -q 'wrong password or no key found' "$err"; then rc=12; fi
rm -f "$err"
exit $rc
""" % real)


@pytest.fixture
def repo(repo_template, tmp_path):
    if RESTIC is None:
        pytest.skip("restic is not installed (apt-get install restic)")
    return Repo(repo_template, tmp_path)
