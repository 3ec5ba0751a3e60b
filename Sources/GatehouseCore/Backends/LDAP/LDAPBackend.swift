// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import CLDAP
import Glibc
public import Logging
import NIOPosix
import Synchronization

/// Users and groups from an LDAP directory or Active Directory, through OpenLDAP's libldap.
///
/// A verification is: search the user with the service account (pooled connections), bind as
/// the found entry with the user's password (a separate pool of bind connections, never the
/// service ones), then read the groups with the service account. Every libldap call blocks, so
/// all of it runs on this backend's own thread pool of `pool_size` threads, never on an event
/// loop and never queued behind bcrypt on the shared pool.
public final class LDAPBackend: CredentialBackend {
    public let name: String
    public let configuration: LDAPConfiguration
    private let logger: Logger
    private let threadPool: NIOThreadPool
    private let searches: LDAPConnectionPool
    private let binds: LDAPConnectionPool
    private let metrics: GatehouseMetrics
    /// The CA file as it was when this configuration was loaded.
    private let pinnedCA: PinnedFile?
    /// Verifications started and not finished, to tell when one has to queue for a thread.
    private let inFlight = Atomic<Int>(0)
    /// How long a verification (search, bind, groups) takes, for refusals that never reach
    /// the directory.
    private let times = VerificationTimes()

    /// Reads the service password and starts the thread pool; connects lazily.
    public init(configuration: LDAPConfiguration, logger: Logger, metrics: GatehouseMetrics = .disabled) throws {
        self.name = configuration.name
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
        let name = configuration.name
        metrics.ldapPoolSize(backend: name, size: configuration.poolSize)
        let password = try Self.servicePassword(configuration)
        let pinnedCA = try configuration.caFile.map { path throws in try PinnedFile(copying: path) }
        self.pinnedCA = pinnedCA
        let settings = LDAPConnection.Settings(startTLS: configuration.startTLS, caFile: pinnedCA?.path, timeout: configuration.timeout)
        let bindDN = configuration.bindDN
        searches = LDAPConnectionPool(urls: configuration.urls, settings: settings, capacity: configuration.poolSize, report: { open, inUse in
            metrics.ldapPool(backend: name, pool: "search", open: open, inUse: inUse)
        }) { connection throws(LDAPError) in
            try connection.bind(dn: bindDN, password: password, step: .serviceBind)
        }
        binds = LDAPConnectionPool(urls: configuration.urls, settings: settings, capacity: configuration.poolSize, report: { open, inUse in
            metrics.ldapPool(backend: name, pool: "bind", open: open, inUse: inUse)
        }) { _ throws(LDAPError) in }
        threadPool = NIOThreadPool(numberOfThreads: configuration.poolSize)
        threadPool.start()
        // libldap writes with plain write(2): a directory that closed its end (restarted,
        // idle timeout) would otherwise kill the whole process with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
    }

    deinit {
        shutdown()
        threadPool.shutdownGracefully { _ in }
    }

    public func shutdown() {
        searches.drain()
        binds.drain()
    }

    static func servicePassword(_ configuration: LDAPConfiguration) throws -> String {
        var password: String?
        if let file = configuration.bindPasswordFile {
            var text = try readTextFile(file)
            while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
            password = text
        } else if let variable = configuration.bindPasswordEnvironment {
            password = getenvString(variable)
        }
        guard let password, !password.isEmpty, !password.utf8.contains(0) else {
            throw BackendUnavailable(backend: configuration.name, reason: "no service account password (bind_password_file or bind_password_env)")
        }
        return password
    }

    // MARK: CredentialBackend

    public func authenticate(_ credentials: BasicCredentials) async throws -> AuthenticationResult {
        let started = ContinuousClock.now
        let result = try await run { try self.verify(credentials) }
        // Only verifications that reached a bind: an unknown user costs a search alone.
        if result != .unknownUser { times.record(started.duration(to: .now), for: "bind") }
        return result
    }

    public func identity(of user: String) async throws -> Identity? {
        try await run { try self.identitySync(of: user) }
    }

    public func account(of user: String) async throws -> AuthenticationResult {
        try await run {
            guard let login = self.accountName(for: user), let entry = try self.findUser(login) else { return .unknownUser }
            if let refusal = self.accountRefusal(entry) { return .rejected(reason: refusal) }
            return .authenticated(try self.identity(for: entry))
        }
    }

