// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

extension DecisionEngine {
    /// A Negotiate token: verified with the keytab on the thread pool, then its principal mapped
    /// through the directory to the canonical user, groups and account state (cached like any
    /// identity). A disabled, locked or expired account is refused even with a valid ticket.
    func acceptNegotiate(_ token: [UInt8]) async -> Verification {
        guard let kerberos, let backend = backends.first(where: { $0.name == kerberos.configuration.backend }) else {
            return .failure(.challenge(reason: Self.kerberosFailed, detail: "Kerberos is not configured"))
        }
        let accepted: KerberosAcceptor.Accepted
        do {
            switch try await kerberos.accept(token) {
            case .success(let value): accepted = value
            case .failure(let error): return .failure(.challenge(reason: Self.kerberosFailed, detail: error.description))
            }
        } catch {
            return .failure(.unavailable("the Kerberos thread pool is stopped: \(error)"))
        }
        guard let (name, realm) = KerberosAcceptor.split(accepted.principal) else {
            return .failure(.challenge(reason: Self.kerberosFailed, detail: "principal \"\(accepted.principal)\" has no realm", principal: accepted.principal))
        }
        // Only the service's own realm: a ticket from a trusted realm names someone else's user.
        guard let serviceRealm = KerberosAcceptor.split(accepted.service)?.realm, serviceRealm.uppercased() == realm.uppercased() else {
            return .failure(.challenge(reason: Self.kerberosFailed, detail: "principal \(accepted.principal) is of another realm than \(accepted.service)", principal: accepted.principal))
        }
        let generation = backends.reduce(0) { $0 &+ $1.currentGeneration() }
        let (state, cached): (AccountCache.State, Bool)
        do {
            (state, cached) = try await accounts.resolve(.principal, name: accepted.principal, lookupName: name, in: backend, generation: generation)
        } catch {
            return .failure(.unavailable("\(error)"))
        }
        switch state {
        case .usable(let identity):
            return .success(Verified(identity: identity, cached: cached, principal: accepted.principal))
        case .refused(let why):
            return .failure(.challenge(reason: Self.invalidCredentials, detail: "principal \(accepted.principal): \(why)", cached: cached, principal: accepted.principal))
        }
    }
}
