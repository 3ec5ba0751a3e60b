// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// Turns an ``AuthRequest`` into a ``Decision``: the one code path behind `/auth` and
/// `gatehouse check`.
///
/// Order: pick the policy; refuse a non-canonical target (403, before any password work);
/// authenticate against the backends in order; run the rules for every access the request
/// needs. Anything unexpected fails closed.
public struct DecisionEngine: Sendable {
    public let realm: String
    public let defaultPolicy: String
    public let policies: [String: Policy]
    public let backends: [any CredentialBackend]
    /// Recent verdicts on credentials; a new engine (a reload) starts with an empty one.
    public let cache: CredentialCache
    /// Failed logins per user and client address.
    public let lockout: LockoutTracker
    /// Decisions, cache, lockouts and backends, as counted for `/metrics`.
    public let metrics: GatehouseMetrics
    /// Access tokens, when configured; shared by every engine of a server (it outlives reloads).
    public let tokens: TokenAuthority?
    /// Kerberos single sign-on for policies with `negotiate: true`, when configured.
    public let kerberos: KerberosAcceptor?
    /// Token owners and Kerberos principals looked up without a password, for the cache ttl.
    let accounts: AccountCache
    private let decisionSeries: GatehouseMetrics.DecisionSeries
    private let inFlight = InFlightVerifications<Verification>()

    typealias Verification = Result<Verified, AuthenticationFailure>

    /// Who the requester turned out to be, and how that is known.
    struct Verified: Sendable {
        /// Nil for an anonymous request.
        var identity: Identity?
        var cached = false
        /// Set when a backend was down and a recent verdict stood in (`stale_grace`).
        var staleBecause: String?
        /// The access token the requester presented, whose scope narrows the rules.
        var token: AccessToken?
        /// The Kerberos principal of a Negotiate login, as the ticket spelled it.
        var principal: String?

        static let anonymous = Verified(identity: nil)
    }

