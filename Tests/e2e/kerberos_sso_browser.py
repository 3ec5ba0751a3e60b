#!/usr/bin/python3
"""Kerberos single sign-on in headless Chromium, driven by Selenium.

Run by Tests/e2e/kerberos-sso.sh, which starts the Samba AD DC, Gatehouse, nginx with the
kit's webapp-sso.conf and an upstream app that echoes X-Auth-User; it runs this script inside
a private mount namespace whose /etc/hosts maps the site's name to 127.0.0.1 (Chromium's
--host-resolver-rules would make it ask for a ticket for HTTP@127.0.0.1), with KRB5_CONFIG
and KRB5CCNAME set to the user's ticket cache (or to an empty one, for the no-ticket run).

One run = one fresh Chromium profile (a reused profile serves the page from its disk cache
without asking nginx), pre-seeded with `Local State` {"net":{"received_http_auth_negotiate_
headers":true}}: without it a fresh profile refused Negotiate (ERR_INVALID_AUTH_CREDENTIALS)
in 5 of 5 measured runs. The site is allow-listed with --auth-server-allowlist, as the
AuthServerAllowlist policy would do.

Prints `ok - ...` / `not ok - ...` lines, `# ...` comments and last `# counts: PASSED FAILED`.

    --expect-user alice   the page shows "X-Auth-User: alice" (single sign-on worked)
    --expect-user -       no ticket: the page never shows the app (no X-Auth-User line)

Needs Debian's python3-selenium (4.8), chromium and chromium-driver.
"""

import argparse
import json
import os
import re
import signal
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ap = argparse.ArgumentParser()
ap.add_argument("--url", required=True, help="https://gate.gatehouse.test:PORT/PATH through nginx")
ap.add_argument("--allowlist", required=True, help="--auth-server-allowlist for Chromium")
ap.add_argument("--spki", required=True, help="base64 SHA-256 of the server certificate's public key")
ap.add_argument("--profile", required=True, help="an empty directory for Chromium's profile")
ap.add_argument("--expect-user", required=True, help="the user the page must show, or - for none")
ap.add_argument("--label", default="", help="words for the ok lines")
ap.add_argument("--chromium", default="/usr/bin/chromium")
ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
ap.add_argument("--driver-log", default=os.devnull)
args = ap.parse_args()

PASSED = FAILED = 0
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
LABEL = (args.label + ": ") if args.label else ""


def say(line):
    print(line, flush=True)


def check(cond, desc, *diag):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        say("ok - " + LABEL + desc)
    else:
        FAILED += 1
        say("not ok - " + LABEL + desc)
        for d in diag:
            for line in str(d).splitlines()[-15:]:
                say("#   " + line)
    return cond


def finish(code=None):
    say("# counts: %d %d" % (PASSED, FAILED))
    sys.exit(code if code is not None else (1 if FAILED else 0))


# A fresh profile, pre-seeded so that Chromium answers a Negotiate challenge at once
os.makedirs(args.profile, exist_ok=True)
if os.listdir(args.profile):
    say("# the profile directory is not empty: %s" % args.profile)
    check(False, "a fresh, empty Chromium profile")
    finish()
with open(os.path.join(args.profile, "Local State"), "w", encoding="utf-8") as f:
    json.dump({"net": {"received_http_auth_negotiate_headers": True}}, f)

say("# KRB5CCNAME=%s KRB5_CONFIG=%s" % (os.environ.get("KRB5CCNAME", "(unset)"), os.environ.get("KRB5_CONFIG", "(unset)")))
host = re.sub(r"^https?://([^/:]+).*$", r"\1", args.url)
try:
    with open("/etc/hosts", encoding="utf-8") as f:
        mapped = any(host in line.split()[1:] for line in f if line.strip() and not line.startswith("#"))
except OSError:
    mapped = False
check(mapped, "/etc/hosts (in this mount namespace) maps %s" % host)

opts = webdriver.ChromeOptions()
opts.binary_location = args.chromium
for a in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
          "--disable-extensions", "--disable-background-networking", "--disable-sync",
          "--password-store=basic", "--window-size=1024,768",
          "--user-data-dir=" + args.profile,
          "--auth-server-allowlist=" + args.allowlist,
          # trust exactly the test server's key (needs --user-data-dir), not every certificate
          "--ignore-certificate-errors-spki-list=" + args.spki):
    opts.add_argument(a)
if os.geteuid() == 0:
    opts.add_argument("--no-sandbox")
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
# an auth dialog would be a prompt: leave it open, do not answer it
opts.set_capability("unhandledPromptBehavior", "ignore")

t0 = time.monotonic()
try:
    driver = webdriver.Chrome(service=Service(args.chromedriver, log_path=args.driver_log), options=opts)
except Exception as e:  # noqa: BLE001
    check(False, "chromium starts under chromedriver", repr(e))
    finish()
driver.set_page_load_timeout(15)
say("# browser: %s %s" % (driver.capabilities.get("browserName"), driver.capabilities.get("browserVersion")))

try:
    t = time.monotonic()
    error = None
    try:
        driver.get(args.url)
    except TimeoutException:
        error = "page load timed out after 15 s (an authentication prompt waiting for an answer?)"
    except WebDriverException as e:
        error = str(e).split("\n")[0]
    took = time.monotonic() - t
    try:
        text = driver.find_element(By.TAG_NAME, "body").text
    except WebDriverException:
        text = ""
    try:
        title = driver.title
    except WebDriverException:
        title = ""
    try:
        where = driver.current_url
    except WebDriverException:
        where = ""
    say("# page after %.2fs: %s, title %r, error %r, text %r" % (took, where, title, error, text[:200]))
    logs = []
    try:
        logs = driver.get_log("browser")
    except WebDriverException:
        pass
    console = "\n".join(str(e.get("message")) for e in logs)
    for e in logs[:10]:
        say("#   console %s: %s" % (e.get("level"), e.get("message")))

    if args.expect_user != "-":
        user = args.expect_user
        check(error is None, "the page loads without an error (%.2fs)" % took, error or "")
        check(re.search(r"(?m)^X-Auth-User: %s$" % re.escape(user), text) is not None,
              "the app's page shows X-Auth-User: %s (signed in with the Kerberos ticket, no password)" % user, text[:500])
        check(re.search(r"(?m)^Authorization: *\(none\)$", text) is not None,
              "the app never sees the browser's Authorization header (it says: Authorization: (none))", text[:500])
        try:
            driver.switch_to.alert
            prompt = True
        except WebDriverException:
            prompt = False
        check(not prompt, "no prompt or dialog was shown")
    else:
        check("X-Auth-User:" not in text,
              "without a ticket the app's page is not shown (no X-Auth-User)", text[:500])
        # headless Chromium has nobody to ask for a password: it shows its error page
        # (chrome-error://, "the server responded with a status of 401") or nginx's 401 page
        check(error is not None or where.startswith("chrome-error:")
              or re.search(r"401|Authorization Required", text + " " + title + " " + console) is not None,
              "without a ticket the browser ends on an authentication error or the 401 page (%s)" % (error or where),
              text[:300], console)
except Exception as e:  # noqa: BLE001 - a crash is a failure with counts, not a bare traceback
    check(False, "the browser run ended normally", repr(e))
finally:
    try:
        driver.quit()
    except Exception:  # noqa: BLE001
        pass

say("# measure: browser run %.2fs" % (time.monotonic() - t0))
finish()
