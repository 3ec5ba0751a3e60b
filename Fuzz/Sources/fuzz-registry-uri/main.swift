// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

// Fuzzes the request classifier: `OriginalURI(validating:)`, then `Policy.accesses(method:uri:)`
// of a registry policy (`RegistryRoute`) and of an http policy, then `Policy.evaluate`.
//
// Input: `METHOD URI` (split at the first space; without a space the method is GET).
//
// Invariants (beyond not crashing):
// 1. OriginalURI: an accepted target is printable ASCII, starts with '/', has no fragment,
//    backslash, `//`, `.` or `..` segment, nor an escape of an unreserved character, '/', '.',
//    '\' or a control character; validating its canonical form again gives the same path and
//    query (canonical form is a fixed point). A reference validator written here agrees on
//    accept/refuse, path and query.
// 2. The registry classifier never yields an action for a target that was not already
//    canonical (contains `/./`, `/../`, `//`, `%`, a backslash, NUL, ...); each repository it
//    yields is a valid distribution repository name (checked with the spec's regular
//    expression); the method is one the endpoint accepts. A reference router written from the
//    distribution spec (routing by the trailing segments) yields exactly the same accesses.
// 3. `evaluate` with and without trace reaches the same decision, rule and reason, for a
//    few identities, in a registry and an http policy; anonymous login is never allowed.

import FuzzSupport
import GatehouseCore

let registryPolicy: Policy = {
    func glob(_ pattern: String) -> Glob { try! Glob(pattern) }
    return Policy(name: "registry", kind: .registry, rules: [
        Rule(label: "admins", users: [], groups: ["registry-admins"], anonymous: false, resources: nil, allowed: ["pull", "push", "delete", "catalog"]),
        Rule(label: "own", users: ["*"], groups: [], anonymous: false, resources: [glob("${user}/*")], allowed: ["pull", "push"]),
        Rule(label: "pushers", users: [], groups: ["pushers"], anonymous: false, resources: [glob("team/**"), glob("*/app")], allowed: ["pull", "push"]),
        Rule(label: "cleaner", users: ["alice"], groups: [], anonymous: false, resources: [glob("team/**/app")], allowed: ["delete"]),
        Rule(label: "nothing", users: ["bob"], groups: [], anonymous: false, resources: [glob("secret/**")], allowed: []),
        Rule(label: "readers", users: ["*"], groups: [], anonymous: false, resources: nil, allowed: ["pull"]),
        Rule(label: "public", users: [], groups: [], anonymous: true, resources: [glob("public/*"), glob("library/**")], allowed: ["pull"]),
    ])
}()

let httpPolicy: Policy = {
    func glob(_ pattern: String) -> Glob { try! Glob(pattern) }
    return Policy(name: "wiki", kind: .http, rules: [
        Rule(label: "wiki-readers", users: ["*"], groups: [], anonymous: false, resources: [glob("/wiki/**")], allowed: ["GET", "HEAD"]),
        Rule(label: "editors", users: [], groups: ["editors"], anonymous: false, resources: [glob("/wiki/${user}/**"), glob("/api/*/items")], allowed: nil),
        Rule(label: "public", users: [], groups: [], anonymous: true, resources: [glob("/public/**"), glob("/healthz")], allowed: ["GET"]),
    ])
}()

