#!/usr/bin/python3
"""The self-service token page (GET /tokens/) in headless Chromium, driven by Selenium.

Run by Tests/e2e/token-page.sh, which starts the registry, Gatehouse and nginx; this script
drives the browser (and reads the page once with urllib for the static checks: one inline
script and style, no inline handlers or style attributes, CSP hashes that match). It prints one
`ok - ...` / `not ok - ...` line per assertion and `# ...` comments on standard output, and last
`# counts: PASSED FAILED`. Where a check belongs to the shell (curl through nginx with a token
the page created), it prints one line

    CHECK NAME ARG...        (token-works ID, token-revoked ID, cross-user ALICE-ID BOB-ID)

and waits for one line on standard input while the shell prints its own ok / not ok lines.
Secrets are never printed: each one the page shows is appended to --secrets-file, where the
shell finds a token by its id. Without a shell partner (stdin at end of file) those checks are
skipped.

Needs Debian's python3-selenium (4.8), chromium and chromium-driver.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import re
import signal
import ssl
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

TOKEN_RE = re.compile(r"^gth_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$")

ap = argparse.ArgumentParser()
ap.add_argument("--base", required=True, help="https://HOST:PORT (nginx in front of Gatehouse)")
ap.add_argument("--ca", required=True, help="the CA that signed the server's certificate (urllib)")
ap.add_argument("--spki", required=True, help="base64 SHA-256 of the server certificate's public key (Chromium)")
ap.add_argument("--profile", required=True, help="an empty directory for Chromium's profile")
ap.add_argument("--alice", required=True, help="USER:PASSWORD")
ap.add_argument("--bob", required=True, help="USER:PASSWORD")
ap.add_argument("--max-lifetime-days", type=int, default=90, help="tokens.max_lifetime of the server, in days")
ap.add_argument("--chromium", default="/usr/bin/chromium")
ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
ap.add_argument("--driver-log", default=os.devnull)
ap.add_argument("--secrets-file", default=os.devnull,
                help="a file to append the secrets the page showed to (one a line), for the shell's checks")
args = ap.parse_args()

ALICE, ALICE_PW = args.alice.split(":", 1)
BOB, BOB_PW = args.bob.split(":", 1)
PAGE = args.base.rstrip("/") + "/tokens/"
HOST = args.base.split("://", 1)[1].rstrip("/")

PASSED = FAILED = 0
secrets_seen = []
# SIGTERM (the shell's cleanup, `timeout`) ends through `finally`, which quits Chromium
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def say(line):
    print(line, flush=True)


def ok(desc):
    global PASSED
    PASSED += 1
    say("ok - " + desc)


def not_ok(desc, *diag):
    global FAILED
    FAILED += 1
    say("not ok - " + desc)
    for d in diag:
        for line in str(d).splitlines()[-15:]:
            say("#   " + line)


def check(cond, desc, *diag):
    if cond:
        ok(desc)
    else:
        not_ok(desc, *diag)
    return cond


class Abort(Exception):
    """A step the rest of the session depends on failed: stop here."""


def must(cond, desc, *diag):
    if not check(cond, desc, *diag):
        raise Abort(desc)
    return cond


def remember(secret):
    """Note a secret the page showed, for the shell's leak checks (never printed)."""
    if secret:
        secrets_seen.append(secret)
        with open(args.secrets_file, "a", encoding="utf-8") as f:
            f.write(secret + "\n")


def shell_check(name, *words):
    """Ask the shell to run its checks NAME with WORDS; wait for its answer."""
    say("CHECK " + " ".join([name] + list(words)))
    answer = sys.stdin.readline()
    if not answer:
        say("# (no shell partner: check %s skipped)" % name)


def wait_until(fn, timeout=5.0, interval=0.05):
    """fn's first truthy value within timeout seconds, else None (exceptions count as falsy)."""
    end = time.monotonic() + timeout
    while True:
        try:
            v = fn()
            if v:
                return v
        except WebDriverException:
            pass
        if time.monotonic() >= end:
            return None
        time.sleep(interval)


# ------------------------------------------------------------------ static checks (urllib)
# The page as served: strict CSP whose hashes are those of the one inline script and style.
def b64sha256(text):
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


ctx = ssl.create_default_context(cafile=args.ca)
try:
    with urllib.request.urlopen(urllib.request.Request(PAGE), context=ctx, timeout=10) as r:
        status, headers, raw = r.status, r.headers, r.read().decode("utf-8")
