// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Glibc
public import Logging
import NIOConcurrencyHelpers

/// The tokens a server accepts, held in memory so that a token login is one dictionary lookup
/// and one SHA-256 on the event loop, and kept in step with the store by a poll once a second
/// (a revocation anywhere counts within 2 s). When the store cannot be read, token logins
/// answer 503 until it can: a revocation might be missed, so the old list is not trusted.
public final class TokenAuthority: Sendable {
    public let settings: TokenConfiguration
    private let connection: TokenStoreConnection
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    /// Last uses not yet written, by token id.
    private let uses = NIOLockedValueBox([String: Int64]())

    struct State {
        var tokens: [String: AccessToken] = [:]
        var changeCount: Int64?
        var problem: String? = "the token store has not been read yet"
        var lastRead: ContinuousClock.Instant?
    }

    /// How often the store is asked for changes.
    static let pollInterval = Duration.seconds(1)
    /// A list older than this is not trusted (a poll that hangs on a dead database).
    static let maximumAge = Duration.seconds(5)
    /// The whole list is reread this often even without a change count (a store edited by hand).
    static let fullReadInterval = Duration.seconds(60)

    /// Opens a store for the settings (the SQLite and PostgreSQL drivers live in
    /// GatehouseTokenStores, so that the core and its fuzzers do not carry them).
    public typealias Opener = @Sendable (TokenConfiguration, Logger) async throws -> any TokenStore

    /// Opens nothing yet: the store is opened (and its schema created or upgraded) on first
    /// use, and again after it failed, so that a server starts while its database is down.
    public init(settings: TokenConfiguration, logger: Logger, opener: @escaping Opener) {
        self.settings = settings
        self.logger = logger
        connection = TokenStoreConnection(settings: settings, logger: logger, opener: opener)
    }

    /// The store, opened and migrated. Throws ``TokenStoreUnavailable``.
    package func store() async throws -> any TokenStore { try await connection.store() }

    /// What the event loop learns about a presented token.
    public enum Lookup: Sendable {
        case found(AccessToken)
        case unknown
        case unavailable(String)
    }

    /// The live token with this id, without waiting.
    public func lookUp(id: String) -> Lookup {
        state.withLockedValue { state in
            if let problem = state.problem { return .unavailable(problem) }
            if let lastRead = state.lastRead, lastRead.duration(to: .now) > Self.maximumAge {
                return .unavailable("the token store has not answered for \(lastRead.duration(to: .now).components.seconds) s")
            }
            return state.tokens[id].map(Lookup.found) ?? .unknown
        }
    }

    /// Notes a successful login; written to the store in the next batch.
    public func recordUse(id: String) {
        let now = Self.now()
        uses.withLockedValue { $0[id] = now }
    }

    /// Polls the store until the task is cancelled, writing last-used times every few seconds.
    public func run() async {
        var lastFlush = ContinuousClock.now
        var lastFullRead = ContinuousClock.now
        while !Task.isCancelled {
            let full = lastFullRead.duration(to: .now) >= Self.fullReadInterval
            if full { lastFullRead = .now }
            await refresh(full: full)
            if lastFlush.duration(to: .now) >= .seconds(5) {
                lastFlush = .now
                await flushUses()
            }
            try? await Task.sleep(for: Self.pollInterval)
        }
        await flushUses()
    }