let identities: [Identity?] = [
    nil,
    Identity(user: "alice", groups: ["pushers", "editors"], backend: "local"),
    Identity(user: "bob", groups: [], backend: "local"),
    Identity(user: "root", groups: ["REGISTRY-ADMINS"], backend: "corp", groupsAreCaseInsensitive: true),
]

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    warmUp(["GET /v2/", "GET /v2/_catalog", "PUT /v2/a/b/manifests/sha256:ab", "POST /v2/a/blobs/uploads/?mount=sha256:1&from=c", "PATCH /v2/a/blobs/uploads/u", "GET /v2/a/tags/list", "GET /v2/a/referrers/sha256:1", "GET /wiki/a%7E", "GET /v2/%41/manifests/x"], fuzz)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let method: String
    let target: String
    if let space = bytes.firstIndex(of: UInt8(ascii: " ")) {
        method = String(decoding: bytes[..<space], as: UTF8.self)
        target = String(decoding: bytes[(space + 1)...], as: UTF8.self)
    } else {
        method = "GET"
        target = String(decoding: bytes, as: UTF8.self)
    }
    let raw = Array(target.utf8)

    // 1.
    let uri = try? OriginalURI(validating: target)
    let expected = referenceURI(raw)
    switch (uri, expected) {
    case (nil, nil):
        // 2: nothing refused by the validator reaches the classifier.
        return 0
    case (let uri?, nil):
        violation("OriginalURI accepts \(shown(target)) as path \(shown(uri.path)); the reference refuses it")
    case (nil, let expected?):
        violation("OriginalURI refuses \(shown(target)); the reference reads path \(shown(expected.path))")
    case (let uri?, let expected?):
        invariant(uri.path == expected.path && uri.query == expected.query && uri.pathHadEscapes == expected.hadEscapes,
                  "\(shown(target)): path \(shown(uri.path)) query \(shown(uri.query)) escapes \(uri.pathHadEscapes); reference \(shown(expected.path)) \(shown(expected.query)) \(expected.hadEscapes)")
        checkCanonical(uri, target: target)
        checkRegistry(method: method, uri: uri, raw: raw, target: target)
        checkHTTP(method: method, uri: uri)
    }
    return 0
}

func checkCanonical(_ uri: OriginalURI, target: String) {
    let path = Array(uri.path.utf8)
    invariant(path.first == UInt8(ascii: "/") && path.allSatisfy { $0 > 0x20 && $0 < 0x7F } && !path.contains(UInt8(ascii: "?"))
              && !path.contains(UInt8(ascii: "#")) && !path.contains(UInt8(ascii: "\\")), "path \(shown(uri.path)) of \(shown(target))")
    let segments = uri.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
    for (index, segment) in segments.enumerated() {
        invariant(segment != "." && segment != "..", "path \(shown(uri.path)) has a dot segment")
        invariant(!segment.isEmpty || index == segments.count - 1, "path \(shown(uri.path)) has an empty segment")
    }
    var index = 0
    while index < path.count {
        if path[index] == UInt8(ascii: "%") {
            invariant(index + 2 < path.count, "path \(shown(uri.path)) ends in a cut escape")
            let hex = String(decoding: path[(index + 1)...(index + 2)], as: UTF8.self)
            invariant(hex == hex.uppercased(), "escape %\(hex) in \(shown(uri.path)) is not upper-case")
            guard let value = UInt8(hex, radix: 16) else { violation("escape %\(hex) in \(shown(uri.path))") }
            invariant(!isUnreserved(value) && value != UInt8(ascii: "/") && value != UInt8(ascii: ".") && value != UInt8(ascii: "\\")
                      && value >= 0x20 && value != 0x7F, "path \(shown(uri.path)) keeps the escape %\(hex)")
            index += 3
        } else {
            index += 1
        }
    }
    let canonical = uri.path + (uri.query.map { "?" + $0 } ?? "")
    guard let again = try? OriginalURI(validating: canonical) else { violation("canonical form \(shown(canonical)) of \(shown(target)) is refused") }
    invariant(again.path == uri.path && again.query == uri.query, "canonical form \(shown(canonical)) of \(shown(target)) reads as \(shown(again.path))")
    invariant(again.pathHadEscapes == uri.path.utf8.contains(UInt8(ascii: "%")), "pathHadEscapes of \(shown(canonical))")
}

