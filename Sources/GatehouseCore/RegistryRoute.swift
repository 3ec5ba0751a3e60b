// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// Maps a Docker Registry v2 / OCI distribution request to the accesses it needs.
///
/// Routing goes by the trailing segments, as the registry's own router does, so repository
/// names may contain components such as `blobs` or `manifests`. Anything that is not one of
/// the API's endpoints, in canonical form, with a method that endpoint accepts, is refused.
public enum RegistryRoute {
    /// The longest repository name the distribution spec allows.
    public static let maximumNameLength = 255

    /// The accesses `method` on `uri` needs; all of them must be allowed.
    public static func accesses(method: String, uri: OriginalURI) throws(URIRejection) -> [Access] {
        guard !uri.pathHadEscapes else { throw URIRejection("registry paths never contain percent-escapes") }
        if let query = uri.query, query.contains(";") { throw URIRejection("the query contains ';', which parsers read differently") }
        let path = uri.path
        guard path.hasPrefix("/v2/") else { throw URIRejection("not a registry v2 path") }
        let method = method.uppercased()
        let isRead = method == "GET" || method == "HEAD"

        if path == "/v2/" {
            guard isRead else { throw URIRejection("\(method) is not allowed on /v2/") }
            return [Access(action: RegistryAction.login.rawValue, resource: nil)]
        }
        let segments = path.dropFirst(4).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if segments == ["_catalog"] {
            guard method == "GET" else { throw URIRejection("\(method) is not allowed on the catalog") }
            return [Access(action: RegistryAction.catalog.rawValue, resource: nil)]
        }

        func repository(dropping count: Int) throws(URIRejection) -> String {
            guard segments.count > count else { throw URIRejection("no repository name in the path") }
            let name = segments.dropLast(count).joined(separator: "/")
            guard isRepositoryName(name) else { throw URIRejection("\"\(name)\" is not a valid repository name") }
            return name
        }
        func access(_ action: RegistryAction, _ name: String) -> Access { Access(action: action.rawValue, resource: name) }
        let n = segments.count

        // …/blobs/uploads/ (start an upload, perhaps a cross-repository mount)
        if n >= 3, segments[n - 3] == "blobs", segments[n - 2] == "uploads", segments[n - 1].isEmpty {
            let name = try repository(dropping: 3)
            guard method == "POST" else { throw URIRejection("\(method) is not allowed on an upload start") }
            return try [access(.push, name)] + mountSource(uri)
        }
        // …/blobs/uploads/<uuid> (upload session)
        if n >= 3, segments[n - 3] == "blobs", segments[n - 2] == "uploads", isUploadID(segments[n - 1]) {
            let name = try repository(dropping: 3)
            guard ["GET", "HEAD", "PATCH", "PUT", "DELETE"].contains(method) else {
                throw URIRejection("\(method) is not allowed on an upload session")
            }
            return [access(.push, name)]
        }
        if n >= 2 {
            let kind = segments[n - 2]
            let last = segments[n - 1]
            switch kind {
            case "manifests" where isTag(last) || isDigest(last):
                let name = try repository(dropping: 2)
                switch method {
                case "GET", "HEAD": return [access(.pull, name)]
                case "PUT": return [access(.push, name)]
                case "DELETE": return [access(.delete, name)]
                default: throw URIRejection("\(method) is not allowed on a manifest")
                }
            case "blobs" where isDigest(last):
                let name = try repository(dropping: 2)
                switch method {
                case "GET", "HEAD": return [access(.pull, name)]
                case "DELETE": return [access(.delete, name)]
                default: throw URIRejection("\(method) is not allowed on a blob")
                }
            case "tags" where last == "list":
                let name = try repository(dropping: 2)
                guard isRead else { throw URIRejection("\(method) is not allowed on a tag list") }
                return [access(.pull, name)]
            case "referrers" where isDigest(last):
                let name = try repository(dropping: 2)
                guard isRead else { throw URIRejection("\(method) is not allowed on referrers") }
                return [access(.pull, name)]
            default:
                break
            }
        }
        throw URIRejection("the path matches no registry endpoint")
    }

    /// `?mount=<digest>&from=<repo>` also reads `from`. Repeated parameters are refused: the gate
    /// and the registry must not read different values.
    private static func mountSource(_ uri: OriginalURI) throws(URIRejection) -> [Access] {
        let items = try uri.queryItems()
        let mounts = items.filter { $0.name == "mount" }
        let froms = items.filter { $0.name == "from" }
        guard mounts.count <= 1, froms.count <= 1 else { throw URIRejection("the query repeats 'mount' or 'from'") }
        guard let mount = mounts.first?.value else {
            // Without `mount` the registry ignores `from` and starts a plain upload.
            return []
        }
        // A mount without `from` lets some registries pick any repository holding the blob,
        // which no pull rule could check.
        guard let from = froms.first?.value else { throw URIRejection("a blob mount without 'from' is refused") }
        guard isDigest(mount) else { throw URIRejection("the mount digest is not a valid digest") }
        guard isRepositoryName(from) else { throw URIRejection("the mount source \"\(from)\" is not a valid repository name") }
        return [Access(action: RegistryAction.pull.rawValue, resource: from)]
    }

    /// OCI repository name: lower-case components `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by `/`.
    public static func isRepositoryName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= maximumNameLength else { return false }
        for component in name.split(separator: "/", omittingEmptySubsequences: false) {
            let bytes = Array(component.utf8)
            guard let first = bytes.first, let last = bytes.last, isLowerAlnum(first), isLowerAlnum(last) else { return false }
            var index = 0
            while index < bytes.count {
                if isLowerAlnum(bytes[index]) {
                    index += 1
                    continue
                }
                // A separator run: ".", "_", "__", or one or more "-".
                var run = index
                while run < bytes.count, !isLowerAlnum(bytes[run]) { run += 1 }
                let separator = bytes[index..<run]
                let valid =
                    separator.elementsEqual([UInt8(ascii: ".")]) || separator.elementsEqual([UInt8(ascii: "_")])
                    || separator.elementsEqual([UInt8(ascii: "_"), UInt8(ascii: "_")])
                    || separator.allSatisfy { $0 == UInt8(ascii: "-") }
                guard valid else { return false }
                index = run
            }
        }
        return true
    }

    /// Tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
    static func isTag(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, bytes.count <= 128, isWordByte(first) else { return false }
        return bytes.dropFirst().allSatisfy { isWordByte($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// Digest: `algorithm:encoded`, algorithm `[a-z0-9]+([+._-][a-z0-9]+)*`, encoded `[a-zA-Z0-9=_-]+`.
    static func isDigest(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, parts[1].utf8.count <= 1024 else { return false }
        let algorithm = Array(parts[0].utf8)
        guard let first = algorithm.first, let last = algorithm.last, isLowerAlnum(first), isLowerAlnum(last) else { return false }
        var previousWasSeparator = false
        for byte in algorithm {
            let separator = byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            guard separator || isLowerAlnum(byte) else { return false }
            guard !(separator && previousWasSeparator) else { return false }
            previousWasSeparator = separator
        }
        return parts[1].utf8.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    /// Upload session id as the registry issues them (a UUID), leniently: `[a-zA-Z0-9._=-]+`.
    static func isUploadID(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 256
            && text.utf8.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "=") }
    }

    private static func isLowerAlnum(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
    private static func isAlnum(_ byte: UInt8) -> Bool {
        isLowerAlnum(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }
    private static func isWordByte(_ byte: UInt8) -> Bool { isAlnum(byte) || byte == UInt8(ascii: "_") }
}
