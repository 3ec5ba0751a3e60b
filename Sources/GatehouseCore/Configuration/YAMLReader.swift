// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Yams

/// Walks a composed YAML tree, collecting every problem with its key path and line instead of
/// stopping at the first, so `gatehouse config check` can list them all.
final class YAMLReader {
    private(set) var errors: [ConfigurationError] = []

    func fail(_ key: String, _ node: Node?, _ message: String) {
        errors.append(ConfigurationError(key: key, line: node?.mark?.line, message: message))
    }

    /// The mapping's entries by key, after refusing keys not in `allowed` and repeated keys.
    func mapping(_ node: Node?, key: String, allowed: Set<String>) -> [String: Node]? {
        guard let node else { return nil }
        guard case .mapping(let mapping) = node else {
            fail(key, node, "expected a mapping")
            return nil
        }
        var result: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard let name = keyNode.string else {
                fail(key, keyNode, "keys must be strings")
                continue
            }
            let path = key.isEmpty ? name : "\(key).\(name)"
            guard allowed.contains(name) else {
                fail(path, keyNode, "unknown key (expected one of: \(allowed.sorted().joined(separator: ", ")))")
                continue
            }
            guard result[name] == nil else {
                fail(path, keyNode, "repeated key")
                continue
            }
            result[name] = value
        }
        return result
    }

    func string(_ node: Node?, key: String) -> String? {
        guard let node else { return nil }
        guard case .scalar(let scalar) = node, node.null == nil else {
            fail(key, node, "expected a string")
            return nil
        }
        return scalar.string
    }

    func bool(_ node: Node?, key: String) -> Bool? {
        guard let node else { return nil }
        guard case .scalar = node, let value = node.bool else {
            fail(key, node, "expected true or false")
            return nil
        }
        return value
    }

    func integer(_ node: Node?, key: String, range: ClosedRange<Int>) -> Int? {
        guard let node else { return nil }
        guard case .scalar = node, let value = node.int else {
            fail(key, node, "expected a whole number")
            return nil
        }
        guard range.contains(value) else {
            fail(key, node, "must be between \(range.lowerBound) and \(range.upperBound)")
            return nil
        }
        return value
    }

    func sequence(_ node: Node?, key: String) -> [Node]? {
        guard let node else { return nil }
        guard case .sequence(let sequence) = node else {
            fail(key, node, "expected a list")
            return nil
        }
        return Array(sequence)
    }

    func strings(_ node: Node?, key: String) -> [String]? {
        guard let items = sequence(node, key: key) else { return nil }
        var result: [String] = []
        for (index, item) in items.enumerated() {
            if let value = string(item, key: "\(key)[\(index + 1)]") { result.append(value) }
        }
        return result
    }

    /// `500ms`, `10s`, `5m`, `1h`, `30d`.
    func duration(_ node: Node?, key: String) -> Duration? {
        guard let text = string(node, key: key) else { return nil }
        guard let duration = Self.parseDuration(text) else {
            fail(key, node, "\"\(text)\" is not a duration (a number with ms, s, m, h or d)")
            return nil
        }
        return duration
    }

    static func parseDuration(_ text: String) -> Duration? { DurationText.parse(text) }
}
