// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

// The platform floor for the hot-path benchmark: SwiftNIO's HTTP/1 pipeline and one channel
// handler that answers every request from a fixed table (200 with an empty body), the least
// any Swift auth_request service can cost per request on this machine.
//
// Usage: gatehouse-floor PORT

import NIOCore
import NIOHTTP1
import NIOPosix

final class FixedAnswer: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private static let headers = HTTPHeaders([("Content-Length", "0"), ("X-Auth-Decision", "allow")])

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: Self.headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 9190 : 9190
let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: false)
            try channel.pipeline.syncOperations.addHandler(FixedAnswer())
        }
    }
    .bind(host: "127.0.0.1", port: port)
    .get()
try await channel.closeFuture.get()
