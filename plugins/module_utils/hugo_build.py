# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hugo build of a site: its identity (options hash, release name) and the hugo command.

A build's identity is the commit plus :func:`build_hash` of
:func:`build_options` (base URL, environment, minify, drafts, extra
arguments and the first line of ``hugo version``). Release names and markers
of hosts already converged depend on it: change neither the keys nor their
values, or every host rebuilds.

hugo runs as the site's owner through the ``runner`` given (``hugo.AsOwner``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json

from ansible_collections.selfhost.pi.plugins.module_utils.errors import CommandError, HostStateError

ERROR_TAIL_LINES = 30
# hugo flags the module sets itself; extra_args may not repeat them.
CONTROLLED_FLAGS = (
    "-s", "--source", "-d", "--destination", "--cleanDestinationDir", "--noBuildLock",
    "--cacheDir", "-b", "--baseURL", "-e", "--environment", "--minify", "-D", "--buildDrafts",
    "-w", "--watch", "--renderToMemory",
)


def tail(text, lines=ERROR_TAIL_LINES):
    return "\n".join(text.strip().splitlines()[-lines:])


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


class HugoBuild(object):
    """``hugo`` with the site's options, run by ``runner`` (the owner)."""

    def __init__(self, runner, hugo, params, src, cache):
        self.runner = runner
        self.hugo = hugo
        self.params = params
        self.src = src
        self.cache = cache

    def version(self, cwd):
        """First line of ``hugo version``: part of the build identity, so a Hugo upgrade rebuilds."""
        rc, out, err = self.runner.run([self.hugo, "version"], cwd=cwd)
        if rc != 0 or not out.strip():
            raise HostStateError("'%s version' failed: %s" % (self.hugo, tail(err or out, 5)), field="hugo_path")
        return out.strip().splitlines()[0]

    def argv(self, destination):
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

    def run(self, destination, commit, previous):
        """Build ``commit`` (checked out in ``src``) into ``destination``.

        On failure CommandError says which commit failed and that ``current``
        still points at ``previous`` (a path, or None), with hugo's last lines.
        """
        timeout = self.params["timeout"]
        rc, out, err = self.runner.run(self.argv(destination), cwd=self.src, timeout=timeout)
        if rc == 0:
            return
        keep = "; current still points at %s" % (previous or "nothing")
        if rc is None:
            msg = "hugo build of commit %s timed out after %d seconds (timeout)%s" % (commit, timeout, keep)
        else:
            # hugo logs its ERROR lines to stdout, the final "Error:" to stderr.
            msg = "hugo build of commit %s failed (rc=%d)%s:\n%s" % (
                commit, rc, keep, tail("%s\n%s" % (out.strip(), err.strip())))
        raise CommandError(msg, commit=commit, stdout=tail(out), stderr=tail(err))