    public init(
        realm: String,
        defaultPolicy: String,
        policies: [Policy],
        backends: [any CredentialBackend],
        cache: CacheConfiguration = CacheConfiguration(),
        lockout: LockoutConfiguration = LockoutConfiguration(),
        lockoutTracker: LockoutTracker? = nil,
        tokens: TokenAuthority? = nil,
        kerberos: KerberosAcceptor? = nil,
        metrics: GatehouseMetrics = .disabled
    ) {
        self.realm = realm
        challenge = Self.basicChallenge(realm: realm)
        self.defaultPolicy = defaultPolicy
        self.policies = Dictionary(policies.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.backends = backends
        self.cache = CredentialCache(configuration: cache, metrics: metrics)
        // A reload keeps counting: editing a file must not lift a lockout.
        self.lockout = lockoutTracker.flatMap { $0.configuration == lockout ? $0 : nil } ?? LockoutTracker(configuration: lockout)
        self.metrics = metrics
        self.tokens = tokens
        self.kerberos = kerberos
        accounts = AccountCache(configuration: cache)
        decisionSeries = GatehouseMetrics.DecisionSeries(metrics: metrics, policies: policies.map(\.name), backends: backends.map(\.name))
    }

    /// Closes the backends' connections: after a graceful stop, or when a reload was refused.
    public func shutdown() {
        for backend in backends { backend.shutdown() }
    }

    /// The `WWW-Authenticate` value of a 401 of `policy`: `Negotiate` alone where Kerberos is
    /// accepted (nginx 1.22 passes only the first such header, and one combined header breaks
    /// Chromium: the kit adds `Basic` itself), else the Basic challenge.
    public func challenge(for policy: String) -> String {
        policies[policy]?.negotiate == true && kerberos != nil ? "Negotiate" : challenge
    }

    /// The Basic `WWW-Authenticate` value of every other 401 (made once: the hot path sends it).
    public let challenge: String

    static func basicChallenge(realm: String) -> String {
        var escaped = ""
        for character in realm {
            if character == "\\" || character == "\"" { escaped.append("\\") }
            escaped.append(character)
        }
        return "Basic realm=\"\(escaped)\", charset=\"UTF-8\""
    }

    /// Decides `request`, waiting for a backend when the cache cannot answer.
    public func decide(_ request: AuthRequest) async -> Decision {
        switch decideImmediately(request) {
        case .decided(let decision, let notBefore):
            if let notBefore { try? await Task.sleep(until: notBefore, clock: .continuous) }
            return decision
        case .pending(let pending):
            return await complete(pending)
        }
    }

    /// Decides `request` as far as possible without waiting: on an event loop, a cached
    /// identity, an anonymous or malformed request, or a refusal whose timing is known, is
    /// decided here with no task hop and no thread. `notBefore` is when a refusal may be
    /// answered (as late as a real verification would be). A request that needs a backend is
    /// handed back as ``PendingDecision``, for ``complete(_:)`` off the event loop.
    public func decideImmediately(_ request: AuthRequest) -> ImmediateDecision {
        let started = ContinuousClock.now
        let prepared: Prepared
        switch prepare(request) {
        case .success(let value): prepared = value
        case .failure(let refusal): return .decided(finish(refusal.decision, request: request, started: started), notBefore: nil)
        }
        switch authenticateNow(request.credentials, address: request.clientAddress, started: started, negotiate: prepared.policy.negotiate) {
        case .done(let verification):
            return .decided(finish(conclude(prepared, verification, request: request), request: request, started: started), notBefore: nil)
        case .refuse(let verification, _, let estimate?):
            metrics.timingWait(estimate - started.duration(to: .now))
            return .decided(finish(conclude(prepared, verification, request: request), request: request, started: started), notBefore: started + estimate)
        case let work:
            return .pending(PendingDecision(request: request, prepared: prepared, work: work, started: started))
        }
    }

    /// Finishes a decision that needs a backend (or a first timing measurement).
    public func complete(_ pending: PendingDecision) async -> Decision {
        let verification: Verification
        switch pending.work {
        case .done(let value):
            verification = value
        case .refuse(let value, let login, _):
            await equaliseTiming(login, since: pending.started)
            verification = value
        case .verify(let job):
            verification = await verify(job)
        case .lookUp(let user):
            verification = await lookUp(user)
        case .lookUpOwner(let token, let generation):
            verification = await lookUpOwner(token, generation: generation)
        case .negotiate(let token):
            verification = await acceptNegotiate(token)
        }
        return finish(conclude(pending.prepared, verification, request: pending.request), request: pending.request, started: pending.started)
    }

    /// The client and the metrics, once a decision is known.
    private func finish(_ decision: Decision, request: AuthRequest, started: ContinuousClock.Instant) -> Decision {
        var decision = decision
        decision.client = request.clientAddress
        // A policy name that is not configured came from the request path: not a label value
        // (DecisionSeries counts it as "unknown").
        decisionSeries.record(outcome: decision.outcome, policy: decision.policy, backend: decision.backend, latency: started.duration(to: .now))
        return decision
    }

    /// The policy and the accesses the request needs, or the refusal of its target.
    struct Prepared: Sendable {
        let policy: Policy
        let accesses: [Access]
        let decision: Decision
    }

    struct Refusal: Error {
        let decision: Decision
    }

    private func prepare(_ request: AuthRequest) -> Result<Prepared, Refusal> {
        let policyName = request.policyName ?? defaultPolicy
        guard let policy = policies[policyName] else {
            return .failure(Refusal(decision: .make(.deny, policy: policyName, rule: "unknown-policy", reason: "there is no policy named \(policyName)", status: 404)))
        }
        // 1. The target, before any password work.
        let accesses: [Access]
        switch request.originalURIs.count {
        case 0:
            return .failure(Refusal(decision: .make(.deny, policy: policy.name, rule: "invalid-request", reason: "the request has no X-Original-URI")))
        case 1:
            do {
                let uri = try OriginalURI(validating: request.originalURIs[0])
                accesses = try policy.accesses(method: request.method, uri: uri)
            } catch {
                return .failure(Refusal(decision: .make(.deny, policy: policy.name, rule: "invalid-request", reason: error.description)))
            }
        default:
            return .failure(Refusal(decision: .make(.deny, policy: policy.name, rule: "invalid-request", reason: "the request has more than one X-Original-URI")))
        }
        var decision = Decision.make(.deny, policy: policy.name, rule: "default-deny", reason: "")
        decision.action = accesses[0].action
        switch policy.kind {
        case .registry: decision.repository = accesses[0].resource
        case .http: decision.path = accesses[0].resource
        }
        return .success(Prepared(policy: policy, accesses: accesses, decision: decision))
    }

    /// 2. The requester, 3. the rules for every access the request needs.
    private func conclude(_ prepared: Prepared, _ verification: Verification, request: AuthRequest) -> Decision {
        let policy = prepared.policy
        var decision = prepared.decision
        let identity: Identity?
        var staleBecause: String?
        var token: AccessToken?
        switch verification {
        case .success(let found):
            identity = found.identity
            decision.cached = found.cached
            staleBecause = found.staleBecause
            token = found.token
            decision.token = token?.id
            decision.principal = found.principal
        case .failure(.challenge(let reason, let detail, let cached, let tokenID, let principal)):
            decision.cached = cached
            decision.token = tokenID
            decision.principal = principal
            decision.settle(.challenge, rule: "authentication", reason: reason)
            decision.logDetail = detail
            return decision
        case .failure(.unavailable(let reason, let tokenID)):
            decision.token = tokenID
            decision.settle(.unavailable, rule: "backend-unavailable", reason: reason)
            return decision
        }
        decision.user = identity?.user
        decision.groups = identity?.groups ?? []
        decision.backend = identity?.backend

        let client = policy.usesNetworks ? request.clientAddress.flatMap(ClientIP.init) : nil
        var first: RuleVerdict?
        for access in prepared.accesses {
            let verdict = policy.evaluate(access, identity: identity, client: client, trace: request.wantsTrace)
            decision.trace += verdict.trace
            if first == nil { first = verdict }
            guard verdict.allowed else {
                decision.settle(identity == nil ? .challenge : .deny, rule: verdict.rule, reason: verdict.reason)
                if let staleBecause { decision.markStale(staleBecause) }
                if token != nil { metrics.tokenLogin(.denied) }
                return decision
            }
        }
        if let token {
            // The token narrows what the rules give its owner; it never adds.
            let outside = token.scope.policy != policy.name ? prepared.accesses.first : prepared.accesses.first { !token.scope.permits($0, owner: token.owner) }
            if let outside {
                decision.settle(.deny, rule: "token-scope", reason: token.scope.policy != policy.name
                    ? "the access token is for policy \(token.scope.policy)"
                    : "the access token does not allow \(outside.description)")
                metrics.tokenLogin(.denied)
                return decision
            }
            metrics.tokenLogin(.allowed)
            tokens?.recordUse(id: token.id)
        }
        decision.settle(.allow, rule: first?.rule ?? "default-deny",
                        reason: prepared.accesses.count > 1 ? prepared.accesses.map(\.description).joined(separator: " and ") + " are allowed" : (first?.reason ?? ""))
        if let identity {
            decision.upstreamGroups = policy.upstreamGroups == nil ? identity.allGroupsHeader : UpstreamGroups(policy.upstreamGroups(of: identity))
            decision.email = identity.email
            decision.displayName = identity.displayName
        }
        if let staleBecause { decision.markStale(staleBecause) }
        return decision
    }

    enum AuthenticationFailure: Error {
        /// 401. `reason` is what the client may see; `detail` is for the log only.
        /// `token` / `principal`: the access token id or Kerberos principal presented, for the log.
        case challenge(reason: String, detail: String?, cached: Bool = false, token: String? = nil, principal: String? = nil)
        case unavailable(String, token: String? = nil)
    }

    /// The one sentence every failed login gets, whatever the cause: a 401 never says whether
    /// the user exists.
    static let invalidCredentials = "invalid user name or password"
    /// A Negotiate token that could not be used (expired, replayed, wrong key, NTLM…): says
    /// nothing about the user either.
    static let kerberosFailed = "Kerberos authentication failed"

    /// A verification to run on a backend: credentials not in the cache.
    struct VerificationJob: Sendable {
        let parsed: BasicCredentials
        let key: CredentialCache.Key
        let generation: Int
        let lockoutNames: Set<String>
        let address: String?
        let started: ContinuousClock.Instant
    }

    /// How far authentication got without waiting.
    enum Authentication: Sendable {
        /// Known now: a cached identity or failure, no or malformed credentials.
        case done(Verification)
        /// A refusal that must take as long as a verification of `login`'s password: answer at
        /// `started + estimate`, or, before the backend has timed one (nil), after measuring it.
        /// (The login only: a pending decision holds no password.)
        case refuse(Verification, login: String, estimate: Duration?)
        /// The backends must verify.
        case verify(VerificationJob)
        /// `gatehouse check --assume-authenticated`: the backends look the user up.
        case lookUp(String)
        /// A valid access token whose owner is not in the cache: its backend looks the owner up.
        case lookUpOwner(AccessToken, generation: Int)
        /// A Kerberos token: the keytab verifies it on the thread pool, the directory maps its principal.
        case negotiate([UInt8])
    }

    func authenticateNow(_ credentials: AuthRequest.Credentials, address: String?, started: ContinuousClock.Instant, negotiate: Bool = false) -> Authentication {
        let parsed: BasicCredentials
        switch credentials {
        case .anonymous, .authorizationHeaders([]):
            return .done(.success(.anonymous))
        case .authorizationHeaders(let values) where values.count > 1:
            return .done(.failure(.challenge(reason: "the request has more than one Authorization header", detail: nil)))
        case .authorizationHeaders(let values):
            if negotiate, let kerberos {
                switch NegotiateToken.parse(values[0]) {
                case .notNegotiate: break
                case .malformed(let why): return .done(.failure(.challenge(reason: Self.kerberosFailed, detail: why)))
                case .token(let token):
                    // No lockout: a ticket cannot be guessed. What is not a ticket for us is
                    // refused here, before it takes a thread-pool slot.
                    if case .failure(let why) = kerberos.precheck(token) {
                        return .done(.failure(.challenge(reason: Self.kerberosFailed, detail: why.description)))
                    }
                    return .negotiate(token)
                }
            }
            do {
                parsed = try BasicCredentials(authorizationHeader: values[0])
            } catch {
                return .done(.failure(.challenge(reason: "malformed credentials: \(error)", detail: nil)))
            }
        case .password(let user, let password):
            do {
                parsed = try BasicCredentials(user: user, password: password)
            } catch {
                return .done(.failure(.challenge(reason: "malformed credentials: \(error)", detail: nil)))
            }
        case .assumeAuthenticated(let user):
            return .lookUp(user)
        }

        // A token pasted into the user-name field: refused without echoing it into any log.
        if TokenSecret.looksLikeToken(parsed.user) {
            return .done(.failure(.challenge(reason: Self.invalidCredentials, detail: "an access token in the user-name field (it is the password; the user name is its owner's)")))
        }
        // A token cannot be guessed (256 random bits) and costs no hashing, so it neither
        // counts toward a lockout nor is refused by one: a guesser locking alice's password
        // out must not stop her CI job.
        if let tokens, TokenSecret.looksLikeToken(parsed.password) { return authenticateToken(parsed, tokens: tokens) }

        let lockoutNames = Set(backends.map { $0.lockoutName(for: parsed.user) })
        let status = lockout.status(users: lockoutNames, address: address)
        if let scope = status.locked {
            // No verification, no hashing: wait about as long as one would take, so that the
            // lockout does not show in the timing, then refuse.
            metrics.refusedGuess(scope: scope.rawValue)
            return refusal(parsed, detail: "user \"\(parsed.user)\": \(status.reason ?? "locked out")")
        }
        // The hot path: one keyed hash and a shard lookup, no bcrypt, no LDAP. A credential
        // verified correct within the cache ttl passes even from an address over its ceiling.
        let key = cache.key(parsed)
        let generation = backends.reduce(0) { $0 &+ $1.currentGeneration() }
        switch cache.lookUp(key, generation: generation) {
        case .authenticated(let identity)?:
            if status.pairHasFailures { lockout.recordSuccess(users: lockoutNames, address: address) }
            return .done(.success(Verified(identity: identity, cached: true)))
        case .rejected?:
            // A failure the cache remembered: counted (once per distinct password and address).
            let reason = Self.invalidCredentials
            let detail = "user \"\(parsed.user)\": failed recently (cached)"
            let locked = lockout.recordFailure(users: lockoutNames, address: address, fingerprint: key.a)
            return .done(.failure(.challenge(reason: reason, detail: locked.isEmpty ? detail : lockoutStarted(locked, detail: detail), cached: true)))
        case nil where status.addressOverCeiling:
            metrics.refusedGuess(scope: LockoutTracker.Scope.address.rawValue)
            return refusal(parsed, detail: "user \"\(parsed.user)\": \(status.reason ?? "address over its ceiling")")
        case nil:
            return .verify(VerificationJob(parsed: parsed, key: key, generation: generation, lockoutNames: lockoutNames, address: address, started: started))
        }
    }

    /// A 401 that waits as long as the first backend's verifications of this login take.
    private func refusal(_ parsed: BasicCredentials, detail: String) -> Authentication {
        let verification: Verification = .failure(.challenge(reason: Self.invalidCredentials, detail: detail))
        guard let first = backends.first else { return .refuse(verification, login: parsed.user, estimate: .zero) }
        return .refuse(verification, login: parsed.user, estimate: first.timingEstimate(for: parsed.user))
    }

    private func lookUp(_ user: String) async -> Verification {
        for backend in backends {
            do {
                if let identity = try await backend.identity(of: user) { return .success(Verified(identity: identity)) }
            } catch {
                return .failure(.unavailable("\(error)"))
            }
        }
        return .failure(.challenge(reason: "no backend knows user \(user)", detail: nil))
    }

    func verify(_ job: VerificationJob) async -> Verification {
        let (parsed, key, lockoutNames, address, started) = (job.parsed, job.key, job.lockoutNames, job.address, job.started)
        // Requests with the same credentials share one verification, and one claim on the
        // lockout counters; distinct guesses each need their own.
        return await inFlight.value(for: key) {
            if let scope = self.lockout.reserveVerification(users: lockoutNames, address: address) {
                self.metrics.refusedGuess(scope: scope.rawValue)
                await self.equaliseTiming(parsed.user, since: started)
                return .failure(.challenge(reason: Self.invalidCredentials, detail: "user \"\(parsed.user)\": too many failed or pending logins for its \(scope.rawValue) counter"))
            }
            let verified = await self.verifyWithBackends(parsed, key: key, generation: job.generation, started: started)
            switch verified {
            case .success(let found) where found.identity != nil && found.staleBecause == nil:
                self.lockout.finishVerification(users: lockoutNames, address: address, outcome: .succeeded)
            case .failure(.challenge(let reason, let detail, let cached, _, _)):
                let locked = self.lockout.finishVerification(users: lockoutNames, address: address, outcome: .failed(fingerprint: key.a))
                if !locked.isEmpty { return .failure(.challenge(reason: reason, detail: self.lockoutStarted(locked, detail: detail), cached: cached)) }
            default:
                self.lockout.finishVerification(users: lockoutNames, address: address, outcome: .unknown)
            }
            return verified
        }
    }

    /// Counts lockouts that just started and says so in the log detail.
    private func lockoutStarted(_ scopes: [LockoutTracker.Scope], detail: String?) -> String {
        for scope in scopes { metrics.lockoutStarted(scope: scope.rawValue) }
        return (detail.map { $0 + "; " } ?? "") + "lockout started for " + scopes.map(\.rawValue).joined(separator: ", ")
    }

    /// Waits as long as the first backend takes to verify this login's password (measuring
    /// one verification first if it has none yet).
    func equaliseTiming(_ login: String, since started: ContinuousClock.Instant) async {
        guard let first = backends.first else { return }
        let waitStarted = ContinuousClock.now
        await first.equaliseTiming(for: login, since: started)
        metrics.timingWait(waitStarted.duration(to: .now))
    }

    private func verifyWithBackends(_ parsed: BasicCredentials, key: CredentialCache.Key, generation: Int, started: ContinuousClock.Instant) async -> Verification {
        for backend in backends {
            do {
                switch try await backend.authenticate(parsed) {
                case .authenticated(let identity):
                    cache.store(.authenticated(identity), for: key, generation: generation)
                    return .success(Verified(identity: identity))
                case .rejected(let why):
                    cache.store(.rejected, for: key, generation: generation)
                    return .failure(.challenge(reason: Self.invalidCredentials, detail: "user \"\(parsed.user)\" in \(backend.name): \(why)"))
                case .unknownUser:
                    continue
                }
            } catch {
                // Never a 401: an outage must not look like a wrong password. A recent success
                // with this very password may stand in (`stale_grace`).
                if let identity = cache.lookUpStale(key, generation: generation) {
                    metrics.staleAnswer(backend: identity.backend)
                    return .success(Verified(identity: identity, cached: true, staleBecause: "\(error)"))
                }
                return .failure(.unavailable("\(error)"))
            }
        }
        await equaliseTiming(parsed.user, since: started)
        cache.store(.rejected, for: key, generation: generation)
        return .failure(.challenge(reason: Self.invalidCredentials, detail: "user \"\(parsed.user)\" is in no backend"))
    }
}

extension Decision {
    /// Says in the reason and the log that the identity came from the cache while its backend
    /// was unreachable (`stale_grace`), whatever the rules then decided.
    mutating func markStale(_ because: String) {
        reason += " (stale credentials: the backend is unavailable)"
        logDetail = "served stale: \(because)"
    }
}

/// What ``DecisionEngine/decideImmediately(_:)`` could say without waiting.
public enum ImmediateDecision: Sendable {
    /// The decision; answer it no earlier than `notBefore` when set.
    case decided(Decision, notBefore: ContinuousClock.Instant?)
    /// A backend must answer first: ``DecisionEngine/complete(_:)``.
    case pending(PendingDecision)
}

/// A decision waiting for a backend (a cache miss) or for a first timing measurement.
public struct PendingDecision: Sendable {
    let request: AuthRequest
    let prepared: DecisionEngine.Prepared
    let work: DecisionEngine.Authentication
    let started: ContinuousClock.Instant
}
