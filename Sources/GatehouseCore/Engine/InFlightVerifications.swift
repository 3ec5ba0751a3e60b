// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import NIOConcurrencyHelpers

/// Verifications in progress, by cache key: requests with the same user and password that
/// miss the cache together wait for one verification instead of each running bcrypt or
/// binding to the directory. Without this, every cache expiry of a busy account (a `docker
/// push` sends dozens of requests at once) costs one verification per connection.
final class InFlightVerifications<Value: Sendable>: Sendable {
    private let running = NIOLockedValueBox<[CredentialCache.Key: Task<Value, Never>]>([:])

    /// The result of the verification already running for `key`, or of `work` started now.
    func value(for key: CredentialCache.Key, _ work: @escaping @Sendable () async -> Value) async -> Value {
        let task = running.withLockedValue { running -> Task<Value, Never> in
            if let existing = running[key] { return existing }
            let task = Task {
                let value = await work()
                // Taken after the insertion below (the lock is held until then).
                _ = self.running.withLockedValue { $0.removeValue(forKey: key) }
                return value
            }
            running[key] = task
            return task
        }
        return await task.value
    }
}
