"""The maintenance-window rules shared by the controller's checks and the update runner on the host."""
import datetime

import pytest

from ansible_collections.selfhost.pi.plugins.filter.update_window_events import update_window_events
from ansible_collections.selfhost.pi.plugins.module_utils import update_window as uw

SUN_0400 = datetime.datetime(2026, 11, 22, 4, 0)   # a Sunday
MON_0630 = datetime.datetime(2026, 11, 23, 6, 30)


@pytest.mark.parametrize("window,when,expected", [
    (None, SUN_0400, True),
    ({}, SUN_0400, True),
    ({"allow": ["Sun 03:00-05:00"]}, SUN_0400, True),
    ({"allow": ["Sun 03:00-05:00"]}, MON_0630, False),
    ({"allow": ["Sun 03:00-04:00"]}, SUN_0400, False),          # the end is exclusive
    ({"deny": ["06:00-07:30"]}, MON_0630, False),
    ({"deny": ["06:00-07:30"]}, SUN_0400, True),
    ({"allow": ["Sat 23:00-04:30"]}, SUN_0400, True),            # past midnight: the day after Sat
    ({"allow": ["Sun 23:00-04:30"]}, SUN_0400, False),
    ({"allow": ["Mon-Fri 00:00-24:00"]}, SUN_0400, False),
    ({"allow": ["Fri-Mon 00:00-24:00"]}, SUN_0400, True),        # ranges wrap around the week
    ({"allow": ["sat,sun 00:00-24:00"], "deny": ["03:30-04:30"]}, SUN_0400, False),
])
def test_is_open(window, when, expected):
    assert uw.is_open(window, when) is expected


@pytest.mark.parametrize("entry,message", [
    ("06:00", "is not [DAYS ]HH:MM-HH:MM"),
    ("Sun 03:00-03:00", "is empty"),
    ("24:00-01:00", "'24:00' is not a time"),
    ("Sun-Funday 01:00-02:00", "is not a day"),
    ("01:60-02:00", "'01:60' is not a time"),
])
def test_bad_entries_name_the_field(entry, message):
    errors = uw.validate({"deny": ["06:00-07:30", entry]}, "services[0].update_window")
    assert len(errors) == 1
    assert errors[0].startswith("services[0].update_window.deny[1]: ")
    assert message in errors[0]


def test_validate_shapes():
    assert uw.validate(None) == []
    assert uw.validate("06:00-07:00") == ["update_window: must be a dict with allow and/or deny lists"]
    assert uw.validate({"allow": "06:00-07:00"})[0].startswith("update_window.allow: must be a list")


def test_calendar_events_fire_when_the_window_opens():
    assert uw.calendar_events(None) == ["daily"]
    assert uw.calendar_events({"allow": ["Sun 03:00-05:00", "Sat,Sun 03:00-05:00"], "deny": ["22:00-01:00"]}) == [
        "daily", "Sun *-*-* 03:00:00", "Sat,Sun *-*-* 03:00:00", "*-*-* 01:00:00"]
    assert uw.calendar_events({"deny": ["Fri 23:00-01:00"]}) == ["daily", "Sat *-*-* 01:00:00"]


def test_filter_refuses_a_bad_window():
    with pytest.raises(Exception, match="update_window.allow.0.: '7' is not"):
        update_window_events({"allow": ["7"]})
