// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// One problem in a configuration file, with the key path and line it concerns.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A dotted key path such as `policies.registry.rules[2].allow`.
    public let key: String
    /// The 1-based line in the YAML file, when known.
    public let line: Int?
    public let message: String

    public init(key: String, line: Int?, message: String) {
        self.key = key
        self.line = line
        self.message = message
    }

    public var description: String {
        let place = line.map { "line \($0): " } ?? ""
        return key.isEmpty ? "\(place)\(message)" : "\(place)\(key): \(message)"
    }
}

/// All the problems found in one configuration; it is refused as a whole.
public struct ConfigurationErrors: Error, Sendable, CustomStringConvertible {
    public let errors: [ConfigurationError]
    public init(_ errors: [ConfigurationError]) { self.errors = errors }
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
