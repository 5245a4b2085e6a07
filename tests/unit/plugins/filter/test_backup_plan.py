import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.pi.plugins.filter.backup_plan import FilterModule, backup_plan

SPECS = [
    {"name": "web", "uid": 2001, "image": "localhost/web:1"},                      # no data
    {"name": "notes", "uid": 2201, "data": {"paths": ["data"], "sqlite": ["data/notes.db"],
                                            "pre_backup": ["notes-dump"]}},
    {"name": "cache", "uid": 2202, "data": {"pre_backup": ["true"]}},              # nothing to save
    {"name": "db", "uid": "2203", "data": {"volumes": ["pg"]}},
]


def test_backup_entries_skip_specs_without_data():
    plan = backup_plan(SPECS)
    assert [entry["name"] for entry in plan] == ["notes", "db"]
    assert plan[0] == dict(name="notes", uid=2201, home="/home/notes", paths=["/home/notes/data"],
                           sqlite=["/home/notes/data/notes.db"], pre_backup=["notes-dump"])
    assert plan[1]["uid"] == 2203
    assert plan[1]["paths"] == ["/home/db/.local/share/containers/storage/volumes/pg/_data"]


def test_restore_entries_are_the_modules_options():
    plan = backup_plan(SPECS, "restore")
    assert plan == [
        dict(name="notes", uid=2201, paths=["/home/notes/data"], sqlite=["/home/notes/data/notes.db"]),
        dict(name="db", uid=2203, paths=["/home/db/.local/share/containers/storage/volumes/pg/_data"], sqlite=[]),
    ]


def test_empty_and_registered():
    assert backup_plan(None) == [] and backup_plan([]) == []
    assert FilterModule().filters()["backup_plan"] is backup_plan


@pytest.mark.parametrize("bad,var,message", [
    ({"name": "x", "uid": 1, "data": {"paths": ["/etc"]}}, "service_specs",
     "service_specs[2].data.paths[0]: /etc is not a path of one service's data"),
    ({"name": "x", "uid": 1, "data": {"paths": ["ok"], "volumes": ["a/b"]}}, "specs",
     "specs[2].data.volumes[0]: 'a/b' is not a podman volume name"),
    ({"name": "x", "uid": 1, "data": {"sqlite": ["."]}}, "service_specs",
     "service_specs[2].data.sqlite[0]: /home/x is not a path"),
    ({"uid": 1, "data": {"paths": ["d"]}}, "service_specs", "service_specs[2].name: required with data"),
    ({"name": "x", "uid": None, "data": {"paths": ["d"]}}, "service_specs", "service_specs[2].uid: required with data"),
])
def test_errors_name_their_field(bad, var, message):
    specs = [SPECS[1], SPECS[0], bad]
    with pytest.raises(AnsibleFilterError) as info:
        backup_plan(specs, "backup", var)
    assert message in str(info.value)


def test_unknown_purpose():
    with pytest.raises(AnsibleFilterError, match="purpose must be backup or restore"):
        backup_plan(SPECS, "archive")


def test_a_non_numeric_uid_is_named():
    with pytest.raises(AnsibleFilterError, match=r"^service_specs\[0\]\.uid: 'x' is not an integer"):
        backup_plan([{"name": "notes", "uid": "x", "data": {"paths": ["data"]}}])
