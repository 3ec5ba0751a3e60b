// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// Everything a decision is made from, as nginx's subrequest (or the CLI) supplies it.
public struct AuthRequest: Sendable {
    /// How the requester proves who it is.
    public enum Credentials: Sendable {
        /// Every `Authorization` header value of the request (none = anonymous).
        case authorizationHeaders([String])
        /// A user and password given directly (`gatehouse check --password-stdin`).
        case password(user: String, password: String)
        /// Trust the user name and resolve its groups (`gatehouse check --assume-authenticated`).
        case assumeAuthenticated(user: String)
        /// No credentials.
        case anonymous
    }

    public var credentials: Credentials
    /// The client's method (`X-Original-Method`, else the subrequest's).
    public var method: String
    /// Every `X-Original-URI` value; exactly one is required.
    public var originalURIs: [String]
    /// The policy named in `/auth/{policy}`; nil for the default policy.
    public var policyName: String?
    /// The client's address as far as it can be trusted, for logs and lockout.
    public var clientAddress: String?
    /// Record what every rule did (`?explain`, `gatehouse check`); off on nginx's hot path.
    public var wantsTrace: Bool

    public init(credentials: Credentials, method: String, originalURIs: [String], policyName: String? = nil, clientAddress: String? = nil, wantsTrace: Bool = true) {
        self.credentials = credentials
        self.method = method
        self.originalURIs = originalURIs
        self.policyName = policyName
        self.clientAddress = clientAddress
        self.wantsTrace = wantsTrace
    }
}
