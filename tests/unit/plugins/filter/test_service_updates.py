from ansible_collections.selfhost.pi.plugins.filter.service_updates import service_updates


def test_services_and_pods_that_update_an_image():
    specs = [
        {"name": "a", "uid": 2001, "image": "localhost/a:1", "auto_update": "local", "update_window": {"deny": ["x"]},
         "update_webhook_secret": "never-returned"},
        {"name": "b", "uid": 2002, "image": "localhost/b:1"},
        {"name": "p", "uid": 2003, "containers": [{"name": "db", "image": "localhost/db:1"},
                                                  {"name": "app", "image": "localhost/app:1", "auto_update": "local"}]},
        {"name": "q", "uid": 2004, "containers": [{"name": "db", "image": "localhost/db:1"}]},
    ]
    assert service_updates(specs) == [{"name": "a", "uid": 2001, "update_window": {"deny": ["x"]}, "members": []},
                                      {"name": "p", "uid": 2003, "update_window": {},
                                       "members": ["p-db.service", "p-app.service"]}]
