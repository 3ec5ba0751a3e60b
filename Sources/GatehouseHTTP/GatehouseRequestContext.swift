// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

public import Hummingbird
public import NIOCore

/// The request context of every route: Hummingbird's core storage plus the peer's address,
/// which decides whether `X-Real-IP` / `X-Forwarded-For` may be believed.
public struct GatehouseRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// Auth subrequests carry no body; refuse anything but a small one.
    public var maxUploadSize: Int { 16 * 1024 }
}