except Exception as e:  # noqa: BLE001 - any failure to read the page is one failed check
    status, headers, raw = None, {}, ""
    not_ok("GET /tokens/ through nginx without credentials answers", repr(e))
if status is not None:
    check(status == 200 and (headers.get("Content-Type") or "").startswith("text/html"),
          "GET /tokens/ without credentials: 200 text/html (got %s %s)" % (status, headers.get("Content-Type")))
    csp = headers.get("Content-Security-Policy") or ""
    say("# Content-Security-Policy: " + csp)
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", raw, re.S)
    styles = re.findall(r"<style\b[^>]*>(.*?)</style>", raw, re.S)
    check(len(scripts) == 1 and len(styles) == 1 and raw.count("<script") == 1 and raw.count("<style") == 1,
          "the page has exactly one <script> and one <style> element (%d, %d)" % (len(scripts), len(styles)))
    check(not re.search(r"<[^>]*\son[a-z]+\s*=", raw, re.I), "the page has no inline event handler attributes (on...=)")
    check(not re.search(r"<[^>]*\sstyle\s*=", raw, re.I), "the page has no style= attributes")
    check(not re.search(r"""\s(src|href|action)\s*=\s*["']?(https?:)?//""", raw, re.I) and "@import" not in raw and "url(" not in raw,
          "the page loads nothing from elsewhere (no external src/href/action, @import, url())")
    check(directives.get("default-src") == "default-src 'none'"
          and directives.get("connect-src") == "connect-src 'self'"
          and directives.get("form-action") == "form-action 'none'"
          and directives.get("frame-ancestors") == "frame-ancestors 'none'",
          "CSP has default-src 'none', connect-src 'self', form-action 'none', frame-ancestors 'none'", csp)
    if scripts and styles:
        want_s = "'sha256-%s'" % b64sha256(scripts[0])
        want_c = "'sha256-%s'" % b64sha256(styles[0])
        check(directives.get("script-src") == "script-src " + want_s,
              "CSP script-src is exactly the SHA-256 of the inline script", "want: script-src " + want_s, "got:  " + str(directives.get("script-src")))
        check(directives.get("style-src") == "style-src " + want_c,
              "CSP style-src is exactly the SHA-256 of the inline style", "want: style-src " + want_c, "got:  " + str(directives.get("style-src")))

# ------------------------------------------------------------------ the browser
opts = webdriver.ChromeOptions()
opts.binary_location = args.chromium
for a in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
          "--disable-extensions", "--disable-background-networking", "--disable-sync",
          "--password-store=basic", "--window-size=1280,1000",
          "--user-data-dir=" + args.profile,
          # trust exactly the test server's key (needs --user-data-dir), not every certificate
          "--ignore-certificate-errors-spki-list=" + args.spki):
    opts.add_argument(a)
if os.geteuid() == 0:
    opts.add_argument("--no-sandbox")
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
opts.set_capability("unhandledPromptBehavior", "ignore")

LOGS = []


def drain():
    entries = driver.get_log("browser")
    LOGS.extend(entries)
    return entries


def fmt(entries):
    return "\n".join("%s %s: %s" % (e.get("level"), e.get("source"), e.get("message")) for e in entries)


try:
    driver = webdriver.Chrome(service=Service(args.chromedriver, log_path=args.driver_log), options=opts)
except Exception as e:  # noqa: BLE001
    not_ok("chromium starts under chromedriver", repr(e))
    say("# counts: %d %d" % (PASSED, FAILED))
    sys.exit(1)
driver.set_page_load_timeout(20)
driver.set_script_timeout(10)
say("# browser: %s %s" % (driver.capabilities.get("browserName"), driver.capabilities.get("browserVersion")))


def el(css):
    return driver.find_element(By.CSS_SELECTOR, css)


def shown(css):
    try:
        return el(css).is_displayed()
    except WebDriverException:
        return False


def status_text():
    return el("#status").text.strip() if shown("#status") else ""


def status_class():
    return el("#status").get_attribute("class") or ""


def type_into(css, text):
    e = el(css)
    e.clear()
    if text:
        e.send_keys(text)


def row_ids():
    return [r.get_attribute("data-id") for r in driver.find_elements(By.CSS_SELECTOR, "#tokens tbody tr[data-id]")]


def row_cells(token_id):
    r = el('#tokens tbody tr[data-id="%s"]' % token_id)
    return {c.get_attribute("class").split()[0]: c.text for c in r.find_elements(By.CSS_SELECTOR, "td")}


