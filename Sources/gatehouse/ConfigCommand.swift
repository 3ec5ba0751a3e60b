// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import GatehouseCore
import Logging

/// `gatehouse config …`.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with configuration files.",
        subcommands: [Check.self]
    )

    /// `gatehouse config check`: every error at once, with key and line.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration file; exit 0 when it is usable, 1 with every error otherwise."
        )

        @Option(help: "YAML configuration file.")
        var config: String = ConfigurationOptions.defaultConfigPath

        func run() throws {
            let configuration: Configuration
            do {
                configuration = try Configuration.load(path: config)
            } catch {
                for line in error.errors { printError("\(config): \(line)") }
                throw ExitCode(1)
            }
            var logger = Logger(label: "gatehouse")
            logger.logLevel = .critical
            do {
                let engine = try DecisionEngine(configuration: configuration, logger: logger)
                for case let backend as HtpasswdBackend in engine.backends {
                    for diagnostic in backend.diagnostics { printError("warning: \(diagnostic)") }
                }
            } catch {
                printError("\(config): \(error)")
                throw ExitCode(1)
            }
            print("\(config): ok (\(configuration.backends.count) backends, policies: \(configuration.policies.map(\.name).joined(separator: ", ")); default \(configuration.defaultPolicy))")
            if let tokens = configuration.tokens {
                // The store is not opened here: that would create an SQLite file or need the database.
                print("tokens: store \(tokens.store), tokens live at most \(DurationText.format(tokens.maxLifetime)), self-service at /tokens \(tokens.selfService ? "on" : "off")")
            }
        }
    }
}
