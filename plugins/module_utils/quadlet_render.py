# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Quadlet unit files as text: render them and name them. Pure functions, no host access.

* ``render(unit_type, unit, options, service, install)`` turns structured
  options (Quadlet's own key names) into deterministic unit-file text,
  escaping each value for the way Quadlet and systemd read it: literal in
  the type's own section (``%`` -> ``%%``, ``$`` -> ``$$``, specifiers kept
  only in SPECIFIER_KEYS), systemd syntax as given in [Unit], [Service] and
  [Install], dictionary items one literal word everywhere; control
  characters and a trailing backslash refused (ValidationError naming the
  field, e.g. ``options.Environment.FOO``).
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
#
# How a value is read (podman-systemd.unit(5), systemd.syntax(7), systemd.unit(5)
# "Specifiers", systemd.service(5) "Command lines"): Quadlet strips each line and
# joins it to the next when it ends in a backslash; it turns the keys of the
# type's own section into the podman command line of the generated ExecStart=,
# where systemd resolves %-specifiers and expands $VAR/${VAR} ($$ and %% are the
# literal characters); [Unit], [Service] and [Install] are copied to the service
# as they are, for systemd to read.

# Keys of the type's section whose values keep specifiers such as %h: host paths
# and the names of the unit's own resources (plus the raw podman arguments).
SPECIFIER_KEYS = frozenset((
    "Volume", "Mount", "EnvironmentFile", "Rootfs", "Yaml", "ConfigMap", "File", "AuthFile", "CertDir",
    "SeccompProfile", "ContainersConfModule", "Device", "ContainerName", "PodName", "VolumeName", "NetworkName",
    "PodmanArgs", "GlobalArgs"))
# Keys whose dictionary items Quadlet splits without unescaping (LookupAllStrv).
RAW_WORD_KEYS = frozenset(("Sysctl", "LogOpt", "AutoUpdate"))
# The specifiers systemd resolves (systemd.unit(5), systemd 252 to 257); another
# letter after % is an error for systemd, which then drops the whole setting.
SPECIFIER_LETTERS = frozenset("abcdfghijlmnopqrstuvwyABCDEGHIJLMNPRSTUVWY")
CONTROL_RE = re.compile(u"[\u0000-\u001f\u007f-\u009f\u2028\u2029]")


