# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one way to fail.

module_utils raise one of these; only a module's ``main()`` (or a host
program's ``main()``) turns it into ``fail_json`` or an exit code, with
:func:`fail_module`. A message is one sentence and starts with the field at
fault when there is one (``services[2].publish_ports[0]: ...``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class SelfhostError(Exception):
    """Base class. ``field`` names the option at fault; ``details`` go to fail_json as keys."""

    def __init__(self, msg, field=None, **details):
        self.field = field
        self.details = details
        self.msg = "%s: %s" % (field, msg) if field else msg
        super(SelfhostError, self).__init__(self.msg)

    def __str__(self):
        return self.msg


class ValidationError(SelfhostError, ValueError):
    """Input rejected before the host changes (also a ValueError, for filters that catch those)."""


class CommandError(SelfhostError):
    """A command the host ran failed; ``details`` carry cmd, rc, stdout and stderr."""


class UnsafePathError(SelfhostError):
    """A path that a service user (so its container) can write is not what root may touch:
    a symbolic link, another owner, or not a regular file or directory."""


class HostStateError(SelfhostError):
    """The host is not in a state the step can work from (a missing tool, a manager not running)."""


def fail_module(module, exc, **result):
    """Report ``exc`` through ``module.fail_json`` with its details and ``result`` keys."""
    kwargs = dict(result)
    kwargs.update(getattr(exc, "details", {}) or {})
    module.fail_json(msg=str(exc), **kwargs)