def sign_in(user, password):
    type_into("#user", user)
    type_into("#password", password)
    el("#signin").click()


def signed_in():
    return shown("#account") and not shown("#signin-section")


def no_alert():
    try:
        driver.switch_to.alert
        return False
    except NoAlertPresentException:
        return True


def load_page():
    driver.get(PAGE)
    return wait_until(lambda: shown("#user") and driver.execute_script("return document.readyState") == "complete", 10)


def create(name, policy, expires, repositories=None, actions=(), paths=None, methods=()):
    """Fill and send the create form; the new token's value (or None) and the status text."""
    before = el("#new-token").get_attribute("value")
    type_into("#create-name", name)
    type_into("#create-policy", policy)
    if paths is None:
        el("#create-kind-repositories").click()
        type_into("#create-repositories", "\n".join(repositories))
        for a in ("pull", "push", "delete"):
            box = el("#create-actions-" + a)
            if box.is_selected() != (a in actions):
                box.click()
    else:
        el("#create-kind-paths").click()
        type_into("#create-paths", "\n".join(paths))
        for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
            box = el("#create-methods-" + m.lower())
            if box.is_selected() != (m in methods):
                box.click()
    Select(el("#create-expires")).select_by_value(expires)
    status_before = status_text()
    el("#create").click()
    got = wait_until(lambda: shown("#new-token-section") and el("#new-token").get_attribute("value") not in ("", before)
                     and el("#new-token").get_attribute("value"), 10)
    if not got:
        wait_until(lambda: status_text() and status_text() != status_before, 3)
    return got, status_text()


