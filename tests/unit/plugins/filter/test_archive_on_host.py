from ansible_collections.selfhost.pi.plugins.filter.archive_on_host import archive_on_host


def test_path_and_spec_agree():
    path = archive_on_host("/ctl/images/hello.tar", "/var/lib/selfhost-pi")
    assert path.startswith("/var/lib/selfhost-pi/") and path.endswith("-hello.tar")
    spec = archive_on_host({"name": "a", "image_archive": "/ctl/images/hello.tar"}, "/var/lib/selfhost-pi")
    assert spec["image_archive"] == path


def test_distinct_archives_with_one_basename_differ():
    assert archive_on_host("/a/x.tar", "/d") != archive_on_host("/b/x.tar", "/d")


def test_spec_without_archive_is_unchanged():
    spec = {"name": "a", "image": "registry.example/a:1"}
    assert archive_on_host(spec, "/d") is spec


def test_pod_members_archives_are_mapped_too():
    spec = {"name": "p", "containers": [{"name": "db", "image": "localhost/db:1", "image_archive": "/ctl/db.tar"},
                                        {"name": "app", "image": "registry.example/app:1"}]}
    mapped = archive_on_host(spec, "/d")
    assert mapped["containers"][0]["image_archive"] == archive_on_host("/ctl/db.tar", "/d")
    assert mapped["containers"][1] == spec["containers"][1]
    assert spec["containers"][0]["image_archive"] == "/ctl/db.tar"   # the input is not changed
