import LTTFormat

/// Where a CTF trace goes as it is written: a directory (`CTFDirectory`),
/// or a relay daemon (`LTTRelayd`). `CTFTraceWriter` decides what to write
/// and when; a destination only puts it there.
///
/// The writer calls `appendMetadata` under its shared lock, in the order
/// the metadata grows (the first call holds the preamble), and always
/// before the first packet that needs what it declares; a stream's
/// `write` calls come from one thread at a time, in packet order.
public protocol CTFDestination: Sendable {
    /// A path or URL, for messages.
    var location: String { get }
    /// The metadata grows by `text`: complete top-level declarations.
    func appendMetadata(_ text: String) throws(CTFError)
    /// The stream of buffer file `name` (stream class `streamID`, CPU
    /// `cpu`), opened once, before its first packet.
    func openStream(name: String, streamID: UInt32, cpu: UInt32) throws(CTFError) -> any CTFStreamDestination
    /// The trace's clock and identity are known: its metadata preamble was
    /// just appended; no packet was written yet. `begin` is its first clock
    /// value.
    func traceStarted(uuid: [UInt8], time: TraceTime, begin: UInt64) throws(CTFError)
    /// After the last packet of every stream and the last metadata.
    func finish() throws(CTFError)
}

extension CTFDestination {
    public func traceStarted(uuid: [UInt8], time: TraceTime, begin: UInt64) throws(CTFError) {}
}

/// One stream of a `CTFDestination`.
public protocol CTFStreamDestination: AnyObject, Sendable {
    /// One packet: all its bytes (header and context included), and that
    /// context.
    func write(_ packet: UnsafeRawBufferPointer, context: CTFPacket.Context) throws(CTFError)
    /// After its last packet.
    func close() throws(CTFError)
    /// The `packet_seq_num` the writer's first packet takes: a destination
    /// that writes packets of its own first (a live stream's empty opening
    /// packet) keeps the numbers before it.
    var firstSequenceNumber: UInt64 { get }
}

extension CTFStreamDestination {
    public var firstSequenceNumber: UInt64 { 0 }
}
