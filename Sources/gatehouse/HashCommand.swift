// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

public import ArgumentParser
public import GatehouseCore

extension PasswordHasher.Algorithm: ExpressibleByArgument {}

/// `gatehouse hash`: an htpasswd line for a user, the password read from standard input.
struct HashCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash",
        abstract: "Print an htpasswd line; the password is read from standard input.",
        discussion: "Example: printf '%s' \"$PASSWORD\" | gatehouse hash alice >> /etc/gatehouse/htpasswd"
    )

    @Option(help: "bcrypt (default), sha512 or apr1.")
    var algorithm: PasswordHasher.Algorithm = .bcrypt

    @Option(help: "bcrypt cost (4-17, default 10) or sha512 rounds (1000-10000000, default 5000).")
    var cost: Int?

    @Argument(help: "The user name.")
    var user: String

    mutating func validate() throws {
        guard !user.isEmpty, !user.contains(":"), !user.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw ValidationError("The user name must be non-empty, without ':' or control characters.")
        }
    }

    func run() throws {
        guard let password = readPassword() else {
            throw setupError("standard input is not valid UTF-8")
        }
        do {
            print("\(user):\(try PasswordHasher.hash(password: password, algorithm: algorithm, cost: cost))")
        } catch {
            throw setupError("\(error)")
        }
    }
}
