// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import GatehouseHTTP
import Glibc

/// The `gatehouse` command.
@main
struct Gatehouse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "Answers nginx auth_request subrequests from htpasswd files or LDAP / Active Directory, with per-repository and per-path rules.",
        version: gatehouseVersion,
        subcommands: [ServeCommand.self, CheckCommand.self, HashCommand.self, ConfigCommand.self, LDAPCommand.self, TokenCommand.self, KerberosCommand.self]
    )

    /// Exit codes are part of the contract (0 allowed/ok, 1 denied/invalid, 2 error), so usage
    /// errors, which argument-parser reports as 64, become 2.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .success || code.rawValue == 1 || code.rawValue == 2 {
                exit(withError: error)
            }
            let message = fullMessage(for: error)
            if !message.isEmpty { printError(message) }
            exit(withError: ExitCode(2))
        }
    }
}

/// Says `gatehouse: message` on standard error; the exit code to throw for a usage or set-up
/// error (2: the contract's "error", apart from 1, "denied" or "invalid").
func setupError(_ message: String) -> ExitCode {
    printError("gatehouse: \(message)")
    return ExitCode(2)
}

func printError(_ message: String) {
    var standardError = StandardError()
    print(message, to: &standardError)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var bytes = Array(string.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
