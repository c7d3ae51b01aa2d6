package raftkv;

/**
 * Marker for every message that crosses the wire between nodes or is written to the journal.
 * Bound to Akka's Jackson CBOR serializer in reference.conf; Java serialization is off.
 */
public interface CborSerializable {}
