// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import GatehouseCore

/// Where the configuration comes from: a YAML file, or the embedded defaults around an
/// htpasswd file. Shared by `serve` and `check`.
struct ConfigurationOptions: ParsableArguments {
    @Option(help: "YAML configuration file.")
    var config: String?

    @Option(help: "htpasswd file for the embedded defaults (instead of --config).")
    var htpasswd: String?

    @Option(help: "Apache group file (\"group: user1 user2\") for the embedded defaults.")
    var groups: String?

    @Option(help: "Group whose members may push under the embedded defaults.")
    var pushGroup: String = "pushers"

    @Option(help: "Realm of the Basic challenge.")
    var realm: String?

    static let defaultConfigPath = "/etc/gatehouse/gatehouse.yaml"

    /// The YAML file in use, watched for changes; nil under the embedded defaults.
    var configurationFile: String? { htpasswd == nil ? (config ?? Self.defaultConfigPath) : nil }

    mutating func validate() throws {
        if config != nil, htpasswd != nil || groups != nil {
            throw ValidationError("Give either --config or --htpasswd/--groups, not both.")
        }
        if groups != nil, htpasswd == nil { throw ValidationError("--groups needs --htpasswd.") }
    }

    /// Loads the configuration; called again on every reload.
    func load() throws -> Configuration {
        var configuration: Configuration
        if let htpasswd {
            configuration = Configuration.embeddedDefaults(htpasswd: htpasswd, groups: groups, pushGroup: pushGroup)
        } else {
            configuration = try Configuration.load(path: config ?? Self.defaultConfigPath)
        }
        if let realm { configuration.realm = realm }
        return configuration
    }
}
