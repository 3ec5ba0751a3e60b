// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// The self-service page at `GET /tokens/`: a user signs in with their own password, lists their
/// access tokens, creates one (scope, expiry; the secret is shown once) and revokes them. It is a
/// client of the JSON API next to it (`GET`/`POST /tokens`, `DELETE /tokens/{id}`), which it calls
/// with `fetch`, an explicit `Authorization: Basic` header and `X-Requested-With: XMLHttpRequest`
/// (so that a wrong password gets a 401 without a challenge and the browser shows no dialog).
///
/// Plain HTML with one inline `<style>` and one inline `<script>` (vanilla JavaScript, no
/// framework, nothing loaded from anywhere else), so that the page is one constant, needs no build
/// step and no asset route, and can be served under a strict Content-Security-Policy
/// (`default-src 'none'`) that allows exactly these two elements by their SHA-256 hashes. Those
/// hashes are computed from the exact text between `<script>` and `</script>` (and `<style>` and
/// `</style>`), so any edit here changes them; the page has no inline event handlers and no
/// `style=` attributes, which such a policy would refuse. Everything it writes into the page goes
/// through `textContent` or `value`; the password lives in a JavaScript variable only (no storage,
/// no cookie) and is forgotten on reload.
enum TokenPage {
    static let html: String = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Access tokens · Gatehouse</title>
<style>
:root { color-scheme: light dark; --fg: #1d2327; --muted: #5f6b75; --line: #d0d7de; --bg: #ffffff; --panel: #f6f8fa; --accent: #0b5cad; --bad: #b3261e; --good: #1a7f37; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9aa6b2; --line: #3d444d; --bg: #0d1117; --panel: #161b22; --accent: #58a6ff; --bad: #ff7b72; --good: #3fb950; } }
[hidden] { display: none !important; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 60rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { font-size: 1.6rem; margin: 0 0 .5rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .6rem; }
p { margin: .5rem 0; }
.muted, .hint { color: var(--muted); }
code, pre, #new-token, td.id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
pre { background: var(--panel); border: 1px solid var(--line); padding: .6rem .8rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
label { display: block; font-weight: 600; margin: .7rem 0 .2rem; }
label.inline { display: inline-block; font-weight: normal; margin: .2rem 1rem .2rem 0; }
input, select, textarea, button { font: inherit; color: inherit; }
input:not([type=checkbox]):not([type=radio]), select, textarea { width: 100%; max-width: 28rem; padding: .4rem .5rem; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); }
textarea { min-height: 4.5rem; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
#new-token { max-width: 100%; }
button { padding: .4rem .9rem; border: 1px solid var(--line); border-radius: 4px; background: var(--panel); cursor: pointer; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.revoke { color: var(--bad); padding: .2rem .6rem; }
button:disabled { opacity: .6; cursor: default; }
fieldset { border: 1px solid var(--line); border-radius: 4px; margin: .8rem 0; padding: .3rem .9rem .8rem; max-width: 30rem; }
legend { font-weight: 600; padding: 0 .3rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .85rem; color: var(--muted); font-weight: 600; }
td.scope { word-break: break-word; }
td.expired { color: var(--bad); }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .3rem 1rem 1rem; margin: 1rem 0; }
#new-token-section { border-color: var(--good); }
.warn { font-weight: 600; }
#status { padding: .5rem .8rem; border-radius: 4px; border: 1px solid var(--line); }
#status.error { border-color: var(--bad); color: var(--bad); }
#status.ok { border-color: var(--good); color: var(--good); }
.row { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; }
</style>
</head>
<body>
<main>
<h1>Access tokens</h1>
<p class="muted">A token stands in for your password in <code>docker login</code>, CI jobs and scripts. Each one is limited to some repositories or paths, expires, can be revoked here at any time, and stops working as soon as your account is disabled or loses the group that grants the rights.</p>
<p id="status" role="status" aria-live="polite" hidden></p>

<section id="signin-section">
<h2>Sign in</h2>
<form id="signin-form" method="post" novalidate>
<label for="user">User name</label>
<input id="user" name="user" autocomplete="username" autocapitalize="none" spellcheck="false">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password">
<p><button id="signin" class="primary" type="submit">Sign in</button></p>
</form>
<p class="hint">Your own password (not a token). This page keeps it in memory only, sends it with each request, and forgets it when you reload or sign out.</p>
</section>

<section id="account" hidden>
<div class="row"><span>Signed in as <strong id="whoami"></strong>.</span><button id="signout" type="button">Sign out</button></div>

<section id="new-token-section" class="panel" hidden>
<h2>Your new token</h2>
<input id="new-token" readonly autocomplete="off" spellcheck="false" aria-describedby="new-token-note">
<div class="row"><button id="copy" type="button">Copy</button><button id="new-token-done" type="button">Done, hide it</button></div>
<p id="new-token-note" class="warn">Copy it now: it will not be shown again. Gatehouse keeps only a hash of it; if you lose it, revoke it and create another.</p>
<p>Use it as the password with your user name:</p>
<pre id="new-token-usage"></pre>
</section>

<h2>Your tokens</h2>
<table id="tokens">
<thead><tr><th>Name</th><th>ID</th><th>Policy</th><th>Scope</th><th>Expires</th><th>Last used</th><th></th></tr></thead>
<tbody></tbody>
</table>
<p id="no-tokens" class="muted" hidden>You have no tokens.</p>
<p><button id="refresh" type="button">Refresh</button></p>

<h2>Create a token</h2>
<form id="create-form" method="post" novalidate>
<label for="create-name">Name</label>
<input id="create-name" name="name" maxlength="200" placeholder="e.g. gitlab-ci team/app" spellcheck="false">
<label for="create-policy">Policy</label>
<input id="create-policy" name="policy" value="registry" autocapitalize="none" spellcheck="false">
<fieldset>
<legend>Scope</legend>
<label class="inline"><input id="create-kind-repositories" type="radio" name="kind" value="repositories" checked> Registry repositories</label>
<label class="inline"><input id="create-kind-paths" type="radio" name="kind" value="paths"> Web paths</label>
<div id="create-kind-repositories-fields">
<label for="create-repositories">Repositories (globs, one per line)</label>
<textarea id="create-repositories" name="repositories" placeholder="team/*" spellcheck="false"></textarea>
<div>
<label class="inline"><input id="create-actions-pull" type="checkbox" value="pull" checked> pull</label>
<label class="inline"><input id="create-actions-push" type="checkbox" value="push"> push</label>
<label class="inline"><input id="create-actions-delete" type="checkbox" value="delete"> delete</label>
</div>
</div>
<div id="create-kind-paths-fields" hidden>
<label for="create-paths">Paths (globs, one per line)</label>
<textarea id="create-paths" name="paths" placeholder="/wiki/**" spellcheck="false"></textarea>
<div>
<label class="inline"><input id="create-methods-get" type="checkbox" value="GET" checked> GET</label>
<label class="inline"><input id="create-methods-head" type="checkbox" value="HEAD" checked> HEAD</label>
<label class="inline"><input id="create-methods-post" type="checkbox" value="POST"> POST</label>
<label class="inline"><input id="create-methods-put" type="checkbox" value="PUT"> PUT</label>
<label class="inline"><input id="create-methods-patch" type="checkbox" value="PATCH"> PATCH</label>
<label class="inline"><input id="create-methods-delete" type="checkbox" value="DELETE"> DELETE</label>
</div>
</div>
</fieldset>
<label for="create-expires">Expires in</label>
<select id="create-expires" name="expires">
<option value="1d">1 day</option>
<option value="7d">7 days</option>
<option value="30d" selected>30 days</option>
<option value="90d">90 days</option>
<option value="365d">365 days</option>
</select>
<p class="hint">A token can do at most what your account may do, and only within this scope.</p>
<p><button id="create" class="primary" type="submit">Create token</button></p>
</form>
</section>
</main>
<script>
"use strict";
(function () {
  // The signed-in user: { user, password }, in this variable only (no storage, no cookie).
  let creds = null;
  let busy = false;
  const ACTIONS = ["pull", "push", "delete"];
  const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
  const $ = function (id) { return document.getElementById(id); };

  function status(message, kind) {
    const s = $("status");
    s.textContent = message || "";
    s.className = kind || "";
    s.hidden = !message;
  }

  // Base64 of the UTF-8 bytes (btoa alone takes Latin-1 only).
  function base64(text) {
    const bytes = new TextEncoder().encode(text);
    let binary = "";
    for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary);
  }

  function ApiError(status, message) { this.status = status; this.message = message; }

  async function api(method, path, body) {
    const headers = {
      "Authorization": "Basic " + base64(creds.user + ":" + creds.password),
      "X-Requested-With": "XMLHttpRequest",
      "Accept": "application/json"
    };
    const init = { method: method, headers: headers, credentials: "omit", cache: "no-store", redirect: "error" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, "cannot reach the server (" + e.message + ")");
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!response.ok) {
      let message;
      if (response.status === 401) message = "wrong user name or password";
      else if (data && typeof data.error === "string" && data.error) message = data.error;
      else message = "the server answered " + response.status + (response.statusText ? " " + response.statusText : "");
      throw new ApiError(response.status, message);
    }
    return data;
  }

  function when(value) {
    if (value === null || value === undefined || value === "") return "never";
    const d = new Date(value);
    if (isNaN(d.getTime())) return String(value);
    return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function scope(t) {
    if (Array.isArray(t.repositories)) {
      return t.repositories.join(", ") + " (" + (Array.isArray(t.actions) && t.actions.length ? t.actions.join(", ") : "no actions") + ")";
    }
    if (Array.isArray(t.paths)) {
      return t.paths.join(", ") + " (" + (Array.isArray(t.methods) && t.methods.length ? t.methods.join(", ") : "no methods") + ")";
    }
    return "";
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function render(tokens) {
    const tbody = $("tokens").tBodies[0];
    tbody.replaceChildren();
    for (const t of tokens) {
      const tr = document.createElement("tr");
      tr.dataset.id = String(t.id);
      cell(tr, t.name ? String(t.name) : "", "name");
      cell(tr, String(t.id), "id");
      cell(tr, t.policy ? String(t.policy) : "", "policy");
      cell(tr, scope(t), "scope");
      const expires = cell(tr, when(t.expires_at), "expires");
      const end = new Date(t.expires_at);
      if (!isNaN(end.getTime()) && end.getTime() <= Date.now()) {
        expires.textContent += " (expired)";
        expires.className += " expired";
      }
      cell(tr, when(t.last_used_at), "last-used");
      const td = cell(tr, "", "actions");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "revoke";
      button.textContent = "Revoke";
      button.dataset.id = String(t.id);
      button.dataset.name = t.name ? String(t.name) : "";
      button.setAttribute("aria-label", "Revoke token " + (t.name ? String(t.name) : String(t.id)));
      td.appendChild(button);
      tbody.appendChild(tr);
    }
    $("tokens").hidden = tokens.length === 0;
    $("no-tokens").hidden = tokens.length !== 0;
  }

  async function load() {
    const data = await api("GET", "/tokens");
    render(data && Array.isArray(data.tokens) ? data.tokens : []);
  }

  function hideNewToken() {
    $("new-token").value = "";
    $("new-token-usage").textContent = "";
    $("new-token-section").hidden = true;
  }

  function signOut(message, kind) {
    creds = null;
    hideNewToken();
    $("tokens").tBodies[0].replaceChildren();
    $("account").hidden = true;
    $("signin-section").hidden = false;
    $("password").value = "";
    status(message, kind);
    $($("user").value ? "password" : "user").focus();
  }

  // Runs one action at a time; a 401 after signing in (password changed, account disabled)
  // signs out.
  async function run(button, action) {
    if (busy) return;
    busy = true;
    if (button) button.disabled = true;
    try {
      await action();
    } catch (e) {
      if (e instanceof ApiError) {
        if (e.status === 401 && creds !== null) signOut(e.message, "error");
        else status(e.message, "error");
      } else {
        status("unexpected error: " + (e && e.message ? e.message : String(e)), "error");
      }
    } finally {
      busy = false;
      if (button) button.disabled = false;
    }
  }

  // Shell quoting for the example commands.
  function sh(word) {
    return /^[A-Za-z0-9_.@%+=:,\/-]+$/.test(word) ? word : "'" + word.replace(/'/g, "'\\''") + "'";
  }

  function lines(text) {
    return text.split(/\r?\n/).map(function (l) { return l.trim(); }).filter(function (l) { return l !== ""; });
  }

  function syncKind() {
    const paths = $("create-kind-paths").checked;
    $("create-kind-paths-fields").hidden = !paths;
    $("create-kind-repositories-fields").hidden = paths;
  }

  $("signin-form").addEventListener("submit", function (event) {
    event.preventDefault();
    const user = $("user").value;
    const password = $("password").value;
    if (!user || !password) { status("give your user name and password", "error"); return; }
    if (user.indexOf(":") >= 0) { status("a user name cannot contain ':'", "error"); return; }
    run($("signin"), async function () {
      creds = { user: user, password: password };
      try {
        await load();
      } catch (e) {
        creds = null;
        $("password").value = "";
        $("password").focus();
        throw e;
      }
      $("password").value = "";
      $("whoami").textContent = user;
      $("signin-section").hidden = true;
      $("account").hidden = false;
      status("", "");
    });
  });

  $("signout").addEventListener("click", function () { signOut("Signed out.", "ok"); });
  $("refresh").addEventListener("click", function () { run($("refresh"), load); });
  $("new-token-done").addEventListener("click", hideNewToken);
  $("create-kind-repositories").addEventListener("change", syncKind);
  $("create-kind-paths").addEventListener("change", syncKind);

  $("copy").addEventListener("click", function () {
    const field = $("new-token");
    const copied = function () { status("Token copied to the clipboard.", "ok"); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(copied, function () { field.select(); status("Select and copy the token by hand.", "error"); });
    } else {
      field.select();
      try { if (document.execCommand("copy")) copied(); } catch (e) { status("Select and copy the token by hand.", "error"); }
    }
  });

  $("tokens").addEventListener("click", function (event) {
    const button = event.target.closest("button.revoke");
    if (!button) return;
    const id = button.dataset.id;
    const label = button.dataset.name ? "\u201c" + button.dataset.name + "\u201d (" + id + ")" : id;
    if (!window.confirm("Revoke token " + label + "? Programs that use it are refused within seconds.")) return;
    run(button, async function () {
      await api("DELETE", "/tokens/" + encodeURIComponent(id));
      status("Token " + label + " revoked.", "ok");
      await load();
    });
  });

  $("create-form").addEventListener("submit", function (event) {
    event.preventDefault();
    const paths = $("create-kind-paths").checked;
    const body = {
      name: $("create-name").value.trim(),
      policy: $("create-policy").value.trim(),
      expires: $("create-expires").value
    };
    if (!body.policy) { status("give the policy the token is for", "error"); return; }
    if (paths) {
      body.paths = lines($("create-paths").value);
      body.methods = METHODS.filter(function (m) { return $("create-methods-" + m.toLowerCase()).checked; });
      if (!body.paths.length) { status("give at least one path glob", "error"); return; }
      if (!body.methods.length) { status("choose at least one method", "error"); return; }
    } else {
      body.repositories = lines($("create-repositories").value);
      body.actions = ACTIONS.filter(function (a) { return $("create-actions-" + a).checked; });
      if (!body.repositories.length) { status("give at least one repository glob", "error"); return; }
      if (!body.actions.length) { status("choose at least one action", "error"); return; }
    }
    run($("create"), async function () {
      const t = await api("POST", "/tokens", body);
      if (!t || typeof t.token !== "string") throw new ApiError(0, "the server's answer has no token");
      const user = sh(creds.user);
      const host = location.host;
      $("new-token").value = t.token;
      $("new-token-usage").textContent = paths
        ? "curl -u " + user + " https://" + host + "/\u2026   (paste the token at the password prompt)\n"
        : "echo " + t.token + " | docker login -u " + user + " --password-stdin " + host + "\n\n"
          + "# in CI: keep it in a masked secret variable, e.g. GATEHOUSE_TOKEN, and\n"
          + "echo \"$GATEHOUSE_TOKEN\" | docker login -u " + user + " --password-stdin " + host + "\n";
      $("new-token-section").hidden = false;
      $("create-name").value = "";
      status("Token " + (t.name ? "\u201c" + t.name + "\u201d " : "") + "created.", "ok");
      $("new-token").focus();
      $("new-token").select();
      await load();
    });
  });

  syncKind();
  $("user").focus();
})();
</script>
</body>
</html>
"""#
}