func checkRegistry(method: String, uri: OriginalURI, raw: [UInt8], target: String) {
    let accesses = try? registryPolicy.accesses(method: method, uri: uri)
    let expected = referenceRoute(method: method, path: uri.path, query: uri.query, hadEscapes: uri.pathHadEscapes)
    invariant(accesses == expected,
              "\(method) \(shown(target)): accesses \(accesses.map { "\($0)" } ?? "refused"), reference \(expected.map { "\($0)" } ?? "refused")")
    guard let accesses else { return }
    // 2, stated on the raw bytes nginx forwards, independently of the references above.
    let rawText = String(decoding: raw, as: UTF8.self)
    let rawPath = rawText.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
    for bad in ["//", "/./", "/../", "%", "\\", "#"] {
        invariant(!rawPath.contains(bad), "\(method) \(shown(target)) yields \(accesses) but its path contains \(shown(bad))")
    }
    invariant(!rawPath.hasSuffix("/.") && !rawPath.hasSuffix("/..") && raw.allSatisfy { $0 > 0x20 && $0 < 0x7F },
              "\(method) \(shown(target)) yields \(accesses)")
    invariant(["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"].contains(method), "method \(shown(method)) yields \(accesses)")
    invariant(!accesses.isEmpty && accesses.count <= 2, "\(accesses.count) accesses for \(shown(target))")
    for access in accesses {
        invariant(RegistryAction(rawValue: access.action) != nil, "action \(access.action)")
        if let repository = access.resource {
            invariant(isRepositoryNameBySpec(repository) && RegistryRoute.isRepositoryName(repository),
                      "\(shown(target)) yields repository \(shown(repository))")
        } else {
            invariant(access.action == "login" || access.action == "catalog", "\(access.action) without a repository")
        }
    }
    if let repository = accesses[0].resource {
        invariant(rawPath.hasPrefix("/v2/" + repository + "/"), "repository \(shown(repository)) is not where \(shown(target)) names it")
    }
    checkEvaluate(registryPolicy, accesses)
}

func checkHTTP(method: String, uri: OriginalURI) {
    let accesses = try? httpPolicy.accesses(method: method, uri: uri)
    // Methods are case-sensitive tokens (RFC 9110): never upper-cased, a non-token refused.
    let isToken = !method.isEmpty && method.utf8.allSatisfy { isUnreserved($0) || Array("!#$%&'*+.^`|".utf8).contains($0) }
    guard isToken else {
        invariant(accesses == nil, "an http policy accepts the method \(shown(method))")
        return
    }
    let expected = referenceHTTPPath(uri.path)
    invariant((accesses == nil) == (expected == nil), "http \(shown(uri.path)): accesses \(accesses.map { "\($0)" } ?? "refused"), reference \(expected ?? "refused")")
    guard let accesses, let expected else { return }
    invariant(accesses.count == 1 && accesses[0].action == method && accesses[0].resource == expected, "http accesses \(accesses), reference \(expected)")
    checkEvaluate(httpPolicy, accesses)
}

/// The path an application server serves (SECURITY.md, "Paths as upstreams read them"): each
/// segment without its `;` parameters; nil when it is refused.
func referenceHTTPPath(_ path: String) -> String? {
    var out: [String] = []
    for segment in path.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
        let name = segment.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)[0]
        if segment.contains(";"), name.isEmpty || name == "." || name == ".." { return nil }
        if name.hasSuffix(".") || name.hasSuffix("%20") || name.contains("%3B") || name.contains("%25") { return nil }
        // Escaped bytes of 0x80 and above must spell UTF-8.
        var bytes: [UInt8] = []
        var rest = Array(name.utf8)[...]
        while let byte = rest.first {
            if byte == UInt8(ascii: "%"), rest.count >= 3, let value = UInt8(String(decoding: rest.dropFirst().prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(value)
                rest = rest.dropFirst(3)
            } else {
                bytes.append(byte)
                rest = rest.dropFirst()
            }
        }
        if String(validating: bytes, as: UTF8.self) == nil { return nil }
        out.append(String(name))
    }
    return "/" + out.joined(separator: "/")
}

