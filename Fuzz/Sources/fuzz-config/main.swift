// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

// Fuzzes `Configuration.parse(yaml:baseDirectory:)`.
//
// Input: the YAML text. Relative file names resolve in a fixed folder that holds `htpasswd`,
// `htgroups`, `ca.pem` and `secret`, so that valid configurations can be written.
//
// Invariants (beyond not crashing):
// 1. Deterministic: parsing the same text twice gives the same configuration, or the same
//    errors in the same order.
// 2. An accepted configuration obeys what README promises: at least one backend, backend
//    names of letters, digits, '-' and '_', unique; at least one policy, names ASCII letters,
//    digits, '-', '_', unique; the default policy exists; the realm is non-empty without
//    control characters; durations and numbers are in their ranges; every rule has a subject,
//    no empty or control-character user or group names, registry actions among pull, push,
//    delete and catalog, http methods upper-case, http path patterns starting with '/'; LDAP
//    URLs are ldaps://, or ldap:// with start_tls or insecure; files are absolute paths of
//    regular files.
// 3. Render → parse: the accepted configuration written back as YAML (every value explicit,
//    strings double-quoted) parses to the same configuration.
// 4. Refusals name at least one error, each with a line within the text (or none).

import FuzzSupport
import GatehouseCore

#if canImport(Glibc)
import Glibc
#endif

let folder: String = {
    let path = "/tmp/gatehouse-fuzz-config"
    mkdir(path, 0o755)
    for (name, content) in [("htpasswd", "alice:{PLAIN}secret\n"), ("htgroups", "pushers: alice\n"), ("ca.pem", "not a certificate\n"), ("secret", "password\n")] {
        let file = fopen(path + "/" + name, "w")!
        fputs(content, file)
        fclose(file)
    }
    return path
}()

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    warmUp(["backends: [{name: a, type: htpasswd, file: htpasswd}]\npolicies: {registry: {type: registry, rules: [{users: [\"*\"], allow: [pull]}]}}\n", "x: ["], fuzz)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let yaml = text(data, size)
    // YAML's line breaks: LF, CR (alone or before LF), and in YAML 1.1 (libyaml) NEL, LS, PS.
    let lineCount = yaml.unicodeScalars.count { ["\r", "\n", "\u{85}", "\u{2028}", "\u{2029}"].contains($0) } + 1
    let first = Result { () throws(ConfigurationErrors) in try Configuration.parse(yaml: yaml, baseDirectory: folder) }
    let second = Result { () throws(ConfigurationErrors) in try Configuration.parse(yaml: yaml, baseDirectory: folder) }
    switch (first, second) {
    case (.success(let a), .success(let b)):
        let dumpA = dump(a)
        invariant(dumpA == dump(b), "two parses of \(shown(yaml)) differ:\n\(dumpA)\n\(dump(b))")
        checkAccepted(a, yaml: yaml)
        // Known finding `listen-host` (see README): such an address cannot be written back.
        if isKnown("listen-host"), ListenAddress(parsing: a.listen.description) != a.listen { return 0 }
        let rendered = render(a)
        do {
            let again = try Configuration.parse(yaml: rendered, baseDirectory: folder)
            invariant(dump(again) == dumpA, "\(shown(yaml)) rendered as\n\(rendered)\nreads back as\n\(dump(again))\ninstead of\n\(dumpA)")
        } catch {
            violation("\(shown(yaml)) rendered as\n\(rendered)\nis refused: \(error)")
        }
    case (.failure(let a), .failure(let b)):
        // Was finding `yaml-duplicate-keys` (fixed): Yams named the line of a repeated key in
        // Dictionary order when one of the repeated keys was not a scalar.
        invariant(a.errors == b.errors, "two parses of \(shown(yaml)) fail differently:\n\(a)\n\(b)")
        invariant(!a.errors.isEmpty, "\(shown(yaml)) is refused without an error")
        for error in a.errors {
            if let line = error.line { invariant(line >= 0 && line <= lineCount + 1, "error on line \(line) of \(lineCount): \(error)") }
        }
    default:
        violation("\(shown(yaml)) parses once and fails once")
    }
    return 0
}