    /// ``identity(of:)`` without the thread pool, for the command line.
    func identitySync(of user: String) throws -> Identity? {
        guard let login = accountName(for: user), let entry = try findUser(login) else { return nil }
        return try identity(for: entry)
    }

    public func timingEstimate(for login: String) -> Duration? {
        // Until a real verification was timed, about what a search and a bind cost a nearby
        // directory.
        times.estimate(for: "bind") ?? .milliseconds(2)
    }

    public func equaliseTiming(for login: String, since started: ContinuousClock.Instant) async {
        await VerificationTimes.wait(timingEstimate(for: login) ?? .zero, since: started)
    }

    public func readinessProblem() async -> String? {
        do {
            try await run {
                _ = try self.searches.withConnection { connection throws(LDAPError) in
                    try connection.search(base: "", scope: LDAP_SCOPE_BASE, filter: "(objectClass=*)", attributes: ["1.1"], sizeLimit: 1, timeout: self.configuration.timeout, step: .connect)
                }
            }
            return nil
        } catch {
            return "\(error)"
        }
    }

    // MARK: Verification (blocking, on the thread pool)

    private func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        if inFlight.wrappingAdd(1, ordering: .relaxed).oldValue >= configuration.poolSize { metrics.ldapWait(backend: name) }
        defer { inFlight.wrappingSubtract(1, ordering: .relaxed) }
        do {
            return try await threadPool.runIfActive(work)
        } catch let error as LDAPError {
            metrics.ldapError(backend: name, error)
            guard error.isUnavailable else { throw error }
            throw BackendUnavailable(backend: name, reason: error.description)
        }
    }

    private func verify(_ credentials: BasicCredentials) throws -> AuthenticationResult {
        guard let login = accountName(for: credentials.user) else { return .unknownUser }
        guard let entry = try findUser(login) else { return .unknownUser }
        do {
            try binds.withConnection { connection throws(LDAPError) in
                try connection.bind(dn: entry.dn, password: credentials.password, step: .userBind)
            }
        } catch {
            guard !error.isUnavailable else { throw error }
            metrics.ldapError(backend: name, error)
            let reason = error.activeDirectoryCode.map(LDAPError.explainActiveDirectory) ?? error.codeName
            return .rejected(reason: reason)
        }
        if let refusal = accountRefusal(entry) { return .rejected(reason: refusal) }
        return .authenticated(try identity(for: entry))
    }

    /// Directory names match case-insensitively (uid, sAMAccountName), and AD accepts three
    /// login forms: all of them count as one account.
    public func lockoutName(for login: String) -> String {
        (accountName(for: login) ?? login).lowercased()
    }

    /// The value for `{username}`: AD accepts `alice`, `alice@corp.example` and `CORP\alice`.
    /// Nil for a form that names another domain.
    func accountName(for login: String) -> String? {
        guard configuration.preset == .activeDirectory else { return login }
        if let backslash = login.firstIndex(of: "\\") {
            let domain = login[..<backslash]
            guard let expected = configuration.netbiosDomain, domain.lowercased() == expected.lowercased() else { return nil }
            return String(login[login.index(after: backslash)...])
        }
        if let at = login.lastIndex(of: "@") {
            let suffix = login[login.index(after: at)...].lowercased()
            guard configuration.upnSuffixes.contains(where: { $0.lowercased() == suffix }) else { return nil }
            return String(login[..<at])
        }
        return login
    }

    private var userAttributes: [String] {
        [configuration.usernameAttribute, "memberOf", "objectSid", "primaryGroupID", "userAccountControl", "msDS-User-Account-Control-Computed", "accountExpires"]
            + [configuration.emailAttribute, configuration.nameAttribute].compactMap { $0 }
    }

    /// Exactly one entry, or nil: two entries for one login is a directory error, not a guess.
    private func findUser(_ login: String) throws(LDAPError) -> LDAPConnection.Entry? {
        let filter = LDAPFilter.fill(configuration.userFilter, ["username": login])
        let entries = try searches.withConnection { connection throws(LDAPError) in
            try connection.search(
                base: configuration.baseDN,
                scope: LDAP_SCOPE_SUBTREE,
                filter: filter,
                attributes: userAttributes,
                sizeLimit: 2,
                timeout: configuration.timeout,
                step: .userSearch
            )
        }
        guard entries.count == 1 else {
            if entries.count > 1 { logger.warning("login matches several entries; refused", metadata: ["backend": "\(name)"]) }
            return nil
        }
        return entries[0]
    }

    /// AD account states that a successful bind alone does not rule out.
    private func accountRefusal(_ entry: LDAPConnection.Entry) -> String? {
        guard configuration.preset == .activeDirectory else { return nil }
        let control = entry.strings("userAccountControl").first.flatMap { Int($0) } ?? 0
        if control & 0x2 != 0 { return LDAPError.explainActiveDirectory("533") }
        let computed = entry.strings("msDS-User-Account-Control-Computed").first.flatMap { Int($0) } ?? 0
        if computed & 0x10 != 0 { return LDAPError.explainActiveDirectory("775") }
        if computed & 0x80_0000 != 0 { return LDAPError.explainActiveDirectory("532") }
        // 100 ns ticks since 1601; 0 and Int64.max mean never. A bind refuses an expired
        // account itself (701), a lookup without a password must check.
        if let expires = entry.strings("accountExpires").first.flatMap({ Int64($0) }), expires != 0, expires != Int64.max {
            let now = (Int64(time(nil)) + 11_644_473_600) * 10_000_000
            if expires <= now { return LDAPError.explainActiveDirectory("701") }
        }
        return nil
    }

    private func identity(for entry: LDAPConnection.Entry) throws(LDAPError) -> Identity {
        let user = entry.strings(configuration.usernameAttribute).first ?? entry.dn
        // Read in the same search that found the user: an e-mail or display name costs no
        // extra round trip. One value each; several (a multi-valued `mail`) take the first.
        let email = configuration.emailAttribute.flatMap { entry.strings($0).first }
        let displayName = configuration.nameAttribute.flatMap { entry.strings($0).first }
        return Identity(
            user: user,
            groups: try groups(for: entry, user: user),
            backend: name,
            groupsAreCaseInsensitive: true,
            email: email?.isEmpty == false ? email : nil,
            displayName: displayName?.isEmpty == false ? displayName : nil
        )
    }

    private func groups(for entry: LDAPConnection.Entry, user: String) throws(LDAPError) -> [String] {
        let base = configuration.groupBaseDN ?? configuration.baseDN
        var filters: [String] = []
        if let custom = configuration.groupFilter {
            filters.append(LDAPFilter.fill(custom, ["dn": entry.dn, "username": user]))
        } else {
            switch configuration.preset {
            case .activeDirectory:
                let rule = configuration.nestedGroups ? ":1.2.840.113556.1.4.1941:" : ""
                filters.append(LDAPFilter.fill("(&(objectClass=group)(member\(rule)={dn}))", ["dn": entry.dn]))
                // memberOf omits the primary group (Domain Users): find it by SID.
                if let sid = primaryGroupSID(entry) { filters.append("(objectSid=\(LDAPFilter.escape(bytes: sid)))") }
            case .openldap:
                filters.append(
                    LDAPFilter.fill(
                        "(|(&(objectClass=groupOfNames)(member={dn}))(&(objectClass=groupOfUniqueNames)(uniqueMember={dn}))(&(objectClass=posixGroup)(memberUid={username})))",
                        ["dn": entry.dn, "username": user]
                    )
                )
            }
        }
        var names: Set<String> = []
        for filter in filters {
            let found = try searches.withConnection { connection throws(LDAPError) in
                try connection.search(
                    base: base,
                    scope: LDAP_SCOPE_SUBTREE,
                    filter: filter,
                    attributes: [configuration.groupAttribute],
                    sizeLimit: 0,
                    timeout: configuration.timeout,
                    step: .groups
                )
            }
            for group in found { names.formUnion(group.strings(configuration.groupAttribute)) }
        }
        return names.sorted()
    }

    /// The user's domain SID with the primary group's RID in place of the user's.
    private func primaryGroupSID(_ entry: LDAPConnection.Entry) -> [UInt8]? {
        guard let sid = entry.values("objectSid").first, sid.count >= 12, sid.count == 8 + 4 * Int(sid[1]),
            let rid = entry.strings("primaryGroupID").first.flatMap(UInt32.init)
        else { return nil }
        var group = Array(sid.dropLast(4))
        group += withUnsafeBytes(of: rid.littleEndian, Array.init)
        return group
    }
}
