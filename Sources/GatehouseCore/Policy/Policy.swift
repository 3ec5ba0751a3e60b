// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// A named set of rules, selected by `/auth/{policy}` (or `default_policy` for `/auth`).
public struct Policy: Sendable {
    /// What the rules speak about.
    public enum Kind: String, Sendable {
        /// Docker Registry v2 actions on repositories.
        case registry
        /// Methods on paths of any web application.
        case http
    }

    public let name: String
    public let kind: Kind
    public let rules: [Rule]
    /// `upstream_groups`: which of the user's groups `X-Auth-Groups` carries (nil = all).
    /// Rules always see every group.
    public let upstreamGroups: [Glob]?
    /// Whether any rule names `networks` (only then is the client's address parsed).
    public let usesNetworks: Bool
    /// `negotiate`: Kerberos single sign-on (`Authorization: Negotiate`) is accepted, and a 401
    /// challenges with `Negotiate` (the nginx kit adds `Basic`).
    public let negotiate: Bool
    private let index: RuleIndex

    public init(name: String, kind: Kind, rules: [Rule], upstreamGroups: [Glob]? = nil, negotiate: Bool = false) {
        self.name = name
        self.negotiate = negotiate
        self.kind = kind
        self.rules = rules
        self.upstreamGroups = upstreamGroups
        self.usesNetworks = rules.contains { $0.networks != nil }
        self.index = RuleIndex(rules: rules)
    }

    /// The accesses a request needs, or why its target is refused.
    public func accesses(method: String, uri: OriginalURI) throws(URIRejection) -> [Access] {
        // Methods are case-sensitive tokens (RFC 9110 §9.1): `get` is not GET, and a method
        // with spaces or controls is no method at all.
        guard Self.isToken(method) else { throw URIRejection("the method is not an HTTP method token") }
        switch kind {
        case .registry:
            return try RegistryRoute.accesses(method: method, uri: uri)
        case .http:
            let path = try HTTPPath(canonical: uri.path)
            return [Access(action: method, resource: path.path, alternateResources: path.alternateReadings)]
        }
    }

    /// The groups `X-Auth-Groups` carries for `identity` under this policy, sorted.
    public func upstreamGroups(of identity: Identity) -> [String] {
        guard let upstreamGroups else { return identity.groups }
        return identity.groups.filter { group in
            upstreamGroups.contains { $0.matches(group, user: nil, foldingCase: identity.groupsAreCaseInsensitive) }
        }
    }

    /// Runs the rules for one access from `client`. With `trace`, the verdict records what
    /// every rule did (for `?explain` and `gatehouse check`); without, evaluation allocates next
    /// to nothing.
    ///
    /// In http policies a request is allowed only when the path as written is allowed and no
    /// rule explicitly denies another reading an upstream may make of it (letter case ignored,
    /// trailing slash toggled, suffix removed): a deny rule on `/wiki/admin/**` also refuses
    /// `/wiki/ADMIN/x` and `/wiki/admin`, which IIS, Express or Spring serve as the same page.
    public func evaluate(_ access: Access, identity: Identity?, client: ClientIP? = nil, trace wantsTrace: Bool = true) -> RuleVerdict {
        if kind == .registry, access.action == RegistryAction.login.rawValue {
            // SPEC: /v2/ is for any authenticated user, and always challenges anonymous
            // clients, which only send credentials after a 401 (skopeo, docker).
            if identity != nil {
                return RuleVerdict(allowed: true, rule: "login", reason: "any authenticated user may log in", trace: [])
            }
            return RuleVerdict(allowed: false, rule: "login", reason: "credentials are required to log in", trace: [])
        }
        // Registry repository names are lower-case; so is the user name that fills ${user}.
        let patternUser = kind == .registry ? identity?.user.lowercased() : identity?.user
        let candidates = index.candidates(for: identity)
        var trace: [RuleTrace] = []
        let decidingRule: Rule?
        if wantsTrace {
            decidingRule = tracedFirstMatch(access, identity: identity, client: client, user: patternUser, trace: &trace)
        } else {
            decidingRule = firstMatch(access.resource, candidates: candidates, client: client, user: patternUser, foldingCase: false)
        }
        guard let rule = decidingRule else {
            return RuleVerdict(allowed: false, rule: "default-deny", reason: "no rule of policy \(name) matches \(access)", trace: trace)
        }
        let primary = verdict(rule, access, trace: trace)
        guard primary.allowed, kind == .http, let resource = access.resource else { return primary }
        let readings = [(resource, true)] + access.alternateResources.flatMap { [($0, false), ($0, true)] }
        for (reading, foldingCase) in readings {
            guard let other = firstMatch(reading, candidates: candidates, client: client, user: patternUser, foldingCase: foldingCase),
                !other.allows(access.action)
            else { continue }
            let spelled = foldingCase ? "\(reading) (letter case ignored)" : reading
            trace.append(RuleTrace(rule: other.label, result: "matched \(spelled): does not allow \(access.action)"))
            return RuleVerdict(
                allowed: false,
                rule: other.label,
                reason: "rule \(other.label) does not allow \(access.action) on \(spelled), which an upstream may serve for \(resource)",
                trace: trace
            )
        }
        return primary
    }