func checkAccepted(_ c: Configuration, yaml: String) {
    func ok(_ condition: Bool, _ what: @autoclosure () -> String) {
        invariant(condition, "\(shown(yaml)) accepted with \(what())")
    }
    ok(!c.backends.isEmpty, "no backend")
    ok(Set(c.backends.map(\.name)).count == c.backends.count, "repeated backend names \(c.backends.map(\.name))")
    for backend in c.backends {
        ok(!backend.name.isEmpty && backend.name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }, "backend name \(shown(backend.name))")
        switch backend {
        case .htpasswd(_, let file, let groups):
            ok(isRegularFile(file), "htpasswd file \(shown(file))")
            if let groups { ok(isRegularFile(groups), "groups file \(shown(groups))") }
        case .ldap(let ldap):
            ok(!ldap.urls.isEmpty, "no LDAP URL")
            for url in ldap.urls {
                ok(url.hasPrefix("ldaps://") && !ldap.startTLS || url.hasPrefix("ldap://") && (ldap.startTLS || ldap.insecure), "LDAP URL \(shown(url))")
            }
            ok((1...64).contains(ldap.poolSize), "pool size \(ldap.poolSize)")
            ok(ldap.timeout >= .milliseconds(100) && ldap.timeout <= .seconds(120), "LDAP timeout \(ldap.timeout)")
            ok(ldap.userFilter.hasPrefix("(") && ldap.userFilter.contains("{username}"), "user filter \(shown(ldap.userFilter))")
            if let filter = ldap.groupFilter { ok(filter.hasPrefix("("), "group filter \(shown(filter))") }
            ok(ldap.bindPasswordFile != nil || ldap.bindPasswordEnvironment != nil, "no service account password")
            if let file = ldap.bindPasswordFile { ok(isRegularFile(file), "bind password file \(shown(file))") }
            if let file = ldap.caFile { ok(isRegularFile(file), "CA file \(shown(file))") }
        }
    }
    ok(!c.policies.isEmpty, "no policy")
    ok(Set(c.policies.map(\.name)).count == c.policies.count, "repeated policy names \(c.policies.map(\.name).map(shown))")
    ok(c.policies.contains { $0.name == c.defaultPolicy }, "default policy \(shown(c.defaultPolicy)) that names no policy")
    ok(!c.realm.isEmpty && !hasControl(c.realm), "realm \(shown(c.realm))")
    ok(c.listenMode <= 0o7777, "listen mode \(c.listenMode)")
    if let group = c.listenGroup { ok(!group.isEmpty && !hasControl(group) && !group.contains(":"), "listen group \(shown(group))") }
    ok(c.idleTimeout >= .seconds(1), "idle timeout \(c.idleTimeout)")
    for duration in [c.cache.ttl, c.cache.negativeTTL, c.cache.staleGrace, c.lockout.window] { ok(duration >= .zero, "duration \(duration)") }
    ok((0...10_000_000).contains(c.cache.maxEntries), "cache.max_entries \(c.cache.maxEntries)")
    ok((0...1_000_000).contains(c.lockout.maxFailures), "lockout.max_failures \(c.lockout.maxFailures)")
    ok(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(c.log.level), "log level \(shown(c.log.level))")
    ok(ListenAddress(parsing: c.listen.description) == c.listen || isKnown("listen-host"), "listen address \(shown(c.listen.description)) that does not read back")
    for policy in c.policies {
        ok(!policy.name.isEmpty && policy.name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_") },
           "policy name \(shown(policy.name))")
        for rule in policy.rules {
            ok(!rule.users.isEmpty || !rule.groups.isEmpty || rule.anonymous, "rule \(shown(rule.label)) without subject")
            for name in rule.users + rule.groups { ok(!name.isEmpty && !hasControl(name), "user or group \(shown(name))") }
            if let resources = rule.resources {
                ok(!resources.isEmpty, "rule \(shown(rule.label)) with an empty pattern list")
                if policy.kind == .http { for glob in resources { ok(glob.description.hasPrefix("/"), "path pattern \(shown(glob.description))") } }
            }
            switch policy.kind {
            case .registry:
                guard let allowed = rule.allowed else { violation("\(shown(yaml)): registry rule \(shown(rule.label)) without allow") }
                ok(allowed.isSubset(of: ["pull", "push", "delete", "catalog"]), "registry actions \(allowed.sorted())")
            case .http:
                for method in rule.allowed ?? [] { ok(!method.isEmpty && method.allSatisfy { $0.isASCII && ($0.isUppercase || $0 == "-") }, "method \(shown(method))") }
            }
        }
    }
}

