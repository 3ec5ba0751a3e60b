// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

public import GatehouseCore
import NIOConcurrencyHelpers

/// The engine and settings currently serving. A reload replaces them in one step; a request
/// keeps the snapshot it started with.
public final class EngineStore: Sendable {
    /// What one request works with from start to end.
    public struct Snapshot: Sendable {
        public let engine: DecisionEngine
        public let configuration: Configuration
    }

    private let current: NIOLockedValueBox<Snapshot>

    public init(engine: DecisionEngine, configuration: Configuration) {
        current = NIOLockedValueBox(Snapshot(engine: engine, configuration: configuration))
    }

    public var snapshot: Snapshot { current.withLockedValue { $0 } }

    /// Serves `engine` and `configuration` from now on.
    public func replace(engine: DecisionEngine, configuration: Configuration) {
        current.withLockedValue { $0 = Snapshot(engine: engine, configuration: configuration) }
    }
}
