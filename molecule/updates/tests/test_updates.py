"""Push-to-deploy and image updates, end to end on the test host (issue 4).

Real webhook, nginx, systemd path/timer units, git, hugo, podman and
docker-registry; the tests only push (git, podman push), send signed
requests (/usr/local/bin/send-hook, from prepare.yml) and look.

The tests run in file order and share the host's state: the blog moves
forward commit by commit, the app goes v1 -> v2 -> (v3 rolled back) -> v1.

"Time" is simulated by configuration: the update runner reads the window
from /etc/selfhost-pi/updates/app.json; the tests rewrite it to put now
outside or inside, then start the timer's service as the timer would.
"""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import PROJECT, fetch

BLOG_SECRET = "blog-hook-secret-for-molecule"
APP_SECRET = "app-hook-secret-for-molecule"
PUSH = json.dumps({"ref": "refs/heads/main"})
REQUESTS = "/var/lib/selfhost-pi/requests"
BUILD = "selfhost-blog-build.service"
UPDATE = "selfhost-update-app.service"
APP_CONFIG = "/etc/selfhost-pi/updates/app.json"
HOOKS_URL = "https://hooks.updates.test"   # webhook_tls: internal; /etc/hosts points the name at the host
CA_ROOT = "/etc/selfhost-pi/ca/ca.crt"