func isRegularFile(_ path: String) -> Bool {
    var info = stat()
    guard path.hasPrefix("/"), stat(path, &info) == 0 else { return false }
    // Known finding `config-directory` (see README): a folder passes the loader's check.
    return (info.st_mode & S_IFMT) == S_IFREG || isKnown("config-directory")
}

// MARK: - A complete, deterministic description

func milliseconds(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    return seconds * 1000 + attoseconds / 1_000_000_000_000_000
}

func dump(_ c: Configuration) -> String {
    var lines: [String] = []
    lines.append("listen \(shown(c.listen.description)) mode \(String(c.listenMode, radix: 8)) group \(shown(c.listenGroup)) idle \(milliseconds(c.idleTimeout))")
    lines.append("realm \(shown(c.realm)) proxies \(c.trustedProxies.map { shown($0.description) }) default \(shown(c.defaultPolicy))")
    lines.append("cache \(milliseconds(c.cache.ttl)) \(milliseconds(c.cache.negativeTTL)) \(milliseconds(c.cache.staleGrace)) \(c.cache.maxEntries)")
    lines.append("lockout \(c.lockout.maxFailures) \(milliseconds(c.lockout.window)) log \(c.log.level) \(c.log.format) \(c.log.denialsOnly)")
    for backend in c.backends {
        switch backend {
        case .htpasswd(let name, let file, let groups):
            lines.append("htpasswd \(shown(name)) \(shown(file)) \(shown(groups))")
        case .ldap(let l):
            lines.append("ldap \(shown(l.name)) \(l.preset) \(l.urls.map(shown)) tls \(l.startTLS) insecure \(l.insecure) ca \(shown(l.caFile))")
            lines.append("  bind \(shown(l.bindDN)) file \(shown(l.bindPasswordFile)) env \(shown(l.bindPasswordEnvironment)) base \(shown(l.baseDN))")
            lines.append("  user \(shown(l.userFilter)) \(shown(l.usernameAttribute)) groups \(shown(l.groupBaseDN)) \(shown(l.groupFilter)) \(shown(l.groupAttribute))")
            lines.append("  nested \(l.nestedGroups) pool \(l.poolSize) timeout \(milliseconds(l.timeout)) upn \(l.upnSuffixes.map(shown)) netbios \(shown(l.netbiosDomain))")
        }
    }
    for policy in c.policies {
        lines.append("policy \(shown(policy.name)) \(policy.kind)")
        for rule in policy.rules {
            lines.append("  rule \(shown(rule.label)) users \(rule.users.map(shown)) groups \(rule.groups.map(shown)) anonymous \(rule.anonymous) "
                + "where \(rule.resources.map { $0.map { shown($0.description) } }.map { "\($0)" } ?? "everywhere") "
                + "allow \(rule.allowed.map { "\($0.sorted().map(shown))" } ?? "any")")
        }
    }
    return lines.joined(separator: "\n")
}

// MARK: - Rendering back to YAML

/// A YAML double-quoted scalar: escapes everything that is not printable (YAML 1.1 §5.1) and
/// the characters YAML reads as line breaks.
func quoted(_ value: String) -> String {
    var out = "\""
    for scalar in value.unicodeScalars {
        let v = scalar.value
        switch v {
        case 0x22: out += "\\\""
        case 0x5C: out += "\\\\"
        case _ where printable(v):
            out.unicodeScalars.append(scalar)
        default:
            let hex = String(v, radix: 16, uppercase: true)
            out += v <= 0xFFFF ? "\\u" + String(repeating: "0", count: 4 - hex.count) + hex : "\\U" + String(repeating: "0", count: 8 - hex.count) + hex
        }
    }
    return out + "\""
}

/// YAML 1.1 printable, less the line breaks NEL, LS, PS and the byte order mark.
func printable(_ v: UInt32) -> Bool {
    (0x20...0x7E).contains(v) || ((0xA0...0xD7FF).contains(v) && v != 0x2028 && v != 0x2029) || ((0xE000...0xFFFD).contains(v) && v != 0xFEFF) || v >= 0x10000
}

