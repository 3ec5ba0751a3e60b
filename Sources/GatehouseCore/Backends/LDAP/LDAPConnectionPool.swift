// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import CLDAP
import NIOConcurrencyHelpers

/// Idle connections to a directory, with failover across its URLs.
///
/// A connection is used by one thread at a time: it leaves the pool for the duration of
/// ``withConnection(_:)``. A server that fails to connect is skipped for a back-off period
/// while others are tried. A pooled connection that turns out dead (the server restarted) is
/// dropped and the operation retried once on a fresh one.
final class LDAPConnectionPool: Sendable {
    /// How a fresh connection is prepared: a service bind, or nothing (user-bind connections).
    let prepare: @Sendable (LDAPConnection) throws(LDAPError) -> Void
    private let urls: [String]
    private let settings: LDAPConnection.Settings
    private let capacity: Int
    private let idle = NIOLockedValueBox<[LDAPConnection]>([])
    private let deadUntil = NIOLockedValueBox<[String: ContinuousClock.Instant]>([:])
    /// Connections open and lent out, reported after every change (for the metrics).
    private let usage = NIOLockedValueBox<(open: Int, inUse: Int)>((0, 0))
    private let report: @Sendable (_ open: Int, _ inUse: Int) -> Void
    /// Set by ``drain()``: connections that come back afterwards are closed, not kept.
    private let closed = NIOLockedValueBox(false)
    static let backOff = Duration.seconds(10)

    init(
        urls: [String],
        settings: LDAPConnection.Settings,
        capacity: Int,
        report: @escaping @Sendable (_ open: Int, _ inUse: Int) -> Void = { _, _ in },
        prepare: @escaping @Sendable (LDAPConnection) throws(LDAPError) -> Void
    ) {
        self.urls = urls
        self.settings = settings
        self.capacity = capacity
        self.report = report
        self.prepare = prepare
    }

    private func adjust(open: Int = 0, inUse: Int = 0) {
        let now = usage.withLockedValue { usage in
            usage.open += open
            usage.inUse += inUse
            return usage
        }
        report(now.open, now.inUse)
    }

    /// Runs `body` on a pooled or fresh connection. Blocking: call it on the LDAP thread pool.
    func withConnection<T>(_ body: (LDAPConnection) throws(LDAPError) -> T) throws(LDAPError) -> T {
        let pooled = idle.withLockedValue { $0.popLast() }
        if let pooled {
            adjust(inUse: 1)
            do {
                let result = try body(pooled)
                release(pooled)
                return result
            } catch {
                guard error.isUnavailable else {
                    release(pooled)
                    throw error
                }
                pooled.close()
                adjust(open: -1, inUse: -1)
                // Stale (the server restarted or dropped an idle connection): try once more on a
                // fresh one. Not after a timeout: that would double the worst case.
                guard error.code == LDAP_SERVER_DOWN else { throw error }
            }
        }
        let connection = try connect()
        adjust(open: 1, inUse: 1)
        do {
            let result = try body(connection)
            release(connection)
            return result
        } catch {
            if error.isUnavailable {
                connection.close()
                adjust(open: -1, inUse: -1)
            } else {
                release(connection)
            }
            throw error
        }
    }

    /// A new, prepared connection to the first URL that answers.
    func connect() throws(LDAPError) -> LDAPConnection {
        let now = ContinuousClock.now
        let dead = deadUntil.withLockedValue { $0.filter { $0.value > now }.keys }
        // Live servers in order first, then the dead ones: with all of them down we still try.
        let ordered = urls.filter { !dead.contains($0) } + urls.filter { dead.contains($0) }
        var lastError = LDAPError(code: -1, message: "no LDAP URL configured", step: .connect)
        for url in ordered {
            do {
                let connection = try LDAPConnection(url: url, settings: settings)
                try prepare(connection)
                _ = deadUntil.withLockedValue { $0.removeValue(forKey: url) }
                return connection
            } catch {
                lastError = error
                guard error.isUnavailable || error.step == .connect || error.step == .tls else { throw error }
                deadUntil.withLockedValue { $0[url] = .now + Self.backOff }
            }
        }
        throw lastError
    }

    private func release(_ connection: LDAPConnection) {
        let isClosed = closed.withLockedValue { $0 }
        let kept = !isClosed && idle.withLockedValue { idle -> Bool in
            guard idle.count < capacity else { return false }
            idle.append(connection)
            return true
        }
        if kept {
            adjust(inUse: -1)
        } else {
            connection.close()
            adjust(open: -1, inUse: -1)
        }
    }

    /// Closes every idle connection now, and every lent one when it comes back.
    func drain() {
        closed.withLockedValue { $0 = true }
        let connections = idle.withLockedValue { idle -> [LDAPConnection] in
            defer { idle.removeAll() }
            return idle
        }
        for connection in connections { connection.close() }
        if !connections.isEmpty { adjust(open: -connections.count) }
    }
}
