// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// Maps a Docker Registry v2 / OCI distribution request to the accesses it needs.
///
/// Routing goes by the trailing segments, as the registry's own router does, so repository
/// names may contain components such as `blobs` or `manifests`. Anything that is not one of
/// the API's endpoints, in canonical form, with a method that endpoint accepts (methods are
/// case-sensitive, RFC 9110), is refused. Works on the path's bytes: the only string it makes
/// is the repository name.
public enum RegistryRoute {
    /// The longest repository name the distribution spec allows.
    public static let maximumNameLength = 255

    /// The accesses `method` on `uri` needs; all of them must be allowed.
    public static func accesses(method: String, uri: OriginalURI) throws(URIRejection) -> [Access] {
        guard !uri.pathHadEscapes else { throw URIRejection("registry paths never contain percent-escapes") }
        if let query = uri.query, query.utf8.contains(UInt8(ascii: ";")) {
            throw URIRejection("the query contains ';', which parsers read differently")
        }
        var path = uri.path
        let routed = path.withUTF8 { bytes in Result { () throws(URIRejection) in try route(method: method, path: bytes) } }
        switch try routed.get() {
        case .login: return [Access(action: RegistryAction.login.rawValue, resource: nil)]
        case .catalog: return [Access(action: RegistryAction.catalog.rawValue, resource: nil)]
        case .repository(let action, let name): return [Access(action: action.rawValue, resource: name)]
        case .uploadStart(let name): return try [Access(action: RegistryAction.push.rawValue, resource: name)] + mountSource(uri)
        }
    }

    private enum Route {
        case login, catalog
        case repository(RegistryAction, String)
        case uploadStart(String)
    }

    private static let v2 = Array("/v2/".utf8)
    private static let catalog = Array("_catalog".utf8)
    private static let blobs = Array("blobs".utf8)
    private static let uploads = Array("uploads".utf8)
    private static let manifests = Array("manifests".utf8)
    private static let tags = Array("tags".utf8)
    private static let list = Array("list".utf8)
    private static let referrers = Array("referrers".utf8)