func list(_ values: [String]) -> String { "[" + values.map(quoted).joined(separator: ", ") + "]" }

func duration(_ value: Duration) -> String {
    let ms = milliseconds(value)
    for (unit, size) in [("h", Int64(3_600_000)), ("m", 60_000), ("s", 1000)] where ms % size == 0 { return quoted("\(ms / size)\(unit)") }
    return quoted("\(ms)ms")
}

func render(_ c: Configuration) -> String {
    var y = ""
    y += "listen: \(quoted(c.listen.description))\n"
    let mode = String(c.listenMode, radix: 8)
    y += "listen_mode: \(quoted(String(repeating: "0", count: max(0, 4 - mode.count)) + mode))\n"
    if let group = c.listenGroup { y += "listen_group: \(quoted(group))\n" }
    y += "idle_timeout: \(duration(c.idleTimeout))\n"
    y += "realm: \(quoted(c.realm))\n"
    y += "trusted_proxies: \(list(c.trustedProxies.map(\.description)))\n"
    y += "default_policy: \(quoted(c.defaultPolicy))\n"
    y += "backends:\n"
    for backend in c.backends {
        switch backend {
        case .htpasswd(let name, let file, let groups):
            y += "  - name: \(quoted(name))\n    type: htpasswd\n    file: \(quoted(file))\n"
            if let groups { y += "    groups_file: \(quoted(groups))\n" }
        case .ldap(let l):
            y += "  - name: \(quoted(l.name))\n    type: ldap\n    preset: \(quoted(l.preset.rawValue))\n    urls: \(list(l.urls))\n"
            y += "    start_tls: \(l.startTLS)\n    insecure: \(l.insecure)\n"
            if let file = l.caFile { y += "    ca_file: \(quoted(file))\n" }
            y += "    bind_dn: \(quoted(l.bindDN))\n"
            if let file = l.bindPasswordFile { y += "    bind_password_file: \(quoted(file))\n" }
            if let name = l.bindPasswordEnvironment { y += "    bind_password_env: \(quoted(name))\n" }
            y += "    base_dn: \(quoted(l.baseDN))\n    user_filter: \(quoted(l.userFilter))\n    username_attribute: \(quoted(l.usernameAttribute))\n"
            if let dn = l.groupBaseDN { y += "    group_base_dn: \(quoted(dn))\n" }
            if let filter = l.groupFilter { y += "    group_filter: \(quoted(filter))\n" }
            y += "    group_attribute: \(quoted(l.groupAttribute))\n    nested_groups: \(l.nestedGroups)\n    pool_size: \(l.poolSize)\n"
            y += "    timeout: \(duration(l.timeout))\n    upn_suffixes: \(list(l.upnSuffixes))\n"
            if let domain = l.netbiosDomain { y += "    netbios_domain: \(quoted(domain))\n" }
        }
    }
    y += "cache: {ttl: \(duration(c.cache.ttl)), negative_ttl: \(duration(c.cache.negativeTTL)), stale_grace: \(duration(c.cache.staleGrace)), max_entries: \(c.cache.maxEntries)}\n"
    y += "lockout: {max_failures: \(c.lockout.maxFailures), window: \(duration(c.lockout.window))}\n"
    y += "log: {level: \(quoted(c.log.level)), format: \(quoted(c.log.format.rawValue)), denials_only: \(c.log.denialsOnly)}\n"
    y += "policies:\n"
    for policy in c.policies {
        y += "  \(quoted(policy.name)):\n    type: \(policy.kind.rawValue)\n    rules:\n"
        if policy.rules.isEmpty { y.removeLast(); y += " []\n" }
        for rule in policy.rules {
            y += "      - name: \(quoted(rule.label))\n        users: \(list(rule.users))\n        groups: \(list(rule.groups))\n        anonymous: \(rule.anonymous)\n"
            if let resources = rule.resources {
                y += "        \(policy.kind == .registry ? "repositories" : "paths"): \(list(resources.map(\.description)))\n"
            }
            if let allowed = rule.allowed {
                y += "        \(policy.kind == .registry ? "allow" : "methods"): \(list(allowed.sorted()))\n"
            }
        }
    }
    return y
}
