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
