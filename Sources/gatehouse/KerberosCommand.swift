// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import GatehouseCore
import Logging

/// `gatehouse kerberos test`: is single sign-on set up right, step by step, in words.
struct KerberosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kerberos",
        abstract: "Check Kerberos single sign-on (SPNEGO) settings.",
        subcommands: [Test.self]
    )

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the keytab (principals, kvno, enctypes), a ticket from the KDC accepted back, the clock skew, and a principal's user.",
            discussion: "Exit 0 when every step passed, 1 when one failed, 2 for a configuration error."
        )

        @Option(help: "YAML configuration file (its `kerberos:` section).")
        var config: String = ConfigurationOptions.defaultConfigPath

        @Option(help: "A principal or user name to map through the directory (alice, alice@CORP.EXAMPLE).")
        var user: String?

        @Flag(help: "Read --user's password from standard input and test with that user's ticket (when the service cannot get one with its keytab).")
        var passwordStdin = false

        mutating func validate() throws {
            if passwordStdin, user == nil { throw ValidationError("--password-stdin needs --user.") }
        }

        func run() async throws {
            var logger = Logger(label: "gatehouse")
            logger.logLevel = .critical
            let engine: DecisionEngine
            do {
                engine = try DecisionEngine(configuration: try Configuration.load(path: config), logger: logger)
            } catch {
                printError("\(config): \(error)")
                throw ExitCode(2)
            }
            defer { engine.shutdown() }
            guard let acceptor = engine.kerberos, let backend = engine.backends.first(where: { $0.name == acceptor.configuration.backend }) else {
                throw setupError("\(config) has no `kerberos:` section")
            }
            var credentials: (user: String, password: String)?
            if passwordStdin, let user {
                guard let password = readPassword() else {
                    throw setupError("standard input is not valid UTF-8")
                }
                credentials = (user, password)
            }
            print("keytab \(acceptor.configuration.keytab), principals \(acceptor.configuration.principals?.joined(separator: ", ") ?? "any in the keytab"), backend \(backend.name)")
            var steps = KerberosDiagnostics.run(acceptor, userPassword: credentials)
            if let user {
                let started = ContinuousClock.now
                let name = KerberosAcceptor.split(user)?.name ?? user
                let step: LDAPDiagnostics.Step
                do {
                    switch try await backend.account(of: name) {
                    case .authenticated(let identity):
                        step = .init(name: "principal to user", succeeded: true, duration: started.duration(to: .now), detail: "\(user) is \(identity.user) in \(backend.name), groups: \(identity.groups.joined(separator: ", "))")
                    case .rejected(let why):
                        step = .init(name: "principal to user", succeeded: false, duration: started.duration(to: .now), detail: "\(user) may not log in: \(why)")
                    case .unknownUser:
                        step = .init(name: "principal to user", succeeded: false, duration: started.duration(to: .now), detail: "\(backend.name) has no account for \(name)\n  → is it in base_dn, and does user_filter match it?")
                    }
                } catch {
                    step = .init(name: "principal to user", succeeded: false, duration: started.duration(to: .now), detail: "\(error)")
                }
                steps.append(step)
            }
            try printSteps(steps)
        }
    }
}
