// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import GatehouseCore

/// `gatehouse ldap …`.
struct LDAPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ldap",
        abstract: "Diagnose an LDAP / Active Directory backend.",
        subcommands: [Test.self]
    )

    /// `gatehouse ldap test`: every step of a verification, timed and explained.
    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Connect, verify TLS, bind, search and bind as a user, and list the groups, step by step.",
            discussion: "Exit status: 0 every step succeeded, 1 a step failed, 2 the configuration is unusable."
        )

        @Option(help: "YAML configuration file.")
        var config: String = ConfigurationOptions.defaultConfigPath

        @Option(help: "Name of the ldap backend (default: the first).")
        var backend: String?

        @Option(help: "The login to test (alice, alice@corp.example or CORP\\alice).")
        var user: String

        @Flag(help: "Read the user's password from standard input and test the user bind too.")
        var passwordStdin = false

        func run() throws {
            let configuration: Configuration
            do {
                configuration = try Configuration.load(path: config)
            } catch {
                printError("\(config): \(error)")
                throw ExitCode(2)
            }
            let candidates = configuration.backends.compactMap { backend -> LDAPConfiguration? in
                if case .ldap(let settings) = backend { return settings }
                return nil
            }
            guard let settings = backend.map({ name in candidates.first { $0.name == name } }) ?? candidates.first else {
                throw setupError("\(config) has no ldap backend\(backend.map { " named \($0)" } ?? "")")
            }
            var password: String?
            if passwordStdin {
                guard let read = readPassword() else {
                    throw setupError("standard input is not valid UTF-8")
                }
                password = read
            }
            print("backend \(settings.name) (\(settings.preset.rawValue)), user \(user)")
            let steps = LDAPDiagnostics.run(settings, user: user, password: password)
            try printSteps(steps)
        }
    }
}

/// Prints diagnostic steps (`ldap test`, `kerberos test`) and fails with exit 1 if any failed.
func printSteps(_ steps: [LDAPDiagnostics.Step]) throws {
    for step in steps {
        let milliseconds = Double(step.duration.microseconds) / 1000
        let time = String(Int(milliseconds * 10) / 10) + "." + String(Int(milliseconds * 10) % 10)
        print("\(step.succeeded ? "ok  " : "FAIL") \(step.name.padding(toLength: 28)) \(time.padding(toLength: 7)) ms  \(step.detail)")
    }
    if steps.contains(where: { !$0.succeeded }) { throw ExitCode(1) }
}