func checkEvaluate(_ policy: Policy, _ accesses: [Access]) {
    var people = identities
    // A user named after the repository or path, so that `${user}` patterns take part.
    if let resource = accesses.first?.resource {
        let first = resource.split(separator: "/").first.map(String.init) ?? resource
        people.append(Identity(user: first.uppercased(), groups: ["editors"], backend: "local"))
        people.append(Identity(user: first, groups: [], backend: "local"))
    }
    for identity in people {
        for access in accesses {
            let traced = policy.evaluate(access, identity: identity, trace: true)
            let fast = policy.evaluate(access, identity: identity, trace: false)
            invariant(traced.allowed == fast.allowed && traced.rule == fast.rule && traced.reason == fast.reason,
                      "\(policy.name): \(access) for \(identity?.user ?? "anonymous"): traced \(traced.rule) \(traced.allowed), fast \(fast.rule) \(fast.allowed)")
            if identity == nil, access.action == "login" { invariant(!traced.allowed, "anonymous login allowed") }
        }
    }
}

// MARK: - Reference validator (RFC 3986 origin-form, as README documents the refusals)

func isUnreserved(_ byte: UInt8) -> Bool {
    (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte)
        || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
}

func referenceURI(_ raw: [UInt8]) -> (path: String, query: String?, hadEscapes: Bool)? {
    guard !raw.isEmpty, raw.count <= 8192, raw[0] == UInt8(ascii: "/") else { return nil }
    guard raw.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "#") && $0 != UInt8(ascii: "\\") }) else { return nil }
    let parts = raw.split(separator: UInt8(ascii: "?"), maxSplits: 1, omittingEmptySubsequences: false)
    let rawPath = Array(parts[0])
    let query = parts.count > 1 ? String(decoding: parts[1], as: UTF8.self) : nil
    // Decode escapes of unreserved characters; refuse those of '/', '.', '\' and controls.
    var path = ""
    var rest = rawPath[...]
    while let byte = rest.first {
        guard byte == UInt8(ascii: "%") else {
            path.unicodeScalars.append(Unicode.Scalar(byte))
            rest = rest.dropFirst()
            continue
        }
        guard rest.count >= 3, let value = UInt8(String(decoding: rest.dropFirst().prefix(2), as: UTF8.self), radix: 16),
              rest.dropFirst().prefix(2).allSatisfy({ UInt8(ascii: "0")...UInt8(ascii: "9") ~= $0 || UInt8(ascii: "a")...UInt8(ascii: "f") ~= $0 || UInt8(ascii: "A")...UInt8(ascii: "F") ~= $0 })
        else { return nil }
        if value == UInt8(ascii: "/") || value == UInt8(ascii: ".") || value == UInt8(ascii: "\\") || value < 0x20 || value == 0x7F { return nil }
        if isUnreserved(value) {
            path.unicodeScalars.append(Unicode.Scalar(value))
        } else {
            let hex = String(value, radix: 16, uppercase: true)
            path += "%" + (hex.count == 1 ? "0" + hex : hex)
        }
        rest = rest.dropFirst(3)
    }
    let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
    for (index, segment) in segments.enumerated() {
        if segment == "." || segment == ".." { return nil }
        if segment.isEmpty, index < segments.count - 1 { return nil }
    }
    return (path, query, rawPath.contains(UInt8(ascii: "%")))
}

// MARK: - Reference router (OCI distribution spec, endpoints end-1 … end-13)

