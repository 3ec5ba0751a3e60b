// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

public import Logging
public import NIOPosix
import NIOConcurrencyHelpers

/// Users from an htpasswd file and groups from an Apache group file.
///
/// Both files are re-read when they change on disk (checked at most once a second, on the
/// thread pool). A file that turns unreadable or vanishes keeps the last good contents serving
/// and logs why. Hashing runs on `NIOThreadPool.singleton`, never on an event loop: bcrypt at
/// cost 10 takes ≈ 50 ms.
public final class HtpasswdBackend: CredentialBackend {
    public let name: String
    public let passwordPath: String
    public let groupsPath: String?
    private let logger: Logger
    private let threadPool: NIOThreadPool
    private let state: NIOLockedValueBox<State>
    private let times = VerificationTimes()

    private struct State {
        var passwords: HtpasswdFile
        var groups: HtgroupsFile
        var passwordStamp: FileStamp?
        var groupsStamp: FileStamp?
        var lastCheck: ContinuousClock.Instant
        var generation: Int
        /// A file changed on disk and has not been re-read yet.
        var stale = false
        /// `passwords.timingDummy`, found once per load (it scans every entry).
        var timingDummy: PasswordHash?
    }

    /// How often the files are checked for changes.
    static let recheckInterval = Duration.seconds(1)

    /// Loads both files now; throws if either cannot be read.
    public init(
        name: String,
        passwordPath: String,
        groupsPath: String?,
        logger: Logger,
        threadPool: NIOThreadPool = .singleton
    ) throws(FileReadError) {
        self.name = name
        self.passwordPath = passwordPath
        self.groupsPath = groupsPath
        self.logger = logger
        self.threadPool = threadPool
        let passwordStamp = FileStamp(path: passwordPath)
        let passwords = HtpasswdFile(parsing: try readTextFile(passwordPath), path: passwordPath)
        let groupsStamp = groupsPath.flatMap { FileStamp(path: $0) }
        let groups = try groupsPath.map { path throws(FileReadError) in HtgroupsFile(parsing: try readTextFile(path), path: path) } ?? HtgroupsFile()
        for diagnostic in passwords.diagnostics + groups.diagnostics {
            logger.warning("\(diagnostic)", metadata: ["backend": "\(name)"])
        }
        state = NIOLockedValueBox(
            State(
                passwords: passwords,
                groups: groups,
                passwordStamp: passwordStamp,
                groupsStamp: groupsStamp,
                lastCheck: .now,
                generation: 0,
                timingDummy: passwords.timingDummy
            )
        )
    }

    /// Diagnostics of the files as last loaded.
    public var diagnostics: [FileDiagnostic] {
        state.withLockedValue { $0.passwords.diagnostics + $0.groups.diagnostics }
    }

    /// Counts reloads; changes whenever a file was re-read.
    public var generation: Int { state.withLockedValue { $0.generation } }

    public func authenticate(_ credentials: BasicCredentials) async throws -> AuthenticationResult {
        try await threadPool.runIfActive {
            let (name, hash, groups) = self.lookUp(credentials.user)
            guard let hash else { return .unknownUser }
            guard hash != .locked else {
                // As slow as a wrong password: a fast answer would tell that the name exists.
                _ = self.state.withLockedValue { $0.timingDummy }?.verify(credentials.password)
                return .rejected(reason: "account locked in \(self.passwordPath)")
            }
            let started = ContinuousClock.now
            let verified = hash.verify(credentials.password)
            self.times.record(started.duration(to: .now), for: hash.costClass)
            guard verified else { return .rejected(reason: "wrong password") }
            return .authenticated(Identity(user: name, groups: groups, backend: self.name))
        }
    }

    public func identity(of user: String) async throws -> Identity? {
        try await threadPool.runIfActive {
            let (name, hash, groups) = self.lookUp(user)
            guard hash != nil else { return nil }
            return Identity(user: name, groups: groups, backend: self.name)
        }
    }

    public func account(of user: String) async throws -> AuthenticationResult {
        try await threadPool.runIfActive {
            let (name, hash, groups) = self.lookUp(user)
            switch hash {
            case nil: return .unknownUser
            case .locked?: return .rejected(reason: "the account is locked in the htpasswd file")
            case _?: return .authenticated(Identity(user: name, groups: groups, backend: self.name))
            }
        }
    }

    /// The hash a refusal of `login` is timed as: the user's own when the name is in the file
    /// (a locked-out user), else one of the file's most common class (an unknown user).
    private func timingHash(for login: String) -> PasswordHash? {
        state.withLockedValue { state in
            let hash = state.passwords.entries[login]
            return (hash == .locked ? nil : hash) ?? state.timingDummy
        }
    }

    public func timingEstimate(for login: String) -> Duration? {
        guard let hash = timingHash(for: login) else { return .zero }
        return times.estimate(for: hash.costClass)
    }

