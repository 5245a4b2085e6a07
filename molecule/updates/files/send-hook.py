#!/usr/bin/python3
"""Test helper on the host: POST signed hook requests through nginx, print one status per request.

send-hook.py HOOK SECRET BODY [--style github|gitea|forgejo|none|wrong] [--count N] [--host NAME]
             [--url https://NAME --cafile ROOT.pem]
N requests go out in parallel (a burst). With an https:// URL the server's certificate is checked
against --cafile (the name must resolve on the host, e.g. through /etc/hosts).
"""
import argparse
import concurrent.futures
import hashlib
import hmac
import ssl
import urllib.error
import urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("hook")
parser.add_argument("secret")
parser.add_argument("body")
parser.add_argument("--style", default="github")
parser.add_argument("--count", type=int, default=1)
parser.add_argument("--host", default="hooks.updates.test")
parser.add_argument("--url", default="http://127.0.0.1")
parser.add_argument("--cafile")
args = parser.parse_args()
context = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
body = args.body.encode()
digest = hmac.new(args.secret.encode(), body, hashlib.sha256).hexdigest()
headers = {"Content-Type": "application/json", "Host": args.host}
if args.style == "github":
    headers["X-Hub-Signature-256"] = "sha256=" + digest
elif args.style == "gitea":
    headers["X-Gitea-Signature"] = digest
elif args.style == "forgejo":
    headers["X-Forgejo-Signature"] = digest
elif args.style == "wrong":
    headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()


def send(_):
    req = urllib.request.Request("%s/hooks/%s" % (args.url, args.hook), data=body, headers=headers, method="POST")
    try:
        return urllib.request.urlopen(req, timeout=30, context=context).status
    except urllib.error.HTTPError as err:
        return err.code


with concurrent.futures.ThreadPoolExecutor(max_workers=args.count) as pool:
    for status in pool.map(send, range(args.count)):
        print(status)
