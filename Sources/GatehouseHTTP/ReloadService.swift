// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

public import GatehouseCore
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import UnixSignals

/// Where a running service gets its configuration again: the loader, and the configuration
/// file to watch besides the files the configuration itself names.
public struct ReloadSource: Sendable {
    /// Produces the new configuration (from the file, or the embedded defaults again).
    public var load: @Sendable () throws -> Configuration
    /// The `--config` file, if any.
    public var configurationFile: String?
    /// How often the files are checked for changes; nil turns watching off (SIGHUP only).
    public var pollInterval: Duration?

    public init(load: @escaping @Sendable () throws -> Configuration, configurationFile: String?, pollInterval: Duration? = .seconds(1)) {
        self.load = load
        self.configurationFile = configurationFile
        self.pollInterval = pollInterval
    }
}

/// Reloads on `SIGHUP` and when a watched file changes on disk. A new configuration that does
/// not validate, or whose backends cannot start or cannot reach their directory, is refused
/// and the old one keeps serving. Requests already running finish on the engine they started
/// with. On a graceful stop, closes the backends' connections once the server has drained.
struct ReloadService: Service {
    let store: EngineStore
    let logger: Logger
    let metrics: GatehouseMetrics
    let source: ReloadSource
    /// The files as the running configuration last read them. A reload, whatever triggered it,
    /// takes a new baseline, so that one edit followed by SIGHUP is one reload, not two.
    private let baseline = NIOLockedValueBox<WatchedFiles?>(nil)

    init(store: EngineStore, logger: Logger, metrics: GatehouseMetrics, source: ReloadSource) {
        self.store = store
        self.logger = logger
        self.metrics = metrics
        self.source = source
    }

    enum Trigger: String { case signal, file, retry }

    /// What became of a reload.
    enum Outcome { case applied, invalid, backendNotReady }

    /// How long after a reload refused because a backend was not ready (a directory down, a
    /// password file half written) it is tried again, until it applies or the files change.
    static let retryDelay = Duration.seconds(10)

    func run() async throws {
        // One reload at a time, and at most one waiting: a burst of edits is one reload.
        let (triggers, continuation) = AsyncStream.makeStream(of: Trigger.self, bufferingPolicy: .bufferingNewest(1))
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // One handler per signal in the process: this is the only SIGHUP sequence.
                for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
                    continuation.yield(.signal)
                }
            }
            if let interval = source.pollInterval {
                group.addTask { await watch(every: interval, continuation) }
            }
            var retryPending = false
            var last = Outcome.applied
            for await trigger in triggers.cancelOnGracefulShutdown() {
                if trigger == .retry {
                    retryPending = false
                    // A signal or an edit since has already reloaded: nothing left to retry.
                    guard last == .backendNotReady else { continue }
                }
                last = await reload(trigger)
                if last == .backendNotReady, !retryPending {
                    retryPending = true
                    group.addTask {
                        try? await Task.sleep(for: Self.retryDelay)
                        continuation.yield(.retry)
                    }
                }
            }
            group.cancelAll()
        }
        // The server shut down before this service (services stop in reverse order), so no
        // request is still using the engine.
        store.snapshot.engine.shutdown()
    }

    private func watchedPaths(_ configuration: Configuration) -> [String] {
        WatchedFiles.unique((source.configurationFile.map { [$0] } ?? []) + configuration.referencedFiles)
    }

    private func watch(every interval: Duration, _ triggers: AsyncStream<Trigger>.Continuation) async {
        baseline.withLockedValue { $0 = WatchedFiles(paths: watchedPaths(store.snapshot.configuration)) }
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            // Only stats each second; a file is read (and hashed) when its stamp moved.
            let paths = watchedPaths(store.snapshot.configuration)
            let changed = baseline.withLockedValue { files -> Bool in
                // A reload may have changed which files matter.
                guard files?.paths == paths else {
                    files = WatchedFiles(paths: paths)
                    return false
                }
                return files!.refresh()
            }
            if changed { triggers.yield(.file) }
        }
    }

    /// Loads, validates and tries the new configuration; swaps it in only if all of that worked.
    @discardableResult
    func reload(_ trigger: Trigger) async -> Outcome {
        let engine: DecisionEngine
        let configuration: Configuration
        let seen: WatchedFiles?
        do {
            configuration = try source.load()
            // The files as this reload reads them, taken before the backends read theirs and
            // the readiness check (up to `timeout`): an edit during that time is still news.
            seen = source.pollInterval == nil ? nil : WatchedFiles(paths: watchedPaths(configuration))
            let tokens = store.snapshot.engine.tokens
            engine = try DecisionEngine(configuration: configuration, logger: logger, metrics: metrics, previous: store.snapshot.engine, tokens: tokens)
            if configuration.tokens != tokens?.settings {
                logger.warning("tokens settings changed; they take effect after a restart")
            }
        } catch {
            refuse(trigger, because: "\(error)")
            return .invalid
        }
        // An LDAP setting that cannot bind (a wrong password file, a CA that does not match) is
        // found now, not by the first user.
        for backend in engine.backends {
            if let problem = await backend.readinessProblem() {
                engine.shutdown()
                refuse(trigger, because: "backend \(backend.name): \(problem) (tried again in \(Self.retryDelay))")
                return .backendNotReady
            }
        }
        if configuration.listen != store.snapshot.configuration.listen {
            logger.warning("listen changed; the new address takes effect after a restart")
        }
        store.replace(engine: engine, configuration: configuration)
        if let seen { baseline.withLockedValue { $0 = seen } }
        metrics.reload(trigger: trigger.rawValue, success: true)
        logger.notice("configuration reloaded", metadata: ["trigger": "\(trigger.rawValue)"])
        return .applied
    }

    private func refuse(_ trigger: Trigger, because reason: String) {
        metrics.reload(trigger: trigger.rawValue, success: false)
        logger.error("reload refused, the previous configuration keeps serving: \(reason)", metadata: ["trigger": "\(trigger.rawValue)"])
    }
}