T0 = time.monotonic()
try:
    # -------------------------------------------------------------- 1. the page loads cleanly
    must(load_page(), "the page loads in Chromium over TLS (%s) and shows the sign-in form" % PAGE)
    check("Access tokens" in driver.title, "the page's title names it (%r)" % driver.title)
    check(driver.execute_script("return getComputedStyle(document.body).marginTop") == "0px",
          "the inline style is applied (body margin 0, not the browser's 8px)")
    check(shown("#signin-section") and not shown("#account"), "signed out: the form is shown, the token list is not")
    time.sleep(0.5)  # late messages (a favicon request, a CSP report) land in the log
    first = [e for e in drain() if e.get("level") in ("SEVERE", "WARNING")]
    check(not first, "loading the page logs no console error or warning (no CSP violation)", fmt(first))

    # -------------------------------------------------------------- 2. a wrong password
    t = time.monotonic()
    sign_in(ALICE, ALICE_PW + "-wrong")
    msg = wait_until(lambda: status_text(), 5)
    took = time.monotonic() - t
    check(msg == "wrong user name or password" and "error" in status_class(),
          "wrong password: #status shows 'wrong user name or password' as an error within 5 s (%.2fs, got %r)" % (took, msg))
    check(no_alert() and driver.execute_script("return 6 * 7") == 42,
          "wrong password: no dialog (no alert, no auth prompt), the page still answers scripts")
    check(not signed_in() and el("#password").get_attribute("value") == "",
          "wrong password: still signed out, the password field is emptied")
    drain()

    # -------------------------------------------------------------- 3. sign in as alice
    sign_in(ALICE, ALICE_PW)
    must(wait_until(signed_in, 5), "alice signs in: the token list and the create form are shown")
    check(el("#whoami").text == ALICE, "the page says who is signed in (%r)" % el("#whoami").text)
    check(el("#password").get_attribute("value") == "", "after signing in the password field is empty (kept in a JS variable only)")
    stores = driver.execute_script(
        "return [localStorage.length, sessionStorage.length, document.cookie, "
        "JSON.stringify(Object.assign({}, localStorage)) + JSON.stringify(Object.assign({}, sessionStorage))]")
    check(stores[0] == 0 and stores[1] == 0 and stores[2] == "" and driver.get_cookies() == [],
          "nothing in localStorage, sessionStorage or cookies", repr(stores), repr(driver.get_cookies()))
    check(row_ids() == [] and shown("#no-tokens"), "alice has no tokens yet: the page says so (rows %r)" % row_ids())
    check(el("#create-policy").get_attribute("value") == "registry", "the create form's policy defaults to 'registry'")
    check([o.get_attribute("value") for o in Select(el("#create-expires")).options] == ["1d", "7d", "30d", "90d", "365d"],
          "the expiry choices are 1d, 7d, 30d, 90d, 365d")

    # -------------------------------------------------------------- 4. an error from the API
    too_long = "365d" if args.max_lifetime_days < 365 else None
    if too_long:
        got, msg = create("too long", "registry", too_long, repositories=["team/*"], actions=("pull",))
        check(not got and "error" in status_class() and msg and "wrong user name" not in msg,
              "an expiry above tokens.max_lifetime: the API's error is shown in #status, no token (%r)" % msg)
        check(row_ids() == [], "no token was created by the refused request")
        drain()

    # -------------------------------------------------------------- 5. create a registry token
    tok1, msg = create("ci team push", "registry", "30d", repositories=["team/*"], actions=("pull", "push"))
    must(tok1 and TOKEN_RE.match(tok1), "creating team/* pull+push for 30d shows the token in #new-token, "
          "matching ^gth_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$ (%s)" % ("%d chars" % len(tok1) if tok1 else msg))
    tok1 = tok1 or ""
    id1 = tok1[4:20]
    remember(tok1)
    check(el("#new-token").get_attribute("readonly") is not None, "#new-token is read-only")
    note = el("#new-token-note").text
    check("will not be shown again" in note, "a note says the token will not be shown again (%r)" % note)
    usage = el("#new-token-usage").text
    check(("echo %s | docker login -u %s --password-stdin %s" % (tok1, ALICE, HOST)) in usage,
          "the page shows how to use it: echo TOKEN | docker login -u %s --password-stdin %s" % (ALICE, HOST), usage)
    check(wait_until(lambda: id1 in row_ids(), 5), "the list shows the new token (row data-id=%s)" % id1, repr(row_ids()))
    if id1 in row_ids():
        c = row_cells(id1)
        say("# row: " + json.dumps(c))
        check(c.get("name") == "ci team push" and c.get("id") == id1 and c.get("policy") == "registry",
              "the row has the token's name, id and policy", json.dumps(c))
        check("team/*" in c.get("scope", "") and "pull" in c.get("scope", "") and "push" in c.get("scope", "")
              and "delete" not in c.get("scope", ""),
              "the row's scope is team/* with pull and push, not delete (%r)" % c.get("scope"))
        exp = re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d) UTC$", c.get("expires", ""))
        in30 = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
        check(exp and abs((datetime.datetime.strptime(exp.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=datetime.timezone.utc)
                           - in30).total_seconds()) < 600,
              "the row's expiry is 30 days from now (%r)" % c.get("expires"))
        check(c.get("last-used") == "never", "the row says it was never used (%r)" % c.get("last-used"))
    check(tok1 not in el("#tokens").get_attribute("outerHTML"), "the list itself never contains the secret")

    # -------------------------------------------------------------- 6. the token works (shell side)
    shell_check("token-works", id1)

    # -------------------------------------------------------------- 7. a token for paths
    tok2, msg = create("wiki reader", "wiki", "7d", paths=["/wiki/**"], methods=("GET", "HEAD"))
    check(tok2 and TOKEN_RE.match(tok2), "creating a paths token (policy wiki, /wiki/**, GET HEAD, 7d) shows a new token (%s)"
          % ("ok" if tok2 else msg))
    tok2 = tok2 or ""
    id2 = tok2[4:20]
    remember(tok2)
    check(tok1 and tok1 not in driver.page_source and el("#new-token").get_attribute("value") == tok2,
          "the first token's secret is gone from the page; only the newest one is shown")
    check(wait_until(lambda: id2 in row_ids() and id1 in row_ids(), 5), "the list shows both tokens", repr(row_ids()))
    if id2 in row_ids():
        c = row_cells(id2)
        check(c.get("policy") == "wiki" and "/wiki/**" in c.get("scope", "") and "GET" in c.get("scope", "")
              and "HEAD" in c.get("scope", "") and "POST" not in c.get("scope", ""),
              "the paths token's row: policy wiki, /wiki/** with GET, HEAD (%r)" % c.get("scope"))
    # The shell used the first token; last-used times are written in batches (every few seconds)
    def used():
        el("#refresh").click()
        time.sleep(0.3)
        return id1 in row_ids() and row_cells(id1).get("last-used", "never") != "never" and row_cells(id1)["last-used"]
    t = time.monotonic()
    last = wait_until(used, 12, 0.7)
    m = re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d) UTC$", last or "")
    check(m and abs((datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=datetime.timezone.utc)
                     - datetime.datetime.now(datetime.timezone.utc)).total_seconds()) < 180,
          "after the token was used, Refresh shows its last-used time (%r, after %.1fs)" % (last, time.monotonic() - t))
    el("#new-token-done").click()
    check(not shown("#new-token-section") and el("#new-token").get_attribute("value") == "" and tok2 not in driver.page_source,
          "'Done, hide it' removes the secret from the page")

    # -------------------------------------------------------------- 8. revoke with the page's button
    if id1 in row_ids():
        drain()
        el('#tokens tbody tr[data-id="%s"] button.revoke' % id1).click()
        alert = wait_until(lambda: driver.switch_to.alert, 3)
        check(alert and id1 in alert.text, "Revoke asks for confirmation naming the token (%r)" % (alert.text if alert else None))
        if alert:
            alert.accept()
        t = time.monotonic()
        gone = wait_until(lambda: id1 not in row_ids(), 5)
        check(gone and id2 in row_ids(), "after Revoke the list no longer shows the token (%.2fs), the other one stays" % (time.monotonic() - t),
              repr(row_ids()))
        check("revoked" in status_text() and "ok" in status_class(), "#status says it was revoked (%r)" % status_text())
        shell_check("token-revoked", id1)
    else:
        not_ok("revoke: the token's row is there to click")

    # -------------------------------------------------------------- 9. reload: the secret is not shown again
    check(load_page() and not signed_in(), "after a reload the page is signed out (the password was in memory only)")
    check(el("#new-token").get_attribute("value") == "" and not shown("#new-token-section"),
          "after a reload #new-token is empty and hidden")
    sign_in(ALICE, ALICE_PW)
    check(wait_until(lambda: signed_in() and id2 in row_ids(), 5), "alice signs in again: her remaining token is listed", repr(row_ids()))
    src = driver.page_source
    check(all(s not in src for s in secrets_seen) and el("#new-token").get_attribute("value") == "",
          "after the reload neither secret appears anywhere in the page (shown once)")
    check(id1 not in row_ids(), "the revoked token stays gone from the list")

    # -------------------------------------------------------------- 10. bob sees only his own tokens
    el("#signout").click()
    check(wait_until(lambda: not signed_in() and row_ids() == [], 3), "Sign out hides the list and forgets the rows")
    sign_in(BOB, BOB_PW)
    check(wait_until(signed_in, 5), "bob signs in")
    check(wait_until(lambda: shown("#no-tokens"), 5) and row_ids() == [] and id2 not in driver.page_source,
          "bob does not see alice's tokens (his list is empty)", repr(row_ids()))
    tok3, msg = create("bob pull", "registry", "1d", repositories=["team/*"], actions=("pull",))
    remember(tok3)
    id3 = (tok3 or "")[4:20]
    check(tok3 and wait_until(lambda: row_ids() == [id3], 5), "bob creates his own token and his list shows only it", repr(row_ids()))
    shell_check("cross-user", id2 or "-", id3 or "-")

    # -------------------------------------------------------------- 11. the whole session's console
    drain()
    csp = [e for e in LOGS if "Content Security Policy" in e.get("message", "") or "Refused to" in e.get("message", "")]
    check(not csp, "no CSP violation in the browser's console during the whole session", fmt(csp))
    js = [e for e in LOGS if e.get("source") != "network" and e.get("level") in ("SEVERE", "WARNING")]
    check(not js, "no JavaScript error or warning in the console during the whole session", fmt(js))
    net = [e for e in LOGS if e.get("source") == "network" and not re.search(r"status of (400|401)\b", e.get("message", ""))]
    check(not net, "the only failed requests in the console are the expected 401 (wrong password) and 400 (too long)", fmt(net))
    say("# console messages during the session: %d (expected network 400/401 included)" % len(LOGS))
except Abort as e:
    say("# stopped: the rest depends on: %s" % e)
except Exception as e:  # noqa: BLE001 - a crash in the middle is a failure, not a traceback without counts
    import traceback
    frame = traceback.extract_tb(e.__traceback__)[-1]
    not_ok("the browser session ran to its end", "line %d: %s" % (frame.lineno, frame.line),
           traceback.format_exception_only(type(e), e)[0].split("\nStacktrace:")[0])
finally:
    try:
        driver.quit()
    except Exception:  # noqa: BLE001
        pass

say("# measure: browser session %.1fs" % (time.monotonic() - T0))
say("# counts: %d %d" % (PASSED, FAILED))
sys.exit(1 if FAILED else 0)