    /// The first rule, among `candidates`, about this client and resource.
    private func firstMatch(_ resource: String?, candidates: [Int], client: ClientIP?, user: String?, foldingCase: Bool) -> Rule? {
        for position in candidates {
            let rule = rules[position]
            guard rule.admits(client), rule.covers(resource, user: user, foldingCase: foldingCase) else { continue }
            return rule
        }
        return nil
    }

    /// ``firstMatch`` over every rule, saying what each one did.
    private func tracedFirstMatch(_ access: Access, identity: Identity?, client: ClientIP?, user: String?, trace: inout [RuleTrace]) -> Rule? {
        for rule in rules {
            guard rule.appliesTo(identity) else {
                trace.append(RuleTrace(rule: rule.label, result: "skipped: not about this requester"))
                continue
            }
            guard rule.admits(client) else {
                trace.append(RuleTrace(rule: rule.label, result: "skipped: the client is not in its networks"))
                continue
            }
            guard rule.covers(access.resource, user: user) else {
                trace.append(RuleTrace(rule: rule.label, result: "skipped: \(access.resource ?? "this request") is not in its patterns"))
                continue
            }
            let allowed = rule.allows(access.action)
            trace.append(RuleTrace(rule: rule.label, result: allowed ? "matched: allows \(access.action)" : "matched: does not allow \(access.action)"))
            return rule
        }
        return nil
    }

    private static let tokenPunctuation = Set("!#$%&'*+-.^_`|~".utf8)

    /// RFC 9110 `token`: one or more of `!#$%&'*+-.^_`|~`, digits and letters.
    static func isToken(_ method: String) -> Bool {
        !method.utf8.isEmpty && method.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
            default: tokenPunctuation.contains(byte)
            }
        }
    }
}

extension Policy {
    /// The verdict of the rule that decides.
    private func verdict(_ rule: Rule, _ access: Access, trace: [RuleTrace] = []) -> RuleVerdict {
        let allowed = rule.allows(access.action)
        let reason = allowed ? "rule \(rule.label) allows \(access)" : "rule \(rule.label) does not allow \(access)"
        return RuleVerdict(allowed: allowed, rule: rule.label, reason: reason, trace: trace)
    }
}

/// The outcome of a policy's rules for one access.
public struct RuleVerdict: Sendable {
    public let allowed: Bool
    public let rule: String
    public let reason: String
    public let trace: [RuleTrace]
}

/// What one rule did with a request, for `?explain` and `gatehouse check`.
public struct RuleTrace: Sendable, Equatable, Codable {
    public let rule: String
    public let result: String
}
