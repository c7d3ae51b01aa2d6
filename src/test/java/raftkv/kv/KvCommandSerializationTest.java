package raftkv.kv;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.actor.typed.javadsl.Adapter;
import akka.serialization.Serialization;
import akka.serialization.SerializationExtension;
import akka.serialization.Serializer;
import akka.serialization.Serializers;
import akka.serialization.jackson.JacksonCborSerializer;
import com.typesafe.config.ConfigFactory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import raftkv.testutil.RecordAssertions;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/**
 * The kv records cross the wire between nodes and sit in the journal: they must survive Akka's
 * Jackson CBOR serializer (Jackson 2.11, which predates records) field for field.
 */
class KvCommandSerializationTest {

  private static ActorTestKit testKit;
  private static Serialization serialization;

  @BeforeAll
  static void startSystem() {
    testKit = ActorTestKit.create(ConfigFactory.parseString(
        "akka.actor.provider = local\n"
            + "akka.actor.serialization-bindings { \"raftkv.CborSerializable\" = jackson-cbor }"));
    serialization = SerializationExtension.get(Adapter.toClassic(testKit.system()));
  }

  @AfterAll
  static void stopSystem() {
    testKit.shutdownTestKit();
  }

  static List<Object> messages() {
    byte[] value = {0, 1, (byte) 0x80, (byte) 0xFF, 'x'};
    KeyValue kv = new KeyValue("config/app/\uD83D\uDE00", value, 3, 7, 2, 99);
    List<Compare> compares = new ArrayList<>();
    for (Compare.Target target : Compare.Target.values()) {
      for (Compare.Op op : Compare.Op.values()) {
        compares.add(new Compare("k-" + target, target, op, 42, target == Compare.Target.VALUE ? value : null));
      }
    }
    List<TxnOp> ops = List.of(new TxnOp.Put("p", value, 5), new TxnOp.Get("g"), new TxnOp.Delete("d/", true));
    return List.of(
        // commands
        KvCommand.Put.of("a", value),
        new KvCommand.Put("a", new byte[0], 12, 0L, false),
        new KvCommand.Put("a", value, 0, 17L, true),
        KvCommand.Delete.of("a"),
        new KvCommand.Delete("a/", true, null),
        new KvCommand.Delete("a", false, 8L),
        new KvCommand.Txn(compares, ops, List.of(new TxnOp.Delete("x", false))),
        new KvCommand.Txn(List.of(), List.of(), List.of()),
        // queries
        new KvQuery.Get("a"),
        new KvQuery.Range("", null, 0),
        new KvQuery.Range("p/", "p/1", 10),
        // results
        new KvResult.PutDone(5, null),
        new KvResult.PutDone(5, 4L),
        new KvResult.DeleteDone(6, 3),
        new KvResult.PreconditionFailed(0),
        new KvResult.PreconditionFailed(9),
        new KvResult.GetDone(4, null),
        new KvResult.GetDone(4, kv),
        new KvResult.RangeDone(4, List.of(kv, new KeyValue("b", new byte[0], 1, 1, 1, 0)), true),
        new KvResult.RangeDone(0, List.of(), false),
        new KvResult.TxnDone(true, 8, List.of(new KvResult.PutDone(8, null), new KvResult.DeleteDone(8, 0),
            new KvResult.GetDone(8, kv), new KvResult.GetDone(8, null))),
        new KvResult.TxnDone(false, 8, List.of()),
        // the parts on their own
        kv,
        compares.get(0),
        ops.get(0));
  }

  @ParameterizedTest(name = "{index}: {0}")
  @MethodSource("messages")
  void a_message_survives_the_cbor_serializer(Object message) {
    // given
    Serializer serializer = serialization.findSerializerFor(message);
    assertInstanceOf(JacksonCborSerializer.class, serializer, "bound to jackson-cbor");
    // when
    byte[] bytes = serialization.serialize(message).get();
    String manifest = Serializers.manifestFor(serializer, message);
    Object back = serialization.deserialize(bytes, serializer.identifier(), manifest).get();
    // then
    RecordAssertions.assertFieldsEqual(message, back, message.getClass().getSimpleName());
  }
}