def wait(what, check, timeout=120, step=0.5):
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            pytest.fail("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(step)


def sh(node, script):
    cmd = node.run("sh -ec %s", script)
    assert cmd.rc == 0, "%s\n%s%s" % (script, cmd.stdout, cmd.stderr)
    return cmd.stdout


def cursor(node):
    out = sh(node, "journalctl -n 0 --show-cursor -q")
    return out.strip().split("cursor: ", 1)[1]


def journal(node, unit, since):
    return node.run("journalctl -u %s --after-cursor %s -o cat --no-pager", unit, since).stdout


def hook(node, hook_id, secret, body, style="github", count=1):
    out = sh(node, "send-hook %s %s '%s' --style %s --count %d --url %s --cafile %s"
             % (hook_id, secret, body, style, count, HOOKS_URL, CA_ROOT))
    return [int(line) for line in out.split()]


def idle(node, unit):
    state = node.run("systemctl show -P ActiveState %s", unit).stdout.strip()
    return state in ("inactive", "failed")


def push_commit(node, message, change="echo '%s' >> content/posts/pushed.md"):
    """Commit in root's working copy and push to the bare repository the blog follows; return the SHA."""
    script = ("cd /root/blog-work && [ -f content/posts/pushed.md ] || printf -- '---\\ntitle: Pushed\\n---\\n' "
              "> content/posts/pushed.md; " + (change % message if "%s" in change else change)
              + " && git add -A && git -c user.name=t -c user.email=t@l commit -qm '%s' && git push -q origin main"
              " && git rev-parse HEAD" % message)
    return sh(node, script).strip()


def current_commit(node):
    marker = sh(node, "cat \"/srv/blog/$(readlink /srv/blog/current).json\"")
    return json.loads(marker)["commit"]


APP_GET = (
    "import urllib.request\n"
    "try:\n"
    "    print(urllib.request.urlopen('http://127.0.0.1:9101/', timeout=5).read().decode())\n"
    "except Exception as exc:\n"
    "    print('error', exc)\n"
)


def app_version(node):
    """The version the service answers with (directly on its published port), or None."""
    cmd = node.run("python3 -c %s", APP_GET)
    for version in ("v1", "v2", "v3"):
        if "app %s" % version in cmd.stdout:
            return version
    return None


def set_window(node, window):
    config = json.loads(node.file(APP_CONFIG).content_string)
    config["window"] = window
    sh(node, "printf '%%s\\n' '%s' > %s" % (json.dumps(config), APP_CONFIG))


def registry_push(node, version):
    sh(node, "podman push -q --tls-verify=false localhost:5000/selfhost-upd:%s "
             "docker://localhost:5000/selfhost-upd:stable" % version)


# -- the webhook receiver -------------------------------------------------------
def test_webhook_runs_unprivileged(node):
    assert node.service("selfhost-webhook.service").is_running
    assert node.run("systemctl is-enabled webhook.service").stdout.strip() == "masked"
    pid = node.run("systemctl show -P MainPID selfhost-webhook.service").stdout.strip()
    assert node.run("ps -o user= -p %s", pid).stdout.strip() == "webhook"
    hooks = node.file("/etc/selfhost-pi/webhook/hooks.json")
    assert (hooks.user, hooks.group, hooks.mode) == ("root", "webhook", 0o640)
    ids = [h["id"] for h in json.loads(hooks.content_string)]
    assert sorted(ids) == ["blog", "update-app"]


def test_hooks_go_over_https(node):
    """Plain HTTP only redirects (and runs nothing); the hook site's certificate is the host CA's."""
    code = node.run("curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -X POST -H 'Host: hooks.updates.test'"
                    " --data '{}' http://127.0.0.1/hooks/blog").stdout
    assert code == "301 https://hooks.updates.test/hooks/blog", code
    verify = node.run("echo | openssl s_client -connect 127.0.0.1:443 -servername hooks.updates.test -CAfile %s 2>&1"
                      % CA_ROOT).stdout
    assert "Verify return code: 0 (ok)" in verify, verify


def test_bad_signatures_get_403_and_run_nothing(node):
    since = cursor(node)
    assert hook(node, "blog", BLOG_SECRET, PUSH, style="wrong") == [403]
    assert hook(node, "blog", BLOG_SECRET, PUSH, style="none") == [403]
    assert hook(node, "blog", "not-the-secret", PUSH, style="gitea") == [403]
    assert hook(node, "update-app", "not-the-secret", "{}", style="forgejo") == [403]
    assert hook(node, "update-app", APP_SECRET, "{}", style="none") == [403]
    # Signed, but for another branch: the trigger rule's ref match refuses it as well.
    assert hook(node, "blog", BLOG_SECRET, json.dumps({"ref": "refs/heads/dev"})) == [403]
    time.sleep(2)
    assert sh(node, "find %s -type f | wc -l" % REQUESTS).strip() == "0"
    assert "Starting" not in journal(node, BUILD, since)
    assert "Starting" not in journal(node, UPDATE, since)


# -- blog: push to deploy -------------------------------------------------------
def test_signed_push_rebuilds_the_blog(node):
    commit = push_commit(node, "first pushed post")
    assert current_commit(node) != commit
    assert hook(node, "blog", BLOG_SECRET, PUSH) == [200]
    wait("the blog to serve %s" % commit, lambda: current_commit(node) == commit)
    status, body = fetch(node, "blog.updates.test", "/posts/pushed/")
    assert status == 200 and "Pushed" in body
    release = node.file("/srv/blog/current")
    assert release.user == "blog"


def test_rebuild_matches_the_module(node):
    """The push-triggered build made exactly what selfhost.pi.hugo_site makes: the module changes nothing."""
    params = json.loads(node.file("/etc/selfhost-pi/blog-build.json").content_string)
    params = " ".join("%s=%s" % (key, json.dumps(value) if isinstance(value, bool) else value)
                      for key, value in params.items())
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(PROJECT, ".build", "collections"),
               ANSIBLE_CONFIG=os.path.join(PROJECT, "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible"), "-i", os.environ["MOLECULE_INVENTORY_FILE"],
           "selfhost-updates", "-b", "-m", "selfhost.pi.hugo_site", "-a", params]
    result = subprocess.run(cmd, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "\n    changed: false\n" in result.stdout, result.stdout


def test_a_burst_of_pushes_builds_once(node):
    since = cursor(node)
    last = None
    for number in range(20):
        last = push_commit(node, "burst %d" % number)
    statuses = hook(node, "blog", BLOG_SECRET, PUSH, style="gitea", count=20)
    assert statuses == [200] * 20
    wait("the blog to serve %s" % last, lambda: current_commit(node) == last)
    wait("the build to finish", lambda: idle(node, BUILD) and sh(node, "ls -A %s/blog | wc -l" % REQUESTS).strip() == "0")
    time.sleep(1)
    wait("the build to finish", lambda: idle(node, BUILD))
    log = journal(node, BUILD, since)
    assert log.count("built commit") == 1, log
    assert log.count("Starting selfhost-blog-build") <= 2, log


def test_a_failed_build_keeps_the_site(node):
    good = current_commit(node)
    since = cursor(node)
    broken = push_commit(node, "broken template", change="echo '{{ .Broken ' > layouts/_default/single.html")
    assert hook(node, "blog", BLOG_SECRET, PUSH) == [200]
    wait("the failed build", lambda: "Failed with result" in journal(node, BUILD, since))
    log = journal(node, BUILD, since)
    assert "build failed" in log and broken in log, log
    assert current_commit(node) == good
    status, body = fetch(node, "blog.updates.test", "/posts/pushed/")
    assert status == 200
    # Repair it, so the state after this test is a good site again.
    fixed = push_commit(node, "repair", change="git checkout HEAD~1 -- layouts/_default/single.html")
    assert hook(node, "blog", BLOG_SECRET, PUSH) == [200]
    wait("the blog to serve %s" % fixed, lambda: current_commit(node) == fixed)


# -- images: update, roll back, window ------------------------------------------
def test_signed_hook_updates_the_image(node):
    set_window(node, {"allow": ["00:00-24:00"]})
    assert app_version(node) == "v1"
    registry_push(node, "v2")
    assert hook(node, "update-app", APP_SECRET, "{}") == [200]
    wait("v2 to answer", lambda: app_version(node) == "v2", timeout=180)
    wait("the update to finish", lambda: idle(node, UPDATE), timeout=180)
    status, body = fetch(node, "app.updates.test")
    assert status == 200 and "app v2" in body


def test_an_unhealthy_image_is_rolled_back(node):
    since = cursor(node)
    registry_push(node, "v3")
    assert hook(node, "update-app", APP_SECRET, "{}") == [200]
    wait("the update to end", lambda: "update FAILED" in journal(node, UPDATE, since) and idle(node, UPDATE),
         timeout=240)
    assert "rolled back" in journal(node, UPDATE, since)
    wait("the unit to be active again", lambda: node.run(
        "systemctl --user -M app@ is-active app.service").stdout.strip() == "active", timeout=120)
    assert app_version(node) == "v2"


def test_a_request_outside_the_window_waits_for_it(node):
    registry_push(node, "v1")
    # "now" is outside: deny the whole day.
    set_window(node, {"deny": ["00:00-24:00"]})
    since = cursor(node)
    assert hook(node, "update-app", APP_SECRET, "{}") == [200]
    wait("the request to be queued", lambda: "request queued" in journal(node, UPDATE, since))
    wait("the runner to end", lambda: idle(node, UPDATE))
    time.sleep(3)
    assert app_version(node) == "v2"
    assert node.file("/var/lib/selfhost-pi/updates/app.pending").exists
    assert "running podman auto-update" not in journal(node, UPDATE, since)
    # The window opens: the timer's run (started here instead of waiting for OnCalendar) applies the request.
    set_window(node, {"allow": ["00:00-24:00"]})
    sh(node, "systemctl start %s" % UPDATE)
    wait("v1 to answer", lambda: app_version(node) == "v1", timeout=180)
    assert not node.file("/var/lib/selfhost-pi/updates/app.pending").exists


def test_the_timer_fires_when_the_window_opens(node):
    timer = node.run("systemctl cat selfhost-update-app.timer").stdout
    assert "OnCalendar=daily" in timer and "OnCalendar=*-*-* 07:30:00" in timer  # the end of deny 06:00-07:30
    assert node.run("systemctl is-active selfhost-update-app.timer selfhost-update-app.path").stdout.split() == [
        "active", "active"]
    # podman's own timer would bypass the window; it stays off.
    user = node.run("systemctl --user -M app@ is-enabled podman-auto-update.timer").stdout.strip()
    assert user in ("disabled", "")


def test_secrets_stay_out_of_the_journal(node):
    for secret in (BLOG_SECRET, APP_SECRET):
        assert node.run("journalctl --no-pager -o cat | grep -c -- %s", secret).stdout.strip() == "0"
