// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import NIOConcurrencyHelpers

/// Accounts looked up without a password (an access token's owner, a Kerberos ticket's
/// principal) as their backend last described them, so that a repeat login asks no directory.
/// Usable accounts are kept for the cache `ttl`, refused ones for `negative_ttl`; a changed
/// htpasswd or htgroups file (a new generation) makes every entry stale at once.
final class AccountCache: Sendable {
    enum State: Sendable {
        case usable(Identity)
        case refused(String)
    }

    /// What a name is: the two kinds never share an entry, whatever a directory calls its users.
    enum Kind: UInt8, Sendable {
        case tokenOwner
        case principal
    }

    private struct Key: Hashable {
        let kind: Kind
        let backend: String
        let name: String
    }

    private struct Entry {
        let state: State
        let expires: ContinuousClock.Instant
        let generation: Int
    }

    private let entries = NIOLockedValueBox([Key: Entry]())
    private let ttl: Duration
    private let negativeTTL: Duration
    /// Entries need a valid token or ticket, so they are few; the bound only stops a pathological case.
    private let capacity = 10_000

    init(configuration: CacheConfiguration) {
        ttl = configuration.ttl
        negativeTTL = configuration.negativeTTL
    }

    /// The cached state of `name`, or the backend's answer for `lookupName` (stored). Throws
    /// what the backend throws when it cannot answer (nothing is cached then).
    func resolve(_ kind: Kind, name: String, lookupName: String, in backend: any CredentialBackend, generation: Int) async throws -> (state: State, cached: Bool) {
        let key = Key(kind: kind, backend: backend.name, name: name)
        if let state = lookUp(key, generation: generation) { return (state, true) }
        let state: State
        switch try await backend.account(of: lookupName) {
        case .authenticated(let identity): state = .usable(identity)
        case .rejected(let why): state = .refused(why)
        case .unknownUser: state = .refused("no account in backend \(backend.name)")
        }
        store(state, key, generation: generation)
        return (state, false)
    }

    /// The cached state only, for the event loop.
    func lookUp(_ kind: Kind, name: String, backend: String, generation: Int) -> State? {
        lookUp(Key(kind: kind, backend: backend, name: name), generation: generation)
    }

    private func lookUp(_ key: Key, generation: Int) -> State? {
        entries.withLockedValue { entries in
            guard let entry = entries[key], entry.generation == generation, entry.expires > .now else { return nil }
            return entry.state
        }
    }

    private func store(_ state: State, _ key: Key, generation: Int) {
        let lifetime: Duration
        switch state {
        case .usable: lifetime = ttl
        case .refused: lifetime = negativeTTL
        }
        guard lifetime > .zero else { return }
        let entry = Entry(state: state, expires: .now + lifetime, generation: generation)
        entries.withLockedValue { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = entry
        }
    }
}
