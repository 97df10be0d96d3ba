import Foundation
import LTTCTF

/// Where and how to stream a trace to lttng-relayd.
public struct RelaydOptions: Sendable, Equatable {
    public var address: RelaydSession.Address
    /// The session's name (nil: the trace's) and host name (nil: this
    /// machine's), as live readers name it: net://RELAY/host/HOST/SESSION.
    public var sessionName: String?
    public var hostname: String?
    /// Live period in milliseconds (0: not live).
    public var liveTimerMilliseconds: UInt32
    /// How far behind now an idle stream's empty packet says the stream is
    /// (nil: no idle packets: a channel has no switch timer, and only full
    /// sub-buffers show).
    public var idleLagMilliseconds: UInt32?

    public init(address: RelaydSession.Address, sessionName: String? = nil, hostname: String? = nil,
                liveTimerMilliseconds: UInt32 = 1000, idleLagMilliseconds: UInt32? = nil) {
        self.address = address
        self.sessionName = sessionName
        self.hostname = hostname
        self.liveTimerMilliseconds = liveTimerMilliseconds
        self.idleLagMilliseconds = idleLagMilliseconds
    }
}

extension RelaydDestination {
    /// A session on the relay daemon for the trace `traceName` whose buffer
    /// files are `buffers` (the metadata channel's included), and the CTF
    /// writer that streams to it: what `lttfs consume --relayd` drains into
    /// and `lttfs convert --relayd` converts into. Throws why the daemon
    /// could not be reached or refused.
    public static func open(_ options: RelaydOptions, traceName: String, buffers: [(channel: String, cpu: Int)],
                            metadataChannel: String, fallbackDirectory: String)
        throws(CTFError) -> (writer: CTFTraceWriter, destination: RelaydDestination) {
        let channels = Set(buffers.map(\.channel)).subtracting([metadataChannel]).sorted()
        let hostname = options.hostname ?? CTFTraceWriter.hostName()
        let session: RelaydSession
        do throws(RelaydSession.Failure) {
            session = try RelaydSession(address: options.address, sessionName: options.sessionName ?? traceName,
                                        hostname: hostname, liveTimerMicroseconds: options.liveTimerMilliseconds * 1000,
                                        creationTime: UInt64(Date().timeIntervalSince1970), uuid: CTFMetadata.randomUUID(),
                                        sessionID: UInt64.random(in: 1...UInt64(Int64.max)))
        } catch {
            throw .destination(error.description)
        }
        // The stream class of a channel is its place among the data channels,
        // as CTFTraceWriter numbers them.
        let streams = buffers.filter { $0.channel != metadataChannel }.map { b in
            (name: "\(b.channel)_\(b.cpu)", streamClass: UInt32(channels.firstIndex(of: b.channel)!), cpu: UInt32(b.cpu))
        }
        let live = options.liveTimerMilliseconds > 0
        let destination = try RelaydDestination(
            session: session, streams: streams, pathname: traceName, live: live,
            livePeriod: options.idleLagMilliseconds.map { _ in Double(options.liveTimerMilliseconds) / 1000 },
            idleLagNanoseconds: Int64(options.idleLagMilliseconds ?? 0) * 1_000_000,
            fallbackDirectory: fallbackDirectory)
        let writer = CTFTraceWriter(destination: destination, traceName: traceName, channels: channels, hostname: hostname)
        return (writer, destination)
    }
}
