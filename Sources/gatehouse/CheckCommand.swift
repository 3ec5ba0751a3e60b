// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import GatehouseCore
import GatehouseTokenStores
import Logging

/// `gatehouse check`: the decision `/auth` would make, with the rule trace.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Show the decision /auth would make for a user, method and URI, with users from htpasswd files or LDAP / Active Directory.",
        discussion: """
            The user is checked against the configured backends (htpasswd files, LDAP, Active Directory) exactly as /auth does. \
            Methods are case-sensitive, as nginx forwards them.
            Exit status: 0 allowed, 1 denied or challenged, 2 error (bad configuration, backend unavailable).
            """
    )

    @OptionGroup var source: ConfigurationOptions

    @Option(help: "User name.")
    var user: String?

    @Option(help: "The client's method, as nginx sends it in X-Original-Method.")
    var method: String = "GET"

    @Option(help: "The client's raw request URI, as nginx sends it in X-Original-URI.")
    var uri: String

    @Option(help: "Policy to use instead of default_policy.")
    var policy: String?

    @Option(help: "The client's address, for rules with `networks` (as trusted_proxies would resolve it).")
    var client: String?

    @Flag(help: "Read the password from standard input.")
    var passwordStdin = false

    @Flag(help: "Decide as a client without credentials.")
    var anonymous = false

    @Flag(help: "Skip the password: resolve the user's groups through the backends (what-if).")
    var assumeAuthenticated = false

    @Flag(help: "Print the decision as JSON.")
    var json = false

    mutating func validate() throws {
        let modes = [passwordStdin, anonymous, assumeAuthenticated].filter { $0 }.count
        guard modes == 1 else { throw ValidationError("Choose one of --password-stdin, --anonymous, --assume-authenticated.") }
        if !anonymous, user == nil { throw ValidationError("--user is required unless --anonymous.") }
    }

    func run() async throws {
        var logger = Logger(label: "gatehouse")
        logger.logLevel = .error
        let engine: DecisionEngine
        do {
            let configuration = try source.load()
            // A gth_… password is checked against the store, as a server would.
            let tokens = configuration.tokens.map { TokenAuthority(settings: $0, logger: logger) }
            await tokens?.refresh()
            engine = try DecisionEngine(configuration: configuration, logger: logger, tokens: tokens)
        } catch {
            throw setupError("\(error)")
        }
        let credentials: AuthRequest.Credentials
        if anonymous {
            credentials = .anonymous
        } else if assumeAuthenticated {
            credentials = .assumeAuthenticated(user: user!)
        } else {
            guard let password = readPassword() else {
                throw setupError("standard input is not valid UTF-8")
            }
            credentials = .password(user: user!, password: password)
        }
        let decision = await engine.decide(AuthRequest(credentials: credentials, method: method, originalURIs: [uri], policyName: policy, clientAddress: client))
        print(json ? DecisionExplanation(decision, policyKind: engine.policies[decision.policy]?.kind).json() : Self.describe(decision))
        switch decision.outcome {
        case .allow: return
        case .deny, .challenge: throw ExitCode(decision.status == 404 ? 2 : 1)
        case .unavailable: throw ExitCode(2)
        }
    }

    static func describe(_ decision: Decision) -> String {
        var lines = [
            "decision:   \(decision.outcome.rawValue) (\(decision.status))",
            "policy:     \(decision.policy)",
        ]
        if let user = decision.user {
            lines.append("user:       \(user) (backend \(decision.backend ?? "-"))")
            lines.append("groups:     \(decision.groups.isEmpty ? "-" : decision.groups.joined(separator: ", "))")
        }
        if let action = decision.action {
            lines.append("action:     \(action)\((decision.repository ?? decision.path).map { " on \($0)" } ?? "")")
        }
        if decision.upstreamGroups.truncated {
            lines.append("upstream:   X-Auth-Groups carries \(decision.upstreamGroups.count) of the groups (X-Auth-Groups-Truncated: true)")
        }
        lines.append("rule:       \(decision.rule)")
        lines.append("reason:     \(decision.reason)")
        if let detail = decision.logDetail { lines.append("detail:     \(detail)") }
        if !decision.trace.isEmpty {
            lines.append("trace:")
            let width = decision.trace.map(\.rule.count).max() ?? 0
            for step in decision.trace {
                lines.append("  \(step.rule.padding(toLength: width))  \(step.result)")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// Standard input without its final line break; nil if it is not UTF-8.
func readPassword() -> String? {
    var bytes: [UInt8] = []
    while let line = readLine(strippingNewline: false) {
        bytes += Array(line.utf8)
    }
    if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
    if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
    return String(validating: bytes, as: UTF8.self)
}

extension String {
    func padding(toLength length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}
