"""HTTPS for every site, end to end on the test host (issue 8).

Real nginx, certbot (webroot and dns-rfc2136), pebble as the ACME CA, bind9
for DNS-01 and community.crypto's internal CA; the clients are curl and
openssl s_client on the host, each told which root to trust.

The tests run in file order and share the host: check mode and the
no-CA-contact count first, then what clients see, then a forced renewal, and
last the CA going away (pebble stopped: it forgets its accounts and roots).
"""
import json
import re
import time

import pytest

ACME_SITES = ["blog.tls.test", "hooks.tls.test", "dns.tls.test"]
INTERNAL = "nas.home.arpa"
PEBBLE_ROOT = "/root/pebble-root.pem"
CA_ROOT = "/etc/selfhost-pi/ca/ca.crt"
PING_SECRET = "ping-hook-secret-for-molecule"


def sh(node, script):
    cmd = node.run("sh -ec %s", script)
    assert cmd.rc == 0, "%s\n%s%s" % (script, cmd.stdout, cmd.stderr)
    return cmd.stdout


def curl(node, url, *args):
    """curl on the host with every name resolved to 127.0.0.1; returns the command (rc, stdout)."""
    host = re.match(r"https?://([^/:]+)", url).group(1)
    resolve = "--resolve %s:443:127.0.0.1 --resolve %s:80:127.0.0.1" % (host, host)
    return node.run("curl -sS --max-time 10 %s %s %s" % (resolve, " ".join(args), "'%s'" % url))


def status(node, url, *args):
    cmd = curl(node, url, "-o /dev/null -w '%{http_code}'", *args)
    assert cmd.rc == 0, cmd.stderr
    return int(cmd.stdout)


def served_certificate(node, name, cafile):
    """(verify result, subjectAltName and serial text, serial) of what nginx presents for SNI ``name``."""
    connect = "echo | openssl s_client -connect 127.0.0.1:443 -servername %s -CAfile %s 2>&1" % (name, cafile)
    out = node.run(connect).stdout
    verify = re.search(r"Verify return code: (\d+ \([^)]*\))", out)
    facts = node.run(connect + " | openssl x509 -noout -serial -ext subjectAltName").stdout
    serial = re.search(r"serial=(\w+)", facts)
    assert verify and serial, out
    return verify.group(1), facts, serial.group(1)


def pebble_requests(node, path):
    """How many requests for ``path`` pebble logged since it last started (it forgets everything then)."""
    log = node.run("journalctl -u pebble.service -o cat --no-pager").stdout
    return str(log.split("Starting Pebble ACME server")[-1].count(path))


def recap(stdout):
    return [line for line in stdout.splitlines() if line.startswith("selfhost-tls") and "changed=" in line][-1]


@pytest.fixture(scope="module", autouse=True)
def pebble_root(node):
    """pebble's issuing root, from its management API (it makes a new one at each start)."""
    sh(node, "curl -sS --cacert /etc/pebble/cert.pem https://localhost:15000/roots/0 -o %s" % PEBBLE_ROOT)


