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
    private let index: RuleIndex

    public init(name: String, kind: Kind, rules: [Rule]) {
        self.name = name
        self.kind = kind
        self.rules = rules
        self.index = RuleIndex(rules: rules)
    }

    /// The accesses a request needs, or why its target is refused.
    public func accesses(method: String, uri: OriginalURI) throws(URIRejection) -> [Access] {
        switch kind {
        case .registry:
            return try RegistryRoute.accesses(method: method, uri: uri)
        case .http:
            return [Access(action: method.uppercased(), resource: uri.path)]
        }
    }

    /// Runs the rules for one access. With `trace`, the verdict records what every rule did
    /// (for `?explain` and `gatehouse check`); without, evaluation allocates next to nothing.
    public func evaluate(_ access: Access, identity: Identity?, trace wantsTrace: Bool = true) -> RuleVerdict {
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
        guard wantsTrace else {
            // Hot path: only the rules about this requester, in order, and no trace.
            for position in index.candidates(for: identity) {
                let rule = rules[position]
                guard rule.covers(access.resource, user: patternUser) else { continue }
                return verdict(rule, access)
            }
            return RuleVerdict(allowed: false, rule: "default-deny", reason: "no rule of policy \(name) matches \(access)", trace: [])
        }
        var trace: [RuleTrace] = []
        for rule in rules {
            guard rule.appliesTo(identity) else {
                trace.append(RuleTrace(rule: rule.label, result: "skipped: not about this requester"))
                continue
            }
            guard rule.covers(access.resource, user: patternUser) else {
                trace.append(RuleTrace(rule: rule.label, result: "skipped: \(access.resource ?? "this request") is not in its patterns"))
                continue
            }
            let allowed = rule.allows(access.action)
            trace.append(RuleTrace(rule: rule.label, result: allowed ? "matched: allows \(access.action)" : "matched: does not allow \(access.action)"))
            return verdict(rule, access, trace: trace)
        }
        return RuleVerdict(allowed: false, rule: "default-deny", reason: "no rule of policy \(name) matches \(access)", trace: trace)
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