    private static func route(method: String, path: UnsafeBufferPointer<UInt8>) throws(URIRejection) -> Route {
        guard path.starts(with: v2) else { throw URIRejection("not a registry v2 path") }
        let isRead = method == "GET" || method == "HEAD"
        let start = v2.count
        let end = path.count
        if start == end {
            guard isRead else { throw URIRejection("\(method) is not allowed on /v2/") }
            return .login
        }
        func slice(_ range: Range<Int>) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: path[range]) }
        if slice(start..<end).elementsEqual(catalog) {
            guard method == "GET" else { throw URIRejection("\(method) is not allowed on the catalog") }
            return .catalog
        }
        // The last three separators: …/<third>/<kind>/<last>
        var separators: [Int] = []
        var index = end - 1
        while index >= start, separators.count < 3 {
            if path[index] == UInt8(ascii: "/") { separators.append(index) }
            index -= 1
        }
        guard separators.count >= 2 else { throw URIRejection("the path matches no registry endpoint") }
        let last = slice((separators[0] + 1)..<end)
        let kind = slice((separators[1] + 1)..<separators[0])
        func name(before separator: Int) throws(URIRejection) -> String {
            let bytes = slice(start..<separator)
            guard isRepositoryName(bytes) else { throw URIRejection("\"\(String(decoding: bytes, as: UTF8.self))\" is not a valid repository name") }
            return String(decoding: bytes, as: UTF8.self)
        }

        if separators.count == 3, kind.elementsEqual(uploads), slice((separators[2] + 1)..<separators[1]).elementsEqual(blobs) {
            let repository = try name(before: separators[2])
            if last.isEmpty {
                guard method == "POST" else { throw URIRejection("\(method) is not allowed on an upload start") }
                return .uploadStart(repository)
            }
            if isUploadID(last) {
                guard isRead || method == "PATCH" || method == "PUT" || method == "DELETE" else {
                    throw URIRejection("\(method) is not allowed on an upload session")
                }
                return .repository(.push, repository)
            }
        }
        if kind.elementsEqual(manifests), isTag(last) || isDigest(last) {
            let repository = try name(before: separators[1])
            switch method {
            case "GET", "HEAD": return .repository(.pull, repository)
            case "PUT": return .repository(.push, repository)
            case "DELETE": return .repository(.delete, repository)
            default: throw URIRejection("\(method) is not allowed on a manifest")
            }
        }
        if kind.elementsEqual(blobs), isDigest(last) {
            let repository = try name(before: separators[1])
            switch method {
            case "GET", "HEAD": return .repository(.pull, repository)
            case "DELETE": return .repository(.delete, repository)
            default: throw URIRejection("\(method) is not allowed on a blob")
            }
        }
        if kind.elementsEqual(tags), last.elementsEqual(list) {
            let repository = try name(before: separators[1])
            guard isRead else { throw URIRejection("\(method) is not allowed on a tag list") }
            return .repository(.pull, repository)
        }
        if kind.elementsEqual(referrers), isDigest(last) {
            let repository = try name(before: separators[1])
            guard isRead else { throw URIRejection("\(method) is not allowed on referrers") }
            return .repository(.pull, repository)
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
        var name = name
        return name.withUTF8 { isRepositoryName($0) }
    }

    static func isRepositoryName(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !bytes.isEmpty, bytes.count <= maximumNameLength else { return false }
        var expectAlnum = true  // at the start of a component, or after a separator
        var separator: UInt8 = 0  // the separator run in progress: ".", "_" or "-"
        var separatorLength = 0
        for byte in bytes {
            if isLowerAlnum(byte) {
                expectAlnum = false
                separator = 0
                separatorLength = 0
            } else if byte == UInt8(ascii: "/") {
                guard !expectAlnum else { return false }
                expectAlnum = true
            } else if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") {
                if expectAlnum {
                    // Only "__" and runs of "-" may continue a separator.
                    let continues = separator == byte && ((byte == UInt8(ascii: "_") && separatorLength == 1) || byte == UInt8(ascii: "-"))
                    guard continues else { return false }
                    separatorLength += 1
                } else {
                    separator = byte
                    separatorLength = 1
                    expectAlnum = true
                }
            } else {
                return false
            }
        }
        return !expectAlnum
    }

    /// Tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
    static func isTag(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = bytes.first, bytes.count <= 128, isWordByte(first) else { return false }
        return bytes.dropFirst().allSatisfy { isWordByte($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// Digest: `algorithm:encoded`, algorithm `[a-z0-9]+([+._-][a-z0-9]+)*`, encoded `[a-zA-Z0-9=_-]+`.
    static func isDigest(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { isDigest($0) }
    }

    static func isDigest(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), colon > 0, colon < bytes.count - 1, bytes.count - colon <= 1025 else { return false }
        let algorithm = bytes[..<colon]
        guard let first = algorithm.first, let last = algorithm.last, isLowerAlnum(first), isLowerAlnum(last) else { return false }
        var previousWasSeparator = false
        for byte in algorithm {
            let separator = byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            guard separator || isLowerAlnum(byte) else { return false }
            guard !(separator && previousWasSeparator) else { return false }
            previousWasSeparator = separator
        }
        return bytes[(colon + 1)...].allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    /// Upload session id as the registry issues them (a UUID), leniently: `[a-zA-Z0-9._=-]+`.
    static func isUploadID(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        !bytes.isEmpty && bytes.count <= 256
            && bytes.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "=") }
    }

    private static func isLowerAlnum(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
    private static func isAlnum(_ byte: UInt8) -> Bool {
        isLowerAlnum(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }
    private static func isWordByte(_ byte: UInt8) -> Bool { isAlnum(byte) || byte == UInt8(ascii: "_") }
}