    /// Reads the live tokens when the store's change count moved (or `full`).
    public func refresh(full: Bool = false) async {
        do {
            let database = try await store()
            let count = try await database.changeCount()
            let known = state.withLockedValue { $0.problem == nil ? $0.changeCount : nil }
            if full || known != count {
                let live = try await database.liveTokens(now: Self.now())
                let tokens = Dictionary(live.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
                state.withLockedValue { state in
                    state.tokens = tokens
                    state.changeCount = count
                }
            }
            let recovered = state.withLockedValue { state in
                defer {
                    state.problem = nil
                    state.lastRead = .now
                }
                return state.problem != nil
            }
            if recovered { logger.info("token store readable", metadata: ["store": "\(settings.store)", "tokens": "\(state.withLockedValue { $0.tokens.count })"]) }
        } catch {
            let first = state.withLockedValue { state in
                defer { state.problem = "the token store is unavailable: \(error)" }
                return state.problem == nil
            }
            if first { logger.error("token store unavailable; token logins answer 503", metadata: ["store": "\(settings.store)", "error": "\(error)"]) }
        }
    }

    /// Writes pending last-used times (also on a graceful stop).
    public func flushUses() async {
        let pending = uses.withLockedValue { uses in
            defer { uses = [:] }
            return uses
        }
        guard !pending.isEmpty else { return }
        do {
            try await store().recordUse(pending)
        } catch {
            // Last-used times are a courtesy; a lost batch is not worth holding memory for.
            logger.warning("could not write last-used times of tokens", metadata: ["error": "\(error)"])
        }
    }

    public func close() async { await connection.close() }

    // MARK: Management (the command line and the self-service endpoints)

    /// Makes a token for `owner` (already looked up in its backend and found usable).
    public func create(owner: Identity, name: String, scope: TokenScope, lifetime: Duration) async throws -> (AccessToken, TokenSecret) {
        guard lifetime > .zero else { throw TokenRequestError("the expiry must be in the future") }
        guard lifetime <= settings.maxLifetime else {
            throw TokenRequestError("the expiry may be at most \(DurationText.format(settings.maxLifetime)) (tokens.max_lifetime)")
        }
        guard name.unicodeScalars.count <= 100, !name.containsControlCharacter else {
            throw TokenRequestError("the name must be at most 100 characters without control characters")
        }
        let secret = TokenSecret.generate()
        let now = Self.now()
        let token = AccessToken(
            id: secret.id, secretHash: secret.hash, owner: owner.user, backend: owner.backend, name: name, scope: scope,
            createdAt: now, expiresAt: now + max(1, lifetime.components.seconds)
        )
        try await store().insert(token)
        await refresh()
        return (token, secret)
    }

    public func list(owner: Identity?) async throws -> [AccessToken] {
        try await store().list(owner: owner.map { ($0.user, $0.backend) })
    }

    /// Tokens of any backend whose owner is `user`, for the command line's `--user`.
    public func list(user: String) async throws -> [AccessToken] {
        try await store().list(owner: nil).filter { $0.owner == user }
    }

    public func revoke(id: String, owner: Identity?) async throws -> Bool {
        let revoked = try await store().revoke(id: id, owner: owner.map { ($0.user, $0.backend) })
        if revoked { await refresh() }
        return revoked
    }

    public func revokeAll(user: String) async throws -> Int {
        let count = try await store().revokeAll(user: user)
        if count > 0 { await refresh() }
        return count
    }

    /// Unix seconds.
    static func now() -> Int64 { Int64(time(nil)) }
}

/// A token request that cannot be granted, in words for the caller.
public struct TokenRequestError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Opens the configured store once, and again after opening failed.
actor TokenStoreConnection {
    private let settings: TokenConfiguration
    private let logger: Logger
    private let opener: TokenAuthority.Opener
    private var opening: Task<any TokenStore, any Error>?

    init(settings: TokenConfiguration, logger: Logger, opener: @escaping TokenAuthority.Opener) {
        self.settings = settings
        self.logger = logger
        self.opener = opener
    }

    func store() async throws -> any TokenStore {
        let task: Task<any TokenStore, any Error>
        if let opening {
            task = opening
        } else {
            let (settings, logger, opener) = (settings, logger, opener)
            task = Task {
                let store = try await opener(settings, logger)
                do {
                    try await store.prepare()
                } catch {
                    await store.close()
                    throw error
                }
                return store
            }
            opening = task
        }
        do {
            return try await task.value
        } catch {
            // The next caller tries again (the database may be back).
            opening = nil
            throw error as? TokenStoreUnavailable ?? TokenStoreUnavailable("\(error)")
        }
    }

    func close() async {
        if let store = try? await opening?.value { await store.close() }
        opening = nil
    }
}
