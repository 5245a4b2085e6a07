#!/usr/bin/python3
"""Runs ON the benchmark host (copied there by tests/bench/update-hook.sh).

update-probe.py image ROUNDS SECRET   - per round: push the other good image as :stable (its layers were
                                        pulled beforehand, so the pull is excluded), send the signed hook,
                                        probe the service through nginx every 20 ms.
update-probe.py blog ROUNDS SECRET    - per round: push a blog commit, send the signed hook, poll the page.
Prints one line per round and a summary; asserts nothing.
"""
import hashlib
import hmac
import statistics
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


def get(host, path="/", timeout=2):
    req = urllib.request.Request("http://127.0.0.1" + path, headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""
    except Exception:  # connection refused, reset, timeout: a failed request
        return None, ""


def hook(hook_id, secret, body):
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    # The updates inventory serves the hooks over HTTPS (webhook_tls: internal); prepare.yml puts the name in /etc/hosts.
    req = urllib.request.Request("https://hooks.updates.test/hooks/" + hook_id, data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          "X-Hub-Signature-256": "sha256=" + digest})
    context = ssl.create_default_context(cafile="/etc/selfhost-pi/ca/ca.crt")
    with urllib.request.urlopen(req, timeout=10, context=context) as resp:
        assert resp.status == 200, resp.status


def sh(cmd):
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True).stdout.strip()


def unit_busy(unit):
    return sh("systemctl show -P ActiveState %s" % unit) not in ("inactive", "failed")


class Prober(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.total = self.failed = 0
        self.stop = False
        self.first = {}

    def run(self):
        while not self.stop:
            status, body = get("app.updates.test")
            self.total += 1
            if status != 200:
                self.failed += 1
            else:
                for version in ("v1", "v2"):
                    if "app %s" % version in body and version not in self.first:
                        self.first[version] = time.time()
            time.sleep(0.02)


def image(rounds, secret):
    times, fails, totals = [], [], []
    for number in range(rounds):
        status, body = get("app.updates.test")
        old = "v2" if "app v2" in body else "v1"
        new = "v1" if old == "v2" else "v2"
        sh("podman push -q --tls-verify=false localhost:5000/selfhost-upd:%s docker://localhost:5000/selfhost-upd:stable"
           % new)
        prober = Prober()
        prober.first[old] = 0
        prober.start()
        time.sleep(1)
        t0 = time.time()
        hook("update-app", secret, "{}")
        while new not in prober.first and time.time() - t0 < 300:
            time.sleep(0.01)
        time.sleep(0.5)
        while unit_busy("selfhost-update-app.service"):
            time.sleep(0.2)
        time.sleep(2)
        prober.stop = True
        prober.join()
        seconds = prober.first.get(new, float("nan")) - t0
        times.append(seconds)
        fails.append(prober.failed)
        totals.append(prober.total)
        print("image round %d: %s -> %s answering after %.2f s; failed requests %d of %d"
              % (number + 1, old, new, seconds, prober.failed, prober.total), flush=True)
    print("image hook path: median %.2f s from signed request to new version answering (pull excluded: layers "
          "pre-pulled); failed requests during updates %d of %d" % (statistics.median(times), sum(fails), sum(totals)))


def blog(rounds, secret):
    times = []
    for number in range(rounds):
        token = "bench-%d-%d" % (number, time.time())
        sh("cd /root/blog-work && printf -- '---\\ntitle: Bench\\n---\\n%s\\n' > content/posts/bench.md && git add -A && "
           "git -c user.name=b -c user.email=b@l commit -qm %s && git push -q origin main" % (token, token))
        t0 = time.time()
        hook("blog", secret, '{"ref":"refs/heads/main"}')
        while token not in get("blog.updates.test", "/posts/bench/")[1] and time.time() - t0 < 120:
            time.sleep(0.02)
        seconds = time.time() - t0
        times.append(seconds)
        print("blog round %d: new commit served after %.2f s" % (number + 1, seconds), flush=True)
        while unit_busy("selfhost-blog-build.service"):
            time.sleep(0.2)
    print("blog hook path: median %.2f s from signed push request to the new commit served" % statistics.median(times))


if __name__ == "__main__":
    {"image": image, "blog": blog}[sys.argv[1]](int(sys.argv[2]), sys.argv[3])
