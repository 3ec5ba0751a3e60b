// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// A source of users, passwords and groups (htpasswd files, an LDAP directory).
///
/// Backends are asked in configuration order; the first that knows the user decides.
public protocol CredentialBackend: Sendable {
    /// The backend's `name` from the configuration, reported in `X-Auth-Backend`.
    var name: String { get }

    /// Checks a user's password. Throws ``BackendUnavailable`` when the answer cannot be known
    /// (a directory that is down), which must never be mistaken for a wrong password.
    func authenticate(_ credentials: BasicCredentials) async throws -> AuthenticationResult

    /// The identity of `user` without checking a password, for operators' what-if questions.
    func identity(of user: String) async throws -> Identity?

    /// The identity of `user` without a password, if the account may log in now: the owner of
    /// an access token. A disabled, locked or expired account is `.rejected`, as a password
    /// login would be.
    func account(of user: String) async throws -> AuthenticationResult

    /// Returns about as long after `started` as a real verification of `login`'s password by
    /// this backend takes, so that an unknown user or a refused guess cannot be told from a
    /// wrong password by timing. Waits on a timer (no thread, no hashing) once the backend has
    /// measured a real verification of that class.
    func equaliseTiming(for login: String, since started: ContinuousClock.Instant) async

    /// How long a real verification of `login`'s password takes here, as measured so far;
    /// nil before the first measurement (then ``equaliseTiming(for:since:)`` measures one).
    func timingEstimate(for login: String) -> Duration?

    /// Nil when the backend can answer, else why not.
    func readinessProblem() async -> String?

    /// Changes whenever the backend's users or groups changed (an htpasswd file re-read), so
    /// that cached verdicts from before are not used. Checking may re-read files.
    func currentGeneration() -> Int

    /// The name under which failed logins for `login` are counted: every spelling the backend
    /// treats as the same account (`ALICE`, `alice@corp.example`, `CORP\alice`) must map to one
    /// name, or each spelling would get its own allowance of guesses.
    func lockoutName(for login: String) -> String

    /// Closes connections to servers; the backend answers nothing afterwards. Called once
    /// the last request on it has finished (a graceful stop).
    func shutdown()
}

extension CredentialBackend {
    public func account(of user: String) async throws -> AuthenticationResult {
        try await identity(of: user).map(AuthenticationResult.authenticated) ?? .unknownUser
    }
    public func currentGeneration() -> Int { 0 }
    public func lockoutName(for login: String) -> String { login }
    public func timingEstimate(for login: String) -> Duration? { nil }
    public func shutdown() {}
}

/// What a backend says about a user and password.
public enum AuthenticationResult: Sendable, Equatable {
    /// The password is right and the account usable.
    case authenticated(Identity)
    /// The backend knows the user but refuses: wrong password, locked or disabled account.
    /// The reason goes to logs only; clients see a plain 401.
    case rejected(reason: String)
    /// The backend does not know the user; the next backend is asked.
    case unknownUser
}

/// A backend could not answer (directory unreachable, timed out, file unreadable).
public struct BackendUnavailable: Error, Sendable, CustomStringConvertible {
    public let backend: String
    public let reason: String

    public init(backend: String, reason: String) {
        self.backend = backend
        self.reason = reason
    }

    public var description: String { "backend \(backend) is unavailable: \(reason)" }
}