def _text(field, value):
    """``value`` as one line of text; ValidationError for any other type or a control character."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = str(value)
    elif isinstance(value, string_types):
        text = value
    else:
        raise ValidationError("expected a string, number or boolean, got %s" % type(value).__name__, field=field)
    control = CONTROL_RE.search(text)
    if control:
        if control.group() in "\n\r":
            raise ValidationError("value contains a newline", field=field)
        raise ValidationError("value contains the control character U+%04X" % ord(control.group()), field=field)
    return text


def _check_specifiers(field, text):
    """Refuse a '%' followed by a letter systemd does not resolve (it keeps '%' before anything else)."""
    index = text.find("%")
    while index != -1:
        following = text[index + 1:index + 2]
        if following == "%":
            index += 1
        elif following.isalpha() and following.isascii() and following not in SPECIFIER_LETTERS:
            raise ValidationError("%%%s is not a systemd specifier (systemd.unit(5)); write %%%% for a literal %%"
                                  % following, field=field)
        index = text.find("%", index + 1)


def _scalar(field, value, own=False, key=""):
    """One ``Key=`` value: written as given in [Unit]/[Service]/[Install]; literal for systemd in the type's
    own section (``own``), except for the specifiers of SPECIFIER_KEYS."""
    text = _text(field, value)
    if own:
        if key in SPECIFIER_KEYS:
            _check_specifiers(field, text)
        else:
            text = text.replace("%", "%%")
        text = text.replace("$", "$$")
    if text.rstrip().endswith("\\"):
        raise ValidationError("value ends with a backslash, which would join the next line", field=field)
    return text


def _quote_word(text):
    """Quote ``text`` as one word for systemd/Quadlet word splitting when needed."""
    if text and not re.search(r"[\s\"'\\]", text):
        return text
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')


def _item(parent, name, value, dollar, raw):
    """One dictionary item of option ``parent`` as a literal ``name=value`` word."""
    control = CONTROL_RE.search(name)
    if control:  # not in the field's name either
        raise ValidationError("the name %r contains the control character U+%04X" % (name, ord(control.group())),
                              field=parent)
    field = "%s.%s" % (parent, name)
    if not DICT_KEY_RE.match(name):
        raise ValidationError("the name must be non-empty without whitespace, quotes, '=' or '\\'", field=field)
    word = "%s=%s" % (name, _text(field, value))
    if raw and re.search(r"[\"\\]", word):
        raise ValidationError("Quadlet reads this key without unescaping: a backslash or a double quote "
                              "cannot be written", field=field)
    word = word.replace("%", "%%")
    if dollar:
        word = word.replace("$", "$$")
    return _quote_word(word)


def _render_entries(key, value, field, own=False):
    """The ``Key=value`` lines for one option (none for null or an empty list)."""
    if value is None:
        return []
    if isinstance(value, dict):
        # Literal: quoted as one word; '%' always (systemd resolves specifiers wherever these end up), and '$'
        # where systemd expands variables (the podman command line, and [Service] Exec*= lines).
        dollar = own or key.startswith("Exec")
        return ["%s=%s" % (key, _item(field, name, item, dollar, own and key in RAW_WORD_KEYS))
                for name, item in value.items() if item is not None]
    if isinstance(value, (list, tuple)):
        return ["%s=%s" % (key, _scalar("%s[%d]" % (field, index), item, own, key))
                for index, item in enumerate(value) if item is not None]
    return ["%s=%s" % (key, _scalar(field, value, own, key))]


def render_section(section, entries, field, own=False):
    """Lines of one ``[section]``; ``field`` names it in errors (e.g. ``options``); ``own``: the type's section."""
    if not isinstance(entries, dict):
        raise ValidationError("expected a dictionary of Quadlet keys", field=field)
    lines = ["[%s]" % section]
    for key, value in entries.items():
        if not KEY_RE.match(key):
            raise ValidationError("invalid key, it must match %s" % KEY_RE.pattern, field="%s.%s" % (field, key))
        lines.extend(_render_entries(key, value, "%s.%s" % (field, key), own))
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
            blocks.append("\n".join(render_section(section, entries or {}, field, field == "options")) + "\n")
    return (header or "") + "\n".join(blocks)


# ---------------------------------------------------------------- naming

def check_name(name, unit_type):
    """Raise ValidationError unless ``name`` is a usable unit base name."""
    if not NAME_RE.match(name or ""):
        raise ValidationError("%r is not a valid unit name, it must match %s" % (name, NAME_RE.pattern), field="name")
    if name.endswith("." + unit_type):
        raise ValidationError("give the base name without the .%s suffix" % unit_type, field="name")


def service_name(name, unit_type, options=None, field="options.ServiceName"):
    """The service Quadlet generates for NAME.TYPE; ``ServiceName=`` overrides.

    The name goes on systemctl's command line: one that is not a plain unit
    name (``-H host`` would be an option) raises ValidationError naming ``field``.
    """
    explicit = (options or {}).get("ServiceName")
    if explicit:
        if not NAME_RE.match(str(explicit)):
            raise ValidationError("%r is not a valid unit name, it must match %s" % (explicit, NAME_RE.pattern),
                                  field=field)
        return "%s.service" % explicit
    return "%s%s.service" % (name, SERVICE_SUFFIX[unit_type])


def service_name_from_content(name, unit_type, content, where="the installed unit"):
    """service_name() for an installed unit file's text (honours its ServiceName=, named ``where`` in errors)."""
    section, options = None, {}
    for line in (content or "").split("\n"):
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif section == SECTIONS[unit_type] and line.startswith("ServiceName="):
            options["ServiceName"] = line.split("=", 1)[1].strip()
    return service_name(name, unit_type, options, field="%s: ServiceName" % where)