# -- no change, no CA --------------------------------------------------------------
def test_check_mode_changes_nothing(node, run_playbook):
    orders = pebble_requests(node, "/order-plz")
    sites = sh(node, "cat /etc/nginx/sites-available/*.conf | sha256sum")
    result = run_playbook(check=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "changed=0" in recap(result.stdout), result.stdout[-3000:]
    assert sh(node, "cat /etc/nginx/sites-available/*.conf | sha256sum") == sites
    assert pebble_requests(node, "/order-plz") == orders
    assert "ping-hook-secret" not in result.stdout and "TAjDkBoSo8" not in result.stdout


def test_each_certificate_was_ordered_once(node):
    """converge issued three ACME certificates; the idempotence run (and check mode) asked the CA nothing."""
    assert pebble_requests(node, "/order-plz") == str(len(ACME_SITES))
    assert pebble_requests(node, "/sign-me-up") == "1"  # one ACME account


# -- what clients see --------------------------------------------------------------
@pytest.mark.parametrize("name", ACME_SITES)
def test_acme_sites_serve_https_with_their_name(node, name):
    verify, facts, dummy = served_certificate(node, name, PEBBLE_ROOT)
    assert verify == "0 (ok)", facts
    assert "DNS:%s" % name in facts
    assert node.file("/etc/letsencrypt/live/%s/privkey.pem" % name).exists


def test_the_blog_and_the_dns_01_service_answer_over_https(node):
    cmd = curl(node, "https://blog.tls.test/", "--cacert", PEBBLE_ROOT)
    assert cmd.rc == 0 and '<meta name="generator" content="Hugo' in cmd.stdout, cmd.stderr
    release = node.run("readlink -f /srv/blog/current").stdout.strip()
    assert '"base_url": "https://blog.tls.test/"' in node.file(release + ".json").content_string  # blog_base_url
    cmd = curl(node, "https://dns.tls.test/", "--cacert", PEBBLE_ROOT)
    assert cmd.rc == 0 and "Hello from a rootless Quadlet service" in cmd.stdout, cmd.stderr
    conf = node.file("/etc/letsencrypt/renewal/dns.tls.test.conf").content_string
    assert "authenticator = dns-rfc2136" in conf
    credentials = node.file("/etc/selfhost-pi/acme/rfc2136.ini")
    assert (credentials.user, credentials.mode) == ("root", 0o600)


def test_internal_ca_certificate_validates_with_its_root(node):
    verify, facts, dummy = served_certificate(node, INTERNAL, CA_ROOT)
    assert verify == "0 (ok)" and "DNS:%s" % INTERNAL in facts
    cmd = curl(node, "https://%s/" % INTERNAL, "--cacert", CA_ROOT, "-u 'family:open sesame'")
    assert cmd.rc == 0 and "Hello from a rootless Quadlet service" in cmd.stdout, cmd.stderr
    sh(node, "openssl verify -CAfile %s /etc/selfhost-pi/tls/%s/fullchain.pem" % (CA_ROOT, INTERNAL))
    key = node.file("/etc/selfhost-pi/ca/ca.key")
    assert (key.user, key.mode) == ("root", 0o600)
    # The root a device must trust, fetchable over plain HTTP from the LAN site.
    fetched = curl(node, "http://%s/.well-known/selfhost-pi-ca.crt" % INTERNAL).stdout
    assert fetched == node.file(CA_ROOT).content_string


def test_basic_auth_in_front_of_a_service(node):
    url = "https://%s/" % INTERNAL
    assert status(node, url, "--cacert", CA_ROOT) == 401
    assert status(node, url, "--cacert", CA_ROOT, "-u 'family:wrong'") == 401
    assert status(node, url, "--cacert", CA_ROOT, "-u 'family:open sesame'") == 200
    htpasswd = node.file("/etc/nginx/selfhost-htpasswd/nas")
    assert (htpasswd.user, htpasswd.group, htpasswd.mode) == ("root", "www-data", 0o640)


def test_http_redirects_to_https_except_the_challenge(node):
    cmd = curl(node, "http://blog.tls.test/posts/?page=2", "-o /dev/null -w '%{http_code} %{redirect_url}'")
    assert cmd.stdout == "301 https://blog.tls.test/posts/?page=2"
    assert status(node, "http://blog.tls.test/.well-known/acme-challenge/none") == 404
    assert status(node, "http://plain.tls.test/") == 200  # tls: off stays plain HTTP, not redirected


def test_hsts_and_no_version_in_the_server_header(node):
    headers = curl(node, "https://blog.tls.test/", "--cacert", PEBBLE_ROOT, "-D - -o /dev/null").stdout.lower()
    assert "strict-transport-security: max-age=63072000\r\n" in headers
    assert "server: nginx\r\n" in headers
    plain = curl(node, "http://plain.tls.test/", "-D - -o /dev/null").stdout.lower()
    assert "strict-transport-security" not in plain


def test_only_tls_1_2_and_later(node):
    ok = node.run("echo | openssl s_client -connect 127.0.0.1:443 -servername blog.tls.test -tls1_2 2>&1")
    assert "Protocol  : TLSv1.2" in ok.stdout or "TLSv1.2" in ok.stdout
    old = node.run("echo | openssl s_client -connect 127.0.0.1:443 -servername blog.tls.test -tls1_1 2>&1")
    assert old.rc != 0


def test_unknown_hosts_get_nothing(node):
    for host in ("unknown.example", "127.0.0.1"):
        cmd = node.run("curl -sS --max-time 5 -H 'Host: %s' -o /dev/null http://127.0.0.1/" % host)
        assert cmd.rc == 52, (host, cmd.rc, cmd.stderr)  # empty reply: nginx closed the connection (444)
    for sni in ("-servername unknown.example", "-noservername", "-servername plain.tls.test"):
        cmd = node.run("echo | openssl s_client -connect 127.0.0.1:443 %s 2>&1" % sni)
        assert cmd.rc != 0 and "BEGIN CERTIFICATE" not in cmd.stdout, (sni, cmd.stdout)
        assert "alert" in cmd.stdout  # ssl_reject_handshake: a TLS alert instead of a certificate


def test_client_max_body_size_per_service(node):
    big = "x" * 4096
    code = status(node, "https://dns.tls.test/", "--cacert", PEBBLE_ROOT, "--data-raw", big)
    assert code == 413


def test_webhook_over_https_signature_body_and_rate_limits(node):
    sh(node, "test -x /usr/local/bin/send-hook")
    send = "send-hook ping %s '{}' --url https://hooks.tls.test --host hooks.tls.test --cafile " + PEBBLE_ROOT
    assert sh(node, send % PING_SECRET).split() == ["200"]
    assert sh(node, (send % PING_SECRET) + " --style wrong").split() == ["403"]
    statuses = sh(node, (send % PING_SECRET) + " --style wrong --count 40").split()
    assert set(statuses) <= {"403", "429"} and "429" in statuses, statuses  # burst 10 at 5 r/s
    assert node.run("find /var/lib/selfhost-pi/requests/ping -type f | wc -l").stdout.strip() == "1"


# -- renewal ------------------------------------------------------------------------
PROBE = r"""
import http.client, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[1])
ok = failed = 0
deadline = time.time() + float(sys.argv[2])
while time.time() < deadline and ok + failed < 2000:
    try:
        conn = http.client.HTTPSConnection("127.0.0.1", 443, context=ctx, timeout=5)
        conn._tunnel_host = None
        conn.sock = ctx.wrap_socket(__import__("socket").create_connection(("127.0.0.1", 443), 5),
                                    server_hostname="blog.tls.test")
        conn.request("GET", "/", headers={"Host": "blog.tls.test"})
        resp = conn.getresponse()
        resp.read()
        ok, failed = (ok + 1, failed) if resp.status == 200 else (ok, failed + 1)
        conn.close()
    except Exception as exc:
        failed += 1
        print("failed:", exc)
    time.sleep(0.02)
print("ok=%d failed=%d" % (ok, failed))
"""


def test_forced_renewal_reloads_nginx_without_a_failed_request(node):
    before = served_certificate(node, "blog.tls.test", PEBBLE_ROOT)[2]
    pid = node.run("systemctl show -P MainPID nginx.service").stdout.strip()
    sh(node, "cat > /root/probe.py <<'EOF'\n%s\nEOF" % PROBE)
    sh(node, "nohup python3 /root/probe.py %s 12 > /root/probe.out 2>&1 &" % PEBBLE_ROOT)
    time.sleep(1)
    started = time.time()
    sh(node, "certbot renew --force-renewal --cert-name blog.tls.test --no-random-sleep-on-renew -q")
    renewal = time.time() - started
    deadline = time.time() + 30
    while "ok=" not in node.run("cat /root/probe.out").stdout:
        assert time.time() < deadline, node.run("cat /root/probe.out").stdout
        time.sleep(0.5)
    probe = node.run("cat /root/probe.out").stdout
    ok, failed = [int(n) for n in re.search(r"ok=(\d+) failed=(\d+)", probe).groups()]
    print("forced renewal took %.1f s; probe: %d requests ok, %d failed" % (renewal, ok, failed))
    assert failed == 0 and ok > 50, probe
    after = served_certificate(node, "blog.tls.test", PEBBLE_ROOT)
    assert after[0] == "0 (ok)" and after[2] != before  # the new certificate is served: nginx reloaded
    assert node.run("systemctl show -P MainPID nginx.service").stdout.strip() == pid  # reloaded, not restarted


# -- the CA goes away -----------------------------------------------------------------
def test_a_failed_renewal_shows_in_systemctl_failed(node):
    sh(node, "systemctl stop pebble.service")
    sh(node, "cp /etc/letsencrypt/cli.ini /root/cli.ini && echo 'force-renewal = true' >> /etc/letsencrypt/cli.ini")
    try:
        node.run("systemctl start certbot.service")
        assert "certbot.service" in node.run("systemctl --failed --no-legend").stdout
        assert "localhost" in node.run("journalctl -u certbot.service -o cat --no-pager -n 30").stdout
    finally:
        sh(node, "cp /root/cli.ini /etc/letsencrypt/cli.ini && systemctl reset-failed certbot.service || true")
    cmd = curl(node, "https://blog.tls.test/", "--cacert", PEBBLE_ROOT)
    assert cmd.rc == 0, cmd.stderr


def test_an_issuance_failure_leaves_nginx_serving(node, spec, run_playbook):
    specs = json.loads(json.dumps(spec["service_specs"]))
    late = dict(specs[2], name="late", uid=2804, publish_ports=["127.0.0.1:9204:8080"], domain="late.tls.test")
    late.pop("tls")
    # services.yml: the tls role and the service role, what a user runs after adding a service.
    result = run_playbook({"service_specs": specs + [late]}, playbook="playbooks/services.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    output = " ".join((result.stdout + result.stderr).split())  # Ansible prints warnings on stderr
    assert "certificate not issued" in output and "late.tls.test" in output, output[-3000:]
    assert node.run("nginx -t").rc == 0
    site = node.file("/etc/nginx/sites-available/late.conf").content_string
    assert "ssl_certificate" not in site and "acme-challenge" in site
    assert status(node, "http://late.tls.test/") == 200  # on HTTP until a converge gets its certificate
    cmd = curl(node, "https://blog.tls.test/", "--cacert", PEBBLE_ROOT)
    assert cmd.rc == 0, cmd.stderr
