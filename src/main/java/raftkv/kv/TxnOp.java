package raftkv.kv;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import raftkv.CborSerializable;

/** One operation inside a transaction branch. */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "t")
@JsonSubTypes({
    @JsonSubTypes.Type(value = TxnOp.Put.class, name = "put"),
    @JsonSubTypes.Type(value = TxnOp.Get.class, name = "get"),
    @JsonSubTypes.Type(value = TxnOp.Delete.class, name = "del")})
public sealed interface TxnOp extends CborSerializable {
  record Put(String key, byte[] value, long lease) implements TxnOp {}

  record Get(String key) implements TxnOp {
    /** Jackson 2.11 cannot tell a one-component record's constructor from a delegating creator. */
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public Get {}
  }

  record Delete(String key, boolean prefix) implements TxnOp {}
}
