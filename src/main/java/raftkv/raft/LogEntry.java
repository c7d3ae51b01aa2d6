package raftkv.raft;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import raftkv.CborSerializable;

/** One entry of the replicated log: its absolute index, the leader's term, and what it carries. */
public record LogEntry(long index, long term, Payload payload) implements CborSerializable {

  /** What an entry carries. */
  @JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "t")
  @JsonSubTypes({
      @JsonSubTypes.Type(value = NoOp.class, name = "noop"),
      @JsonSubTypes.Type(value = Command.class, name = "cmd"),
      @JsonSubTypes.Type(value = Config.class, name = "config")})
  public sealed interface Payload extends CborSerializable {}

  /** Appended by every new leader, so that it can commit entries of earlier terms (§5.4.2, §8). */
  public record NoOp(long leaderTermMarker) implements Payload {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public NoOp {}
  }

  /**
   * A client's change to the state machine, as the state machine encoded it: Raft neither reads
   * nor changes these bytes (StateMachine). {@code time} is the leader's wall clock when it
   * appended the entry (ms since the epoch, 0 for none): the state machine's only clock (DESIGN.md §5).
   */
  public record Command(byte[] data, long time) implements Payload {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public Command {}

    /** A command with no time stamped into it. */
    public Command(byte[] data) {
      this(data, 0);
    }
  }

  /**
   * A new cluster configuration (DESIGN.md §7): in effect on a node from the moment the entry is
   * appended to its log, until it is replaced by a later one or truncated away.
   */
  public record Config(Membership membership) implements Payload {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public Config {}
  }
}
