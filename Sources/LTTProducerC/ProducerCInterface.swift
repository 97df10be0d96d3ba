#if canImport(Glibc)
import Glibc
#endif
import CLTTProducer
import LTTProducers
import LTTSystem
import LTTTrace

// The C library (<lttfs/producer.h>, liblttfs-producer.so): a thin face
// over LTTProducers and the tracer's markers, the code the server and the
// Swift producers run. Nothing here records on its own.

/// The last failure's message, for lttfs_last_error.
private let lastError = Locked("")

private func fail(_ message: String, _ code: Int32) {
    lastError.withLock { $0 = message }
    errno = code
}

@_cdecl("lttfs_producer_open")
public func lttfsProducerOpen(_ mountpoint: UnsafePointer<CChar>?) -> OpaquePointer? {
    do throws(Producer.Failure) {
        let producer = try Producer(mountpoint: mountpoint.map { String(cString: $0) })
        return OpaquePointer(Unmanaged.passRetained(producer).toOpaque())
    } catch {
        switch error {
        case .refused: fail(error.description, EACCES)
        case .noServer: fail(error.description, ENOTCONN)
        case .protocolError: fail(error.description, EPROTO)
        }
        return nil
    }
}

@_cdecl("lttfs_producer_close")
public func lttfsProducerClose(_ producer: OpaquePointer?) {
    guard let producer else { return }
    let reference = Unmanaged<Producer>.fromOpaque(UnsafeRawPointer(producer))
    reference.takeUnretainedValue().close()
    reference.release()
}

@_cdecl("lttfs_marker_register")
public func lttfsMarkerRegister(_ producer: OpaquePointer?, _ channel: UnsafePointer<CChar>?, _ name: UnsafePointer<CChar>?,
                                _ format: UnsafePointer<CChar>?) -> OpaquePointer? {
    guard let producer, let channel, let name, let format else {
        fail("lttfs_marker_register: a NULL argument", EINVAL)
        return nil
    }
    // Taken as they are or refused: String(cString:) would mend bad UTF-8
    // into U+FFFD, and register a format the caller never wrote.
    guard let channel = String(validatingCString: channel), let name = String(validatingCString: name),
          let format = String(validatingCString: format) else {
        fail("lttfs_marker_register: a channel, name or format that is not UTF-8", EINVAL)
        return nil
    }
    let p = Unmanaged<Producer>.fromOpaque(UnsafeRawPointer(producer)).takeUnretainedValue()
    do throws(TraceError) {
        // The tracer's registry keeps the marker as long as the producer.
        let marker = try p.tracer.register(channel: channel, name: name, format: format)
        return OpaquePointer(Unmanaged.passUnretained(marker).toOpaque())
    } catch {
        fail(error.description, error.errno.rawValue)
        return nil
    }
}

/// Where a call with no values (a format with no fields) points: never read
/// nor written, so sharing it between threads is safe.
nonisolated(unsafe) private let noValues = UnsafeRawPointer(UnsafeMutablePointer<lttfs_value>.allocate(capacity: 1))

// `lttfs_record_values` in <lttfs/producer.h>, whose macro names this
// symbol: the layout of struct lttfs_value it reads (16 bytes) is in the name.
@_cdecl("lttfs_record_values_2")
public func lttfsRecordValues(_ marker: OpaquePointer?, _ values: UnsafePointer<lttfs_value>?, _ count: UInt32) -> Int32 {
    guard let marker else { return -EINVAL }
    // What MarkerCore.emit(fieldCount:values:) reads (ValueFields): a
    // 64-bit word, then a text's length.
    assert(MemoryLayout<lttfs_value>.stride == 16 && MemoryLayout<lttfs_value>.offset(of: \.length) == 8)
    let core = Unmanaged<MarkerCore>.fromOpaque(UnsafeRawPointer(marker))
    guard core._withUnsafeGuaranteedRef({ $0.isRecording }) else {
        return Int(count) == core._withUnsafeGuaranteedRef({ $0.fieldCount }) ? 0 : -EINVAL
    }
    guard count == 0 || values != nil else { return -EINVAL }
    let words = values.map { UnsafeRawPointer($0) } ?? noValues
    guard let result = core._withUnsafeGuaranteedRef({ $0.emit(fieldCount: Int(count), values: words) }) else {
        return -EINVAL
    }
    return result.refused ? -EPERM : result.lost > 0 ? -ENOBUFS : 0
}

@_cdecl("lttfs_marker_is_recording")
public func lttfsMarkerIsRecording(_ marker: OpaquePointer?) -> Int32 {
    guard let marker else { return 0 }
    return Unmanaged<MarkerCore>.fromOpaque(UnsafeRawPointer(marker))._withUnsafeGuaranteedRef { $0.isRecording ? 1 : 0 }
}

@_cdecl("lttfs_last_error")
public func lttfsLastError(_ buffer: UnsafeMutablePointer<CChar>?, _ size: Int) -> Int {
    let message = lastError.withLock { $0 }
    let utf8 = Array(message.utf8)
    if let buffer, size > 0 {
        let n = min(utf8.count, size - 1)
        for i in 0..<n { buffer[i] = CChar(bitPattern: utf8[i]) }
        buffer[n] = 0
    }
    return utf8.count
}
