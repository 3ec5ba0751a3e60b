// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import GatehouseCore
import ServiceLifecycle

/// Keeps the server's token list in step with the store (a poll a second) for as long as the
/// server runs; on a graceful stop, writes the last-used times still pending and closes the store.
struct TokenPollService: Service {
    let tokens: TokenAuthority

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await tokens.run()
        }
        await tokens.flushUses()
        await tokens.close()
    }
}
