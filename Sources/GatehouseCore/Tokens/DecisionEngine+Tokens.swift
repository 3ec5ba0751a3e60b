// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

extension DecisionEngine {
    /// A Basic password that is a `gth_…` token: checked against the in-memory list, then its
    /// owner's current account (cached like any identity). Never reaches a backend as a password.
    func authenticateToken(_ parsed: BasicCredentials, tokens: TokenAuthority) -> Authentication {
        func refuse(_ detail: String, token: String? = nil) -> Authentication {
            metrics.tokenLogin(.refused)
            return .done(.failure(.challenge(reason: Self.invalidCredentials, detail: "user \"\(parsed.user)\": " + detail, token: token)))
        }
        guard let secret = TokenSecret(parsing: parsed.password) else { return refuse("a malformed access token") }
        let token: AccessToken
        switch tokens.lookUp(id: secret.id) {
        case .unavailable(let why):
            metrics.tokenLogin(.unavailable)
            return .done(.failure(.unavailable(why, token: secret.id)))
        case .unknown:
            return refuse("token \(secret.id) is unknown, revoked or expired", token: secret.id)
        case .found(let found):
            token = found
        }
        guard secret.matches(token.secretHash) else { return refuse("token \(secret.id): wrong secret", token: secret.id) }
        guard !token.isExpired(at: TokenAuthority.now()) else { return refuse("token \(secret.id) expired", token: secret.id) }
        guard let backend = backends.first(where: { $0.name == token.backend }) else {
            return refuse("token \(secret.id): its owner's backend \(token.backend) is no longer configured", token: secret.id)
        }
        // Every spelling of the owner's name the backend accepts (ALICE, CORP\alice) is the owner.
        guard backend.lockoutName(for: parsed.user) == backend.lockoutName(for: token.owner) else {
            return refuse("token \(secret.id) belongs to another user", token: secret.id)
        }
        let generation = backends.reduce(0) { $0 &+ $1.currentGeneration() }
        switch accounts.lookUp(.tokenOwner, name: token.owner, backend: token.backend, generation: generation) {
        case .usable(let identity)?:
            return .done(.success(Verified(identity: identity, cached: true, token: token)))
        case .refused(let why)?:
            return refuse("token \(secret.id): owner \(token.owner) is refused (cached): \(why)", token: secret.id)
        case nil:
            return .lookUpOwner(token, generation: generation)
        }
    }

    /// The owner of a valid token, from its backend without a password.
    func lookUpOwner(_ token: AccessToken, generation: Int) async -> Verification {
        guard let backend = backends.first(where: { $0.name == token.backend }) else {
            return .failure(.challenge(reason: Self.invalidCredentials, detail: "token \(token.id): backend \(token.backend) is gone", token: token.id))
        }
        let state: AccountCache.State
        do {
            state = try await accounts.resolve(.tokenOwner, name: token.owner, lookupName: token.owner, in: backend, generation: generation).state
        } catch {
            metrics.tokenLogin(.unavailable)
            return .failure(.unavailable("\(error)", token: token.id))
        }
        switch state {
        case .usable(let identity):
            return .success(Verified(identity: identity, token: token))
        case .refused(let why):
            metrics.tokenLogin(.refused)
            return .failure(.challenge(reason: Self.invalidCredentials, detail: "token \(token.id): owner \(token.owner) is refused: \(why)", token: token.id))
        }
    }

    /// How a request to manage tokens (`/tokens`) authenticated.
    public enum ManagementLogin: Sendable {
        case identity(Identity)
        /// The password was an access token: a token never makes or lists tokens.
        case tokenPresented
        /// 401; the detail is for the log.
        case refused(String)
        case unavailable(String)
    }

    /// Authenticates a token manager with a password, through the cache and the lockout like
    /// any login.
    public func authenticateManager(_ credentials: AuthRequest.Credentials, address: String?) async -> ManagementLogin {
        if case .authorizationHeaders(let values) = credentials, values.count == 1,
            let parsed = try? BasicCredentials(authorizationHeader: values[0]), TokenSecret.looksLikeToken(parsed.password)
        {
            return .tokenPresented
        }
        let started = ContinuousClock.now
        let verification: Verification
        switch authenticateNow(credentials, address: address, started: started) {
        case .done(let value):
            verification = value
        case .refuse(let value, let login, let estimate):
            if let estimate { try? await Task.sleep(until: started + estimate, clock: .continuous) } else { await equaliseTiming(login, since: started) }
            verification = value
        case .verify(let job):
            verification = await verify(job)
        case .lookUp, .lookUpOwner, .negotiate:
            verification = .failure(.challenge(reason: Self.invalidCredentials, detail: "not a password login"))
        }
        switch verification {
        case .success(let verified):
            guard let identity = verified.identity else { return .refused("no credentials") }
            return .identity(identity)
        case .failure(.challenge(let reason, let detail, _, _, _)):
            return .refused(detail ?? reason)
        case .failure(.unavailable(let reason, _)):
            return .unavailable(reason)
        }
    }

    /// The account a token would be made for, looked up without a password (the command line
    /// creates tokens for users who are not present).
    public func tokenOwner(named user: String) async throws(TokenRequestError) -> Identity {
        for backend in backends {
            let result: AuthenticationResult
            do {
                result = try await backend.account(of: user)
            } catch {
                throw TokenRequestError("backend \(backend.name) cannot answer: \(error)")
            }
            switch result {
            case .authenticated(let identity): return identity
            case .rejected(let why): throw TokenRequestError("user \(user) in backend \(backend.name) may not log in: \(why)")
            case .unknownUser: continue
            }
        }
        throw TokenRequestError("no backend knows user \(user)")
    }

    /// Checks a requested scope against the configured policies: the policy exists and its kind
    /// matches what the scope names (repositories for registry policies, paths for http ones).
    public func validate(_ scope: TokenScope) throws(TokenRequestError) {
        guard let policy = policies[scope.policy] else { throw TokenRequestError("there is no policy named \(scope.policy)") }
        switch (policy.kind, scope.kind) {
        case (.registry, .registry), (.http, .http): return
        case (.registry, .http): throw TokenRequestError("policy \(policy.name) is a registry policy: give repositories and actions")
        case (.http, .registry): throw TokenRequestError("policy \(policy.name) is an http policy: give paths and methods")
        }
    }
}