let nameRegex = try! Regex("[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*)*")
let tagRegex = try! Regex("[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
let digestRegex = try! Regex("[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
let uploadRegex = try! Regex("[a-zA-Z0-9._=-]{1,256}")

func isRepositoryNameBySpec(_ name: String) -> Bool {
    name.utf8.count <= 255 && name.allSatisfy(\.isASCII) && (try? nameRegex.wholeMatch(in: name)) != nil
}

func isDigestBySpec<S: StringProtocol>(_ text: S) -> Bool {
    // Gatehouse bounds the encoded part at 1024 characters.
    guard text.allSatisfy(\.isASCII), let colon = text.firstIndex(of: ":"), text[text.index(after: colon)...].count <= 1024 else { return false }
    return (try? digestRegex.wholeMatch(in: String(text))) != nil
}

func matches<S: StringProtocol>(_ regex: Regex<AnyRegexOutput>, _ text: S) -> Bool {
    text.allSatisfy(\.isASCII) && (try? regex.wholeMatch(in: String(text))) != nil
}

func referenceRoute(method: String, path: String, query: String?, hadEscapes: Bool) -> [Access]? {
    guard !hadEscapes, !(query ?? "").contains(";"), path.hasPrefix("/v2/") else { return nil }
    let rest = path.dropFirst(4)
    let read = method == "GET" || method == "HEAD"
    if rest.isEmpty { return read ? [Access(action: "login", resource: nil)] : nil }
    if rest == "_catalog" { return method == "GET" ? [Access(action: "catalog", resource: nil)] : nil }
    let segments = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    let count = segments.count
    guard count >= 3 else { return nil }
    let kind = segments[count - 2]
    let last = segments[count - 1]
    func name(_ components: Int) -> String? {
        let name = segments[0..<components].joined(separator: "/")
        return isRepositoryNameBySpec(name) ? name : nil
    }
    func one(_ action: String, _ repository: String) -> [Access] { [Access(action: action, resource: repository)] }
    switch kind {
    case "uploads" where count >= 4 && segments[count - 3] == "blobs":
        guard let repository = name(count - 3) else { return nil }
        if last.isEmpty {
            guard method == "POST", let mount = referenceMount(query) else { return nil }
            return one("push", repository) + mount
        }
        guard matches(uploadRegex, last), read || ["PATCH", "PUT", "DELETE"].contains(method) else { return nil }
        return one("push", repository)
    case "manifests":
        guard matches(tagRegex, last) || isDigestBySpec(last), let repository = name(count - 2) else { return nil }
        switch method {
        case "GET", "HEAD": return one("pull", repository)
        case "PUT": return one("push", repository)
        case "DELETE": return one("delete", repository)
        default: return nil
        }
    case "blobs":
        guard isDigestBySpec(last), let repository = name(count - 2) else { return nil }
        switch method {
        case "GET", "HEAD": return one("pull", repository)
        case "DELETE": return one("delete", repository)
        default: return nil
        }
    case "tags":
        guard last == "list", read, let repository = name(count - 2) else { return nil }
        return one("pull", repository)
    case "referrers":
        guard isDigestBySpec(last), read, let repository = name(count - 2) else { return nil }
        return one("pull", repository)
    default:
        return nil
    }
}

/// `mount=<digest>&from=<name>` of an upload start: [] without mount, nil when refused.
func referenceMount(_ query: String?) -> [Access]? {
    var mounts: [String] = []
    var froms: [String] = []
    for pair in (query ?? "").split(separator: "&") {
        let name: Substring
        let value: Substring
        if let equals = pair.firstIndex(of: "=") {
            name = pair[..<equals]
            value = pair[pair.index(after: equals)...]
        } else {
            name = pair
            value = ""
        }
        guard let decodedName = formDecode(name), let decodedValue = formDecode(value) else { return nil }
        if decodedName == "mount" { mounts.append(decodedValue) }
        if decodedName == "from" { froms.append(decodedValue) }
    }
    guard mounts.count <= 1, froms.count <= 1 else { return nil }
    guard let mount = mounts.first else { return [] }
    guard let from = froms.first, isDigestBySpec(mount), isRepositoryNameBySpec(from) else { return nil }
    return [Access(action: "pull", resource: from)]
}

/// application/x-www-form-urlencoded value decoding; nil for a bad escape or invalid UTF-8.
func formDecode(_ text: Substring) -> String? {
    var bytes: [UInt8] = []
    var rest = Array(text.utf8)[...]
    while let byte = rest.first {
        if byte == UInt8(ascii: "%") {
            let hex = rest.dropFirst().prefix(2)
            guard hex.count == 2, hex.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains($0) }),
                  let value = UInt8(String(decoding: hex, as: UTF8.self), radix: 16) else { return nil }
            bytes.append(value)
            rest = rest.dropFirst(3)
        } else {
            bytes.append(byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
            rest = rest.dropFirst()
        }
    }
    return String(validating: bytes, as: UTF8.self)
}
