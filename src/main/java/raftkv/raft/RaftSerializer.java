package raftkv.raft;

import akka.actor.ExtendedActorSystem;
import akka.actor.typed.ActorRef;
import akka.actor.typed.ActorRefResolver;
import akka.actor.typed.javadsl.Adapter;
import akka.serialization.SerializerWithStringManifest;

import java.io.NotSerializableException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * A compact binary format for the messages of the replication hot path and the journal's events:
 * every Raft message between peers, a proposal forwarded to the leader, and every event of {@link
 * RaftJournal}, with the log entries and the KV commands they carry. It also tells the exact
 * encoded size of an entry or a command without encoding it ({@link #entryBytes}, {@link
 * #commandBytes}), which is what bounds every AppendEntries under the transport's frame. Jackson CBOR (reflection over records, polymorphic type names
 * per entry) cost a follower more than the rest of its work put together; this format writes
 * fields in a fixed order with a version byte in front.
 *
 * <p>Strings are written losslessly for every Java string (unpaired surrogates included), the way
 * {@code DataOutput.writeUTF} does, with a variable-length length. Journals written before this
 * serializer existed still read: their events carry the Jackson serializer's id.
 */
public final class RaftSerializer extends SerializerWithStringManifest {
  /** Akka's serializer id; never change it, journals carry it. */
  public static final int IDENTIFIER = 7301;
  private static final byte VERSION = 1;

  private static final String APPEND_ENTRIES = "AE";
  private static final String APPEND_REPLY = "AR";
  private static final String REQUEST_VOTE = "RV";
  private static final String VOTE_REPLY = "VR";
  private static final String PRE_VOTE = "PV";
  private static final String PRE_VOTE_REPLY = "PR";
  private static final String ENTRIES_APPENDED = "EA";
  private static final String TERM_ADVANCED = "TA";
  private static final String VOTE_CAST = "VC";
  private static final String BOOTSTRAPPED = "BS";
  private static final String PROPOSE = "PP";
  private static final String INSTALL_SNAPSHOT = "IS";
  private static final String INSTALL_SNAPSHOT_REPLY = "IR";
  private static final String COMPACTED = "CP";
  private static final String JOURNAL_STATE = "JS";
  private static final String FROM_CLUSTER = "CM";
  private static final String TIMEOUT_NOW = "TN";

  /**
   * What the {@link RaftNode.FromCluster} envelope adds to the message inside: the cluster id and
   * the inner message's manifest (two characters); the version byte is written once.
   */
  static final int CLUSTER_ENVELOPE_BYTES = 8 + 1 + 2;

  private static final byte NO_OP = 0;
  /**
   * Kind 1 was a client command in the layout of an earlier release (before the state-machine
   * seam); this release cannot read it and says so.
   */
  private static final byte LEGACY_CLIENT_COMMAND = 1;
  /** A state machine's command: its bytes, as they are (written before leaders stamped time into commands). */
  private static final byte COMMAND = 2;
  /** A state machine's command with the leader's time: the time, then its bytes. */
  private static final byte TIMED_COMMAND = 4;
  /** A cluster configuration (membership). */
  private static final byte CONFIG = 3;

  private final ExtendedActorSystem system;
  private volatile ActorRefResolver resolver;

  public RaftSerializer(ExtendedActorSystem system) {
    this.system = system;
  }

  /** Reads and writes the ref a forwarded proposal's reply goes to (made on first use). */
  private ActorRefResolver resolver() {
    ActorRefResolver r = resolver;
    if (r == null) {
      r = ActorRefResolver.get(Adapter.toTyped(system));
      resolver = r;
    }
    return r;
  }

  @Override
  public int identifier() {
    return IDENTIFIER;
  }

  /** The manifest of each class this serializer writes (every one a record, so the class is exact). */
  private static final Map<Class<?>, String> MANIFESTS = Map.ofEntries(
      Map.entry(RaftNode.AppendEntries.class, APPEND_ENTRIES),
      Map.entry(RaftNode.AppendReply.class, APPEND_REPLY),
      Map.entry(RaftNode.RequestVote.class, REQUEST_VOTE),
      Map.entry(RaftNode.VoteReply.class, VOTE_REPLY),
      Map.entry(RaftNode.PreVote.class, PRE_VOTE),
      Map.entry(RaftNode.PreVoteReply.class, PRE_VOTE_REPLY),
      Map.entry(RaftJournal.EntriesAppended.class, ENTRIES_APPENDED),
      Map.entry(RaftJournal.TermAdvanced.class, TERM_ADVANCED),
      Map.entry(RaftJournal.VoteCast.class, VOTE_CAST),
      Map.entry(RaftJournal.Bootstrapped.class, BOOTSTRAPPED),
      Map.entry(RaftNode.Propose.class, PROPOSE),
      Map.entry(RaftNode.InstallSnapshot.class, INSTALL_SNAPSHOT),
      Map.entry(RaftNode.InstallSnapshotReply.class, INSTALL_SNAPSHOT_REPLY),
      Map.entry(RaftJournal.Compacted.class, COMPACTED),
      Map.entry(RaftJournal.Durable.class, JOURNAL_STATE),
      Map.entry(RaftNode.FromCluster.class, FROM_CLUSTER),
      Map.entry(RaftNode.TimeoutNow.class, TIMEOUT_NOW));

  @Override
  public String manifest(Object o) {
    String manifest = MANIFESTS.get(o.getClass());
    if (manifest == null) {
      throw new IllegalArgumentException("RaftSerializer cannot serialize " + o.getClass().getName());
    }
    return manifest;
  }

  @Override
  public byte[] toBinary(Object message) {
    Object o = message;
    if (message instanceof RaftNode.FromCluster envelope) {
      o = envelope.message();
    }
    Out out = new Out((o instanceof RaftNode.AppendEntries ae ? 64 + 96 * ae.entries().size()
        : o instanceof RaftJournal.EntriesAppended ea ? 32 + 96 * ea.entries().size()
        : o instanceof RaftNode.Propose p ? 160 + p.command().length
        : o instanceof RaftNode.InstallSnapshot is ? 96 + is.data().length
        : o instanceof RaftJournal.Durable d ? 256 + 96 * (int) Math.min(1 << 20, d.log.lastIndex() - d.log.snapshotIndex())
        : 64) + (message instanceof RaftNode.FromCluster ? CLUSTER_ENVELOPE_BYTES : 0));
    out.b(VERSION);
    if (message instanceof RaftNode.FromCluster envelope) {
      out.l(envelope.clusterId()).s(manifest(o));
    }
    writeBody(out, o);
    return out.toBytes();
  }

  private void writeBody(Out out, Object o) {
    if (o instanceof RaftNode.AppendEntries m) {
      out.l(m.term()).s(m.leaderId()).ns(m.leaderHttp()).l(m.prevLogIndex()).l(m.prevLogTerm())
          .l(m.leaderCommit()).l(m.seq());
      entries(out, m.entries());
      out.ns(m.leaderAddress());
    } else if (o instanceof RaftNode.AppendReply m) {
      out.l(m.term()).l(m.requestTerm()).s(m.followerId()).ns(m.followerHttp()).bool(m.success())
          .l(m.matchIndex()).l(m.prevLogIndex()).l(m.conflictIndex()).l(m.conflictTerm()).l(m.seq());
    } else if (o instanceof RaftNode.RequestVote m) {
      out.l(m.term()).s(m.candidateId()).l(m.lastLogIndex()).l(m.lastLogTerm()).bool(m.transfer());
    } else if (o instanceof RaftNode.VoteReply m) {
      out.l(m.term()).s(m.voterId()).bool(m.granted());
    } else if (o instanceof RaftNode.PreVote m) {
      out.l(m.nextTerm()).s(m.candidateId()).l(m.lastLogIndex()).l(m.lastLogTerm()).l(m.round());
    } else if (o instanceof RaftNode.PreVoteReply m) {
      out.l(m.term()).l(m.nextTerm()).s(m.voterId()).bool(m.granted()).l(m.round());
    } else if (o instanceof RaftJournal.EntriesAppended e) {
      out.l(e.fromIndex());
      entries(out, e.entries());
    } else if (o instanceof RaftJournal.TermAdvanced e) {
      out.l(e.term());
    } else if (o instanceof RaftJournal.VoteCast e) {
      out.l(e.term()).s(e.candidateId());
    } else if (o instanceof RaftJournal.Bootstrapped e) {
      out.i(e.voters().size());
      for (Peer p : e.voters()) {
        out.s(p.id()).s(p.host()).i(p.port());
      }
    } else if (o instanceof RaftNode.Propose m) {
      // a command, a path and a count: the size of the command plus a few hundred bytes, so a
      // command that fits in an AppendEntries fits in a forwarded proposal too
      out.bytes(m.command());
      out.s(resolver().toSerializationFormat(m.replyTo())).i(m.hops());
    } else if (o instanceof RaftNode.InstallSnapshot m) {
      out.l(m.term()).s(m.leaderId()).ns(m.leaderHttp()).l(m.snapshotIndex()).l(m.snapshotTerm()).l(m.offset())
          .bytes(m.data()).bool(m.done()).ns(m.leaderAddress());
    } else if (o instanceof RaftNode.InstallSnapshotReply m) {
      out.l(m.term()).s(m.followerId()).l(m.snapshotIndex()).l(m.nextOffset()).bool(m.installed());
    } else if (o instanceof RaftJournal.Compacted e) {
      out.l(e.index()).l(e.term());
      if (e.membership() != null) {
        membership(out, e.membership());
      }
    } else if (o instanceof RaftNode.TimeoutNow m) {
      out.l(m.term()).s(m.leaderId());
    } else if (o instanceof RaftJournal.Durable d) {
      List<Peer> baseVoters = d.log.baseMembership().voterPeers();
      out.l(d.term).ns(d.votedFor).i(baseVoters.size());
      for (Peer p : baseVoters) {
        out.s(p.id()).s(p.host()).i(p.port());
      }
      out.l(d.log.snapshotIndex()).l(d.log.snapshotTerm());
      entries(out, d.log.entries());
      membership(out, d.log.baseMembership()); // (learners and HTTP addresses came later: absent in older ones)
    } else {
      throw new IllegalArgumentException("RaftSerializer cannot serialize " + o.getClass().getName()
          + (o instanceof RaftNode.FromCluster ? " inside another" : ""));
    }
  }

  @Override
  public Object fromBinary(byte[] bytes, String manifest) throws NotSerializableException {
    In in = new In(bytes);
    try {
      byte version = in.b();
      if (version != VERSION) {
        throw new NotSerializableException("raft message format " + version + " is not known (manifest " + manifest + ")");
      }
      Object result;
      if (FROM_CLUSTER.equals(manifest)) {
        long clusterId = in.l();
        String inner = in.s();
        if (FROM_CLUSTER.equals(inner)) {
          throw new NotSerializableException("a " + FROM_CLUSTER + " message inside another");
        }
        result = new RaftNode.FromCluster(clusterId, (RaftNode.Command) readBody(in, inner));
      } else {
        result = readBody(in, manifest);
      }
      if (in.remaining() != 0) {
        throw new NotSerializableException(in.remaining() + " bytes left over after a " + manifest + " message");
      }
      return result;
    } catch (IndexOutOfBoundsException | IllegalArgumentException | ClassCastException e) {
      throw new NotSerializableException("corrupt " + manifest + " message: " + e.getMessage());
    }
  }

  private Object readBody(In in, String manifest) throws NotSerializableException {
      return switch (manifest) {
        case APPEND_ENTRIES -> {
          long term = in.l();
          String leaderId = in.s();
          String leaderHttp = in.ns();
          long prevLogIndex = in.l();
          long prevLogTerm = in.l();
          long leaderCommit = in.l();
          long seq = in.l();
          List<LogEntry> entries = entries(in);
          // the leader's Raft address came later: a message of a node without it has none
          yield new RaftNode.AppendEntries(term, leaderId, leaderHttp, prevLogIndex, prevLogTerm, entries,
              leaderCommit, seq, in.remaining() == 0 ? null : in.ns());
        }
        case APPEND_REPLY -> new RaftNode.AppendReply(in.l(), in.l(), in.s(), in.ns(), in.bool(), in.l(), in.l(),
            in.l(), in.l(), in.l());
        case REQUEST_VOTE -> new RaftNode.RequestVote(in.l(), in.s(), in.l(), in.l(), in.remaining() != 0 && in.bool());
        case TIMEOUT_NOW -> new RaftNode.TimeoutNow(in.l(), in.s());
        case VOTE_REPLY -> new RaftNode.VoteReply(in.l(), in.s(), in.bool());
        // the round came later: a message of a node without it reads as round 0
        case PRE_VOTE -> new RaftNode.PreVote(in.l(), in.s(), in.l(), in.l(), in.remaining() == 0 ? 0 : in.l());
        case PRE_VOTE_REPLY -> new RaftNode.PreVoteReply(in.l(), in.l(), in.s(), in.bool(),
            in.remaining() == 0 ? 0 : in.l());
        case ENTRIES_APPENDED -> {
          long from = in.l();
          yield new RaftJournal.EntriesAppended(from, entries(in));
        }
        case TERM_ADVANCED -> new RaftJournal.TermAdvanced(in.l());
        case VOTE_CAST -> new RaftJournal.VoteCast(in.l(), in.s());
        case INSTALL_SNAPSHOT -> new RaftNode.InstallSnapshot(in.l(), in.s(), in.ns(), in.l(), in.l(), in.l(),
            in.bytes(), in.bool(), in.remaining() == 0 ? null : in.ns());
        case INSTALL_SNAPSHOT_REPLY -> new RaftNode.InstallSnapshotReply(in.l(), in.s(), in.l(), in.l(), in.bool());
        case COMPACTED -> new RaftJournal.Compacted(in.l(), in.l(), in.remaining() == 0 ? null : membership(in));
        case JOURNAL_STATE -> {
          long term = in.l();
          String votedFor = in.ns();
          int n = in.count();
          List<Peer> voters = new ArrayList<>(n);
          for (int i = 0; i < n; i++) {
            voters.add(new Peer(in.s(), in.s(), in.i()));
          }
          RaftLog log = new RaftLog(in.l(), in.l(), Membership.ofVoters(voters));
          for (LogEntry e : entries(in)) {
            log.append(e);
          }
          if (in.remaining() != 0) {
            log.setBaseMembership(membership(in));
          }
          yield new RaftJournal.Durable(term, votedFor, log);
        }
        case PROPOSE -> {
          byte[] command = in.bytes();
          ActorRef<RaftNode.ClientReply> replyTo = resolver().resolveActorRef(in.s());
          yield new RaftNode.Propose(command, replyTo, in.i());
        }
        case BOOTSTRAPPED -> {
          int n = in.count();
          List<Peer> voters = new ArrayList<>(n);
          for (int i = 0; i < n; i++) {
            voters.add(new Peer(in.s(), in.s(), in.i()));
          }
          yield new RaftJournal.Bootstrapped(List.copyOf(voters));
        }
        default -> throw new NotSerializableException("unknown raft message manifest '" + manifest + "'");
      };
  }

  // ---- exact sizes: what toBinary writes, without writing it

  /** Bytes of an entry besides its payload: index, term and the payload's kind. */
  static final int ENTRY_HEADER_BYTES = 8 + 8 + 1;

  /**
   * The encoded size of an AppendEntries of {@code leaderId} and {@code leaderHttp} without its
   * entries, in the envelope it travels in ({@link #CLUSTER_ENVELOPE_BYTES}): version, term, the two strings, four longs and the entry count (counted at its
   * largest, 5 bytes). Adding {@link #entryBytes} of each entry gives a bound that is at most 4
   * bytes above the exact size.
   */
  static long appendEntriesHeaderBytes(String leaderId, String leaderHttp) {
    return 1 + CLUSTER_ENVELOPE_BYTES + 8 + stringBytes(leaderId) + (leaderHttp == null ? 1 : 1 + stringBytes(leaderHttp))
        + 4 * 8 + 5 + MAX_ADDRESS_BYTES;
  }

  /**
   * The leader's Raft address (host:port) at its largest, as AppendEntries carries it: a presence
   * byte, a length of up to 2 bytes, a host of up to 253 characters (3 bytes each at most in
   * modified UTF-8) and ":65535".
   */
  static final int MAX_ADDRESS_BYTES = 1 + 2 + 3 * 253 + 6;

  /** The encoded size of one log entry, as AppendEntries and the journal write it. */
  static int entryBytes(LogEntry entry) {
    if (entry.payload() instanceof LogEntry.NoOp) {
      return ENTRY_HEADER_BYTES + 8;
    } else if (entry.payload() instanceof LogEntry.Command c) {
      return (int) Math.min(Integer.MAX_VALUE, commandEntryBytes(c.data().length));
    } else if (entry.payload() instanceof LogEntry.Config c) {
      return (int) Math.min(Integer.MAX_VALUE, ENTRY_HEADER_BYTES + membershipBytes(c.membership()));
    }
    throw new IllegalArgumentException("unknown log entry payload " + entry.payload());
  }

  /** The encoded size of a log entry that carries {@code commandBytes} bytes of command. */
  public static long commandEntryBytes(int commandBytes) {
    return (long) ENTRY_HEADER_BYTES + 8 + varintBytes(commandBytes) + commandBytes;
  }

  /** A string as {@link Out#s} writes it: its modified-UTF-8 length as a varint, then the bytes. */
  static long stringBytes(String v) {
    long len = Out.modifiedUtf8Length(v);
    return (len > Integer.MAX_VALUE ? 5 : varintBytes((int) len)) + len;
  }

  private static int varintBytes(int v) {
    return v < 1 << 7 ? 1 : v < 1 << 14 ? 2 : v < 1 << 21 ? 3 : v < 1 << 28 ? 4 : 5;
  }

  // ---- entries and commands

  private static void entries(Out out, List<LogEntry> entries) {
    out.i(entries.size());
    for (LogEntry e : entries) {
      out.l(e.index()).l(e.term());
      if (e.payload() instanceof LogEntry.NoOp n) {
        out.b(NO_OP).l(n.leaderTermMarker());
      } else if (e.payload() instanceof LogEntry.Command c) {
        out.b(TIMED_COMMAND).l(c.time()).bytes(c.data());
      } else if (e.payload() instanceof LogEntry.Config c) {
        out.b(CONFIG);
        membership(out, c.membership());
      } else {
        throw new IllegalArgumentException("unknown log entry payload " + e.payload());
      }
    }
  }

  /** A configuration: the member count, then each member's id, host, port, HTTP address (or none) and voter flag. */
  private static void membership(Out out, Membership m) {
    out.i(m.members().size());
    for (Membership.Member member : m.members()) {
      out.s(member.id()).s(member.host()).i(member.port()).ns(member.httpAddress()).bool(member.voter());
    }
  }

  private static Membership membership(In in) {
    int n = in.count();
    List<Membership.Member> members = new ArrayList<>(Math.min(n, 1024));
    for (int i = 0; i < n; i++) {
      members.add(new Membership.Member(in.s(), in.s(), in.i(), in.ns(), in.bool()));
    }
    return new Membership(members);
  }

  /** What {@link #membership(Out, Membership)} writes, in bytes. */
  static long membershipBytes(Membership m) {
    long n = varintBytes(m.members().size());
    for (Membership.Member member : m.members()) {
      n += stringBytes(member.id()) + stringBytes(member.host()) + varintBytes(member.port())
          + (member.httpAddress() == null ? 1 : 1 + stringBytes(member.httpAddress())) + 1;
    }
    return n;
  }

  private static List<LogEntry> entries(In in) {
    int n = in.count();
    if (n == 0) {
      return List.of();
    }
    LogEntry[] entries = new LogEntry[n];
    for (int i = 0; i < n; i++) {
      long index = in.l();
      long term = in.l();
      byte kind = in.b();
      LogEntry.Payload payload = switch (kind) {
        case NO_OP -> new LogEntry.NoOp(in.l());
        case COMMAND -> new LogEntry.Command(in.bytes());
        case TIMED_COMMAND -> {
          long time = in.l();
          yield new LogEntry.Command(in.bytes(), time);
        }
        case CONFIG -> new LogEntry.Config(membership(in));
        case LEGACY_CLIENT_COMMAND -> throw new IllegalArgumentException("the log holds entries in the layout of a"
            + " raftkv release before snapshots, which this release does not read; back up the keys with the old"
            + " release and load them into a new cluster");
        default -> throw new IllegalArgumentException("unknown log entry payload kind " + kind);
      };
      entries[i] = new LogEntry(index, term, payload);
    }
    return Arrays.asList(entries);
  }

  private static final class Out {
    private byte[] buf;
    private int pos;

    Out(int capacity) {
      buf = new byte[Math.max(16, capacity)];
    }

    private void room(int n) {
      if (pos + n > buf.length) {
        buf = Arrays.copyOf(buf, Math.max(buf.length * 2, pos + n));
      }
    }

    Out b(byte v) {
      room(1);
      buf[pos++] = v;
      return this;
    }

    Out bool(boolean v) {
      return b(v ? (byte) 1 : (byte) 0);
    }

    Out l(long v) {
      room(8);
      for (int shift = 56; shift >= 0; shift -= 8) {
        buf[pos++] = (byte) (v >>> shift);
      }
      return this;
    }

    /** A non-negative int in 1-5 bytes. */
    Out i(int v) {
      if (v < 0) {
        throw new IllegalArgumentException("negative length " + v);
      }
      room(5);
      while ((v & ~0x7F) != 0) {
        buf[pos++] = (byte) ((v & 0x7F) | 0x80);
        v >>>= 7;
      }
      buf[pos++] = (byte) v;
      return this;
    }

    Out nl(Long v) {
      return v == null ? b((byte) 0) : b((byte) 1).l(v);
    }

    Out bytes(byte[] v) {
      i(v.length);
      room(v.length);
      System.arraycopy(v, 0, buf, pos, v.length);
      pos += v.length;
      return this;
    }

    Out nbytes(byte[] v) {
      return v == null ? b((byte) 0) : b((byte) 1).bytes(v);
    }

    /** Bytes of {@code v} in modified UTF-8: 1 for U+0001..U+007F, 2 up to U+07FF and for U+0000, else 3 per char. */
    static long modifiedUtf8Length(String v) {
      int n = v.length();
      long len = 0;
      for (int k = 0; k < n; k++) {
        char c = v.charAt(k);
        len += c >= 1 && c <= 0x7F ? 1 : c <= 0x7FF ? 2 : 3;
      }
      return len;
    }

    /** Modified UTF-8 of every char, so that any Java string comes back the same. */
    Out s(String v) {
      int n = v.length();
      long bytes = modifiedUtf8Length(v);
      if (bytes > Integer.MAX_VALUE) {
        throw new IllegalArgumentException("a string of " + bytes + " bytes cannot be encoded");
      }
      int len = (int) bytes;
      i(len);
      room(len);
      for (int k = 0; k < n; k++) {
        char c = v.charAt(k);
        if (c >= 1 && c <= 0x7F) {
          buf[pos++] = (byte) c;
        } else if (c <= 0x7FF) {
          buf[pos++] = (byte) (0xC0 | (c >> 6));
          buf[pos++] = (byte) (0x80 | (c & 0x3F));
        } else {
          buf[pos++] = (byte) (0xE0 | (c >> 12));
          buf[pos++] = (byte) (0x80 | ((c >> 6) & 0x3F));
          buf[pos++] = (byte) (0x80 | (c & 0x3F));
        }
      }
      return this;
    }

    Out ns(String v) {
      return v == null ? b((byte) 0) : b((byte) 1).s(v);
    }

    byte[] toBytes() {
      return Arrays.copyOf(buf, pos);
    }
  }

  /** Reads what {@link Out} wrote; any overrun is an IndexOutOfBoundsException. */
  private static final class In {
    private final byte[] buf;
    private int pos;

    In(byte[] buf) {
      this.buf = buf;
    }

    int remaining() {
      return buf.length - pos;
    }

    private void need(int n) {
      if (n < 0 || pos + n > buf.length) {
        throw new IndexOutOfBoundsException("truncated: " + n + " bytes needed at " + pos + " of " + buf.length);
      }
    }

    byte b() {
      need(1);
      return buf[pos++];
    }

    boolean bool() {
      byte v = b();
      if (v != 0 && v != 1) {
        throw new IllegalArgumentException("bad boolean " + v);
      }
      return v == 1;
    }

    long l() {
      need(8);
      long v = 0;
      for (int k = 0; k < 8; k++) {
        v = (v << 8) | (buf[pos++] & 0xFF);
      }
      return v;
    }

    int i() {
      int v = 0;
      for (int shift = 0; shift < 35; shift += 7) {
        byte x = b();
        if (shift == 28 && (x & 0xF8) != 0) {
          throw new IllegalArgumentException("length over 31 bits");
        }
        v |= (x & 0x7F) << shift;
        if ((x & 0x80) == 0) {
          if (v < 0) {
            throw new IllegalArgumentException("negative length");
          }
          return v;
        }
      }
      throw new IllegalArgumentException("length too long");
    }

    /** A count of items that follow, each at least one byte: bounded by what is left. */
    int count() {
      int n = i();
      if (n > remaining()) {
        throw new IllegalArgumentException("count " + n + " exceeds the " + remaining() + " bytes left");
      }
      return n;
    }

    Long nl() {
      return bool() ? l() : null;
    }

    byte[] bytes() {
      int n = i();
      need(n);
      byte[] v = Arrays.copyOfRange(buf, pos, pos + n);
      pos += n;
      return v;
    }

    byte[] nbytes() {
      return bool() ? bytes() : null;
    }

    String s() {
      int len = i();
      need(len);
      int end = pos + len;
      char[] chars = new char[len];
      int n = 0;
      while (pos < end) {
        int c = buf[pos++] & 0xFF;
        if (c < 0x80) {
          chars[n++] = (char) c;
        } else if ((c & 0xE0) == 0xC0) {
          need(1);
          chars[n++] = (char) (((c & 0x1F) << 6) | continuation());
        } else if ((c & 0xF0) == 0xE0) {
          need(2);
          chars[n++] = (char) (((c & 0x0F) << 12) | (continuation() << 6) | continuation());
        } else {
          throw new IllegalArgumentException("bad string byte " + c);
        }
      }
      if (pos != end) {
        throw new IllegalArgumentException("string overruns its length");
      }
      return new String(chars, 0, n);
    }

    private int continuation() {
      int b = buf[pos++] & 0xFF;
      if ((b & 0xC0) != 0x80) {
        throw new IllegalArgumentException("bad string continuation byte " + b);
      }
      return b & 0x3F;
    }

    String ns() {
      return bool() ? s() : null;
    }
  }
}
