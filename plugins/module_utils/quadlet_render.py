# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Quadlet unit files as text: render them and name them. Pure functions, no host access.

* ``render(unit_type, unit, options, service, install)`` turns structured
  options (Quadlet's own key names) into deterministic unit-file text.
* ``check_name(name, unit_type)`` refuses a base name Quadlet cannot use.
* ``service_name(name, unit_type, options)`` is the systemd service Quadlet
  generates for a unit (podman-systemd.unit(5)); ``service_name_from_content``
  reads it from an installed file.

Converging a unit on the host (dry run, file, systemd) is ``quadlet.py``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.module_utils.six import string_types

from ansible_collections.selfhost.pi.plugins.module_utils.errors import ValidationError

UNIT_TYPES = ("container", "pod", "volume", "network", "kube", "image", "build")
# The section of each type's own options, e.g. [Container].
SECTIONS = dict((t, t.capitalize()) for t in UNIT_TYPES)
# Suffix Quadlet adds to NAME for the generated service (podman-systemd.unit(5)).
SERVICE_SUFFIX = {"container": "", "kube": "", "pod": "-pod", "volume": "-volume",
                  "network": "-network", "image": "-image", "build": "-build"}

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.@-]*$")
KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
DICT_KEY_RE = re.compile(r"^[^\s=\"'\\]+$")

HEADER = "# Managed by Ansible (selfhost.pi.quadlet). Local changes will be overwritten.\n"


# ---------------------------------------------------------------- rendering

def _scalar(field, value):
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = str(value)
    elif isinstance(value, string_types):
        text = value
    else:
        raise ValidationError("expected a string, number or boolean, got %s" % type(value).__name__, field=field)
    if "\n" in text or "\r" in text:
        raise ValidationError("value contains a newline", field=field)
    if text.endswith("\\"):
        raise ValidationError("value ends with a backslash, which would join the next line", field=field)
    return text


def _quote_word(text):
    """Quote ``text`` as one word for systemd/Quadlet word splitting when needed."""
    if text and not re.search(r"[\s\"'\\]", text):
        return text
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')


def _render_entries(key, value, field):
    """The ``Key=value`` lines for one option (none for null or an empty list)."""
    if value is None:
        return []
    if isinstance(value, dict):
        lines = []
        for item_key, item_value in value.items():
            item_field = "%s.%s" % (field, item_key)
            if not DICT_KEY_RE.match(item_key):
                raise ValidationError("the name must be non-empty without whitespace, quotes, '=' or '\\'",
                                      field=item_field)
            if item_value is None:
                continue
            # Dict values are literal: systemd would expand % specifiers (%h, %s, ...) in them.
            literal = _scalar(item_field, item_value).replace("%", "%%")
            lines.append("%s=%s" % (key, _quote_word("%s=%s" % (item_key, literal))))
        return lines
    if isinstance(value, (list, tuple)):
        return ["%s=%s" % (key, _scalar("%s[%d]" % (field, index), item))
                for index, item in enumerate(value) if item is not None]
    return ["%s=%s" % (key, _scalar(field, value))]


def render_section(section, entries, field):
    """Lines of one ``[section]``; ``field`` names it in errors (e.g. ``options``)."""
    if not isinstance(entries, dict):
        raise ValidationError("expected a dictionary of Quadlet keys", field=field)
    lines = ["[%s]" % section]
    for key, value in entries.items():
        if not KEY_RE.match(key):
            raise ValidationError("invalid key, it must match %s" % KEY_RE.pattern, field="%s.%s" % (field, key))
        lines.extend(_render_entries(key, value, "%s.%s" % (field, key)))
    return lines


def render(unit_type, unit=None, options=None, service=None, install=None, header=HEADER):
    """The unit file text: [Unit], [<Type>], [Service], [Install] in that order.

    Keys keep the order they were given in; empty sections other than the
    type's own are left out. Raises ValidationError on bad input.
    """
    if unit_type not in SECTIONS:
        raise ValidationError("must be one of %s" % ", ".join(UNIT_TYPES), field="type")
    blocks = []
    for section, entries, field in (("Unit", unit, "unit"), (SECTIONS[unit_type], options, "options"),
                                    ("Service", service, "service"), ("Install", install, "install")):
        if entries or field == "options":
            blocks.append("\n".join(render_section(section, entries or {}, field)) + "\n")
    return (header or "") + "\n".join(blocks)


# ---------------------------------------------------------------- naming

def check_name(name, unit_type):
    """Raise ValidationError unless ``name`` is a usable unit base name."""
    if not NAME_RE.match(name or ""):
        raise ValidationError("%r is not a valid unit name, it must match %s" % (name, NAME_RE.pattern), field="name")
    if name.endswith("." + unit_type):
        raise ValidationError("give the base name without the .%s suffix" % unit_type, field="name")


def service_name(name, unit_type, options=None):
    """The service Quadlet generates for NAME.TYPE; ``ServiceName=`` overrides."""
    explicit = (options or {}).get("ServiceName")
    if explicit:
        return "%s.service" % explicit
    return "%s%s.service" % (name, SERVICE_SUFFIX[unit_type])


def service_name_from_content(name, unit_type, content):
    """service_name() for an installed unit file's text (honours its ServiceName=)."""
    section, options = None, {}
    for line in (content or "").splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif section == SECTIONS[unit_type] and line.startswith("ServiceName="):
            options["ServiceName"] = line.split("=", 1)[1].strip()
    return service_name(name, unit_type, options)