    public func equaliseTiming(for login: String, since started: ContinuousClock.Instant) async {
        guard let dummy = timingHash(for: login) else { return }
        if let estimate = times.estimate(for: dummy.costClass) {
            await VerificationTimes.wait(estimate, since: started)
            return
        }
        // Not measured yet: verify once for real (against a hash, never a password) and keep
        // the time; every later refusal of this class only waits.
        _ = try? await threadPool.runIfActive {
            let measuring = ContinuousClock.now
            _ = dummy.verify("gatehouse-timing-probe")
            self.times.record(measuring.duration(to: .now), for: dummy.costClass)
        }
    }

    public func readinessProblem() async -> String? {
        FileStamp(path: passwordPath) == nil ? "\(passwordPath) cannot be read" : nil
    }

    public func currentGeneration() -> Int {
        // This runs for every cached decision, on the event loop: at most one stat(2) of each
        // file a second, never a read or a parse (a 10,000-user file takes 0.2 s to parse).
        // A changed file makes the generation one no cached verdict carries, so the request
        // misses the cache and is verified on the thread pool, where the file is re-read first.
        if claimRecheck(force: false) {
            let (passwordStamp, groupsStamp) = state.withLockedValue { ($0.passwordStamp, $0.groupsStamp) }
            if FileStamp(path: passwordPath) != passwordStamp || groupsPath.flatMap({ FileStamp(path: $0) }) != groupsStamp {
                state.withLockedValue { $0.stale = true }
                threadPool.submit { _ in self.reloadChangedFiles() }
            }
        }
        return state.withLockedValue { $0.stale ? ~$0.generation : $0.generation }
    }

    /// Re-reads whichever file changed on disk; called before each lookup at most once a second.
    public func reloadIfChanged(force: Bool = false) {
        guard claimRecheck(force: force) else { return }
        reloadChangedFiles()
    }

    /// Whether a check of the files is due now (at most once per `recheckInterval`); claims it.
    private func claimRecheck(force: Bool) -> Bool {
        state.withLockedValue { state -> Bool in
            guard force || state.lastCheck.duration(to: .now) >= Self.recheckInterval else { return false }
            state.lastCheck = .now
            return true
        }
    }

    private func reloadChangedFiles() {
        let (oldPasswordStamp, oldGroupsStamp) = state.withLockedValue { ($0.passwordStamp, $0.groupsStamp) }
        let passwordStamp = FileStamp(path: passwordPath)
        let groupsStamp = groupsPath.flatMap { FileStamp(path: $0) }
        var newPasswords: HtpasswdFile?
        var newGroups: HtgroupsFile?
        if passwordStamp != oldPasswordStamp {
            do {
                newPasswords = HtpasswdFile(parsing: try readTextFile(passwordPath), path: passwordPath)
            } catch {
                logger.error("keeping the previous users: \(error)", metadata: ["backend": "\(name)"])
            }
        }
        if let groupsPath, groupsStamp != oldGroupsStamp {
            do {
                newGroups = HtgroupsFile(parsing: try readTextFile(groupsPath), path: groupsPath)
            } catch {
                logger.error("keeping the previous groups: \(error)", metadata: ["backend": "\(name)"])
            }
        }
        guard newPasswords != nil || newGroups != nil else {
            // Nothing readable changed: the previous contents keep serving (a read error is
            // logged above), and so do the verdicts cached from them.
            state.withLockedValue { $0.stale = false }
            return
        }
        for diagnostic in (newPasswords?.diagnostics ?? []) + (newGroups?.diagnostics ?? []) {
            logger.warning("\(diagnostic)", metadata: ["backend": "\(name)"])
        }
        state.withLockedValue { state in
            if let newPasswords {
                state.passwords = newPasswords
                state.timingDummy = newPasswords.timingDummy
                state.passwordStamp = passwordStamp
            }
            if let newGroups {
                state.groups = newGroups
                state.groupsStamp = groupsStamp
            }
            state.generation += 1
            state.stale = false
        }
        logger.info(
            "reloaded",
            metadata: ["backend": "\(name)", "users": "\(newPasswords.map { "\($0.entries.count)" } ?? "unchanged")"]
        )
    }

    /// The entry for `user`, under the name the file spells it. Swift compares strings by
    /// canonical equivalence, so `\u{212A}elly` (Kelvin sign) finds the entry `Kelly`; the
    /// identity then carries the file's `Kelly`, as an AD login `alice@corp` becomes the
    /// directory's `alice`, and X-Auth-User never shows a look-alike spelling.
    private func lookUp(_ user: String) -> (name: String, hash: PasswordHash?, groups: [String]) {
        // On the thread pool: a file known to have changed is re-read before it is used.
        if state.withLockedValue({ $0.stale }) { reloadChangedFiles() } else { reloadIfChanged() }
        return state.withLockedValue {
            guard let index = $0.passwords.entries.index(forKey: user) else { return (user, nil, []) }
            let (name, hash) = $0.passwords.entries[index]
            return (name, hash, $0.groups.groups(of: name))
        }
    }
}
