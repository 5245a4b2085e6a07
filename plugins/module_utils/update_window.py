# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance windows of a service's image updates (``update_window``).

A window is a dict with ``allow`` and/or ``deny``, each a list of entries
``[DAYS ]HH:MM-HH:MM`` in the host's local time:

* DAYS: ``Mon`` .. ``Sun``, comma-separated, ranges allowed (``Mon-Fri``,
  ``Sat,Sun``); without DAYS the entry holds every day.
* ``HH:MM-HH:MM``: start inclusive, end exclusive; ``24:00`` is the end of the
  day; an end at or before the start runs past midnight (the days name the
  day it starts).

An update may run when the time is inside an ``allow`` entry (or ``allow`` is
empty or absent) and inside no ``deny`` entry.

Pure Python without Ansible imports: the update runner installed on the host
(roles/service) imports this same file, so the controller's check and the
host's decision cannot disagree.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ENTRY_RE = re.compile(r"^(?:(?P<days>[A-Za-z,-]+)\s+)?(?P<start>\d{1,2}:\d{2})-(?P<end>\d{1,2}:\d{2})$")


def _minutes(text, allow_24=False):
    hours, minutes = (int(part) for part in text.split(":"))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not allow_24)):
        raise ValueError("%r is not a time HH:MM" % text)
    return hours * 60 + minutes


def _days(text):
    if text is None:
        return list(range(7))
    days = []
    for part in text.split(","):
        bounds = part.split("-")
        if len(bounds) > 2 or not all(b.capitalize() in DAYS for b in bounds):
            raise ValueError("%r is not a day (Mon..Sun), a list or a range of days" % part)
        first, last = (DAYS.index(b.capitalize()) for b in (bounds[0], bounds[-1]))
        day = first
        while True:
            days.append(day)
            if day == last:
                break
            day = (day + 1) % 7
    return sorted(set(days))


def parse_entry(entry):
    """Return (days, start_minute, end_minute) of one entry; raise ValueError naming what is wrong."""
    match = ENTRY_RE.match(str(entry).strip())
    if not match:
        raise ValueError("%r is not [DAYS ]HH:MM-HH:MM (for example 'Sun 03:00-05:00' or '06:00-07:30')" % (entry,))
    start = _minutes(match.group("start"))
    end = _minutes(match.group("end"), allow_24=True)
    if start == end:
        raise ValueError("%r is empty (start equals end)" % (entry,))
    return _days(match.group("days")), start, end


def validate(window, field="update_window"):
    """List of error messages, each naming ``field.allow[i]`` / ``field.deny[i]``."""
    if window in (None, {}):
        return []
    if not isinstance(window, dict):
        return ["%s: must be a dict with allow and/or deny lists" % field]
    errors = []
    for key in window:
        if key not in ("allow", "deny"):
            errors.append("%s: unknown key %r (use allow and/or deny)" % (field, key))
    for key in ("allow", "deny"):
        entries = window.get(key) or []
        if not isinstance(entries, list):
            errors.append("%s.%s: must be a list of '[DAYS ]HH:MM-HH:MM' entries" % (field, key))
            continue
        for index, entry in enumerate(entries):
            try:
                parse_entry(entry)
            except ValueError as exc:
                errors.append("%s.%s[%d]: %s" % (field, key, index, exc))
    return errors


def _inside(entry, weekday, minute):
    days, start, end = parse_entry(entry)
    if start < end:
        return weekday in days and start <= minute < end
    # Past midnight: the late part on a listed day, the early part on the day after one.
    return (weekday in days and minute >= start) or ((weekday - 1) % 7 in days and minute < end)


def is_open(window, when):
    """True when an update may run at ``when`` (a datetime in the host's local time)."""
    window = window or {}
    weekday, minute = when.weekday(), when.hour * 60 + when.minute
    allow = window.get("allow") or []
    if allow and not any(_inside(e, weekday, minute) for e in allow):
        return False
    return not any(_inside(e, weekday, minute) for e in window.get("deny") or [])


def calendar_events(window):
    """systemd ``OnCalendar=`` expressions (systemd.time(7)) at which the window opens, plus ``daily``.

    The update timer fires at each ``allow`` start and each ``deny`` end, so a
    queued request is applied the minute the window opens.
    """
    events = ["daily"]
    window = window or {}
    for key, pick in (("allow", 1), ("deny", 2)):
        for entry in window.get(key) or []:
            days, start, end = parse_entry(entry)
            minute = (start, end)[pick - 1] % (24 * 60)
            day_list = days
            if pick == 2 and end <= start:  # a deny window past midnight ends the next day
                day_list = sorted(set((d + 1) % 7 for d in days))
            prefix = "" if len(day_list) == 7 else ",".join(DAYS[d] for d in day_list) + " "
            event = "%s*-*-* %02d:%02d:00" % (prefix, minute // 60, minute % 60)
            if event not in events:
                events.append(event)
    return events
