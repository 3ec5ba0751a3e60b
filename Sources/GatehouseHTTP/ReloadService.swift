// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import GatehouseCore
import Logging
import ServiceLifecycle
import UnixSignals

/// Rereads the configuration and its files on `SIGHUP`. A new configuration that does not
/// validate, or whose backends cannot start, is refused and the old one keeps serving.
struct ReloadService: Service {
    let store: EngineStore
    let logger: Logger
    /// Produces the new configuration (from the file, or the embedded defaults again).
    let load: @Sendable () throws -> Configuration

    func run() async throws {
        // One handler per signal in the process: this is the only SIGHUP sequence.
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            reload()
        }
    }

    func reload() {
        do {
            let configuration = try load()
            let engine = try DecisionEngine(configuration: configuration, logger: logger)
            if configuration.listen != store.snapshot.configuration.listen {
                logger.warning("listen changed; the new address takes effect after a restart")
            }
            store.replace(engine: engine, configuration: configuration)
            logger.notice("configuration reloaded")
        } catch {
            logger.error("reload refused, the previous configuration keeps serving: \(error)")
        }
    }
}
