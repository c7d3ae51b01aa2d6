package raftkv.raft;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.DigestInputStream;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * A snapshot as a file: what InstallSnapshot carries and what a backup is. Layout: magic
 * {@code "RKSN"}, format, last included index and term, the configuration as of that index (format
 * 2: every member with its HTTP address and voter flag; format 1, still read: the voters), the state
 * machine's bytes ({@link StateMachine.Snapshot#writeTo}), then a SHA-256 of everything before it.
 *
 * <p>Written to a temporary file, fsynced, renamed and the directory fsynced, so a file with the
 * final name is complete; read back only after its hash is checked, so a torn or flipped file is
 * refused with a one-line reason, never restored. Plain class: callers run it off the Raft actor.
 */
public final class SnapshotFile {
  static final int MAGIC = 0x524B534E; // "RKSN"
  static final int FORMAT = 2;
  /** The format before learners: voters only, each id, host and port. */
  static final int FORMAT_VOTERS_ONLY = 1;
  static final int HASH_BYTES = 32;
  private static final String SUFFIX = ".snap";

  private SnapshotFile() {}

  /** What a snapshot file says about itself; {@code dataOffset} is where the state machine's bytes start. */
  public record Header(long index, long term, Membership membership, long dataOffset) {
    /** The voters as of the snapshot. */
    public List<Peer> voters() {
      return membership.voterPeers();
    }
  }

  /**
   * Writes {@code view} with {@code voters} into {@code dir} as {@code snapshot-<index>-<term>.snap}
   * and returns its path; keeps the newest {@code keep} such files and deletes older ones.
   */
  public static Path write(Path dir, StateMachine.Snapshot view, List<Peer> voters, int keep) throws IOException {
    return write(dir, view, Membership.ofVoters(voters), keep);
  }

  /** {@link #write(Path, StateMachine.Snapshot, List, int)} with a whole configuration. */
  public static Path write(Path dir, StateMachine.Snapshot view, Membership voters, int keep) throws IOException {
    Files.createDirectories(dir);
    Path file = dir.resolve(String.format("snapshot-%020d-%020d%s", view.index(), view.term(), SUFFIX));
    Path tmp = dir.resolve(file.getFileName() + ".tmp");
    MessageDigest sha = sha256();
    try (OutputStream raw = Files.newOutputStream(tmp);
         BufferedOutputStream buffered = new BufferedOutputStream(raw, 1 << 16)) {
      DataOutputStream out = new DataOutputStream(new DigestOutputStream(buffered, sha));
      writeHeader(out, view.index(), view.term(), voters);
      view.writeTo(out);
      out.flush();
      buffered.write(sha.digest());
    }
    fsync(tmp);
    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    fsyncDir(dir);
    prune(dir, keep);
    return file;
  }

  /** Writes a whole snapshot (header, data, hash) to {@code out}: a backup. */
  public static void stream(OutputStream target, StateMachine.Snapshot view, List<Peer> voters) throws IOException {
    stream(target, view, Membership.ofVoters(voters));
  }

  /** {@link #stream(OutputStream, StateMachine.Snapshot, List)} with a whole configuration. */
  public static void stream(OutputStream target, StateMachine.Snapshot view, Membership voters) throws IOException {
    MessageDigest sha = sha256();
    DataOutputStream out = new DataOutputStream(new DigestOutputStream(new NonClosing(target), sha));
    writeHeader(out, view.index(), view.term(), voters);
    view.writeTo(out);
    out.flush();
    target.write(sha.digest());
    target.flush();
  }

  private static void writeHeader(DataOutputStream out, long index, long term, Membership membership) throws IOException {
    out.writeInt(MAGIC);
    out.writeInt(FORMAT);
    out.writeLong(index);
    out.writeLong(term);
    out.writeInt(membership.members().size());
    for (Membership.Member m : membership.members()) {
      out.writeUTF(m.id());
      out.writeUTF(m.host());
      out.writeInt(m.port());
      out.writeBoolean(m.httpAddress() != null);
      if (m.httpAddress() != null) {
        out.writeUTF(m.httpAddress());
      }
      out.writeBoolean(m.voter());
    }
  }

  /**
   * Reads the whole file and checks its hash and header; throws IllegalArgumentException with a
   * one-line reason when it is not a complete, intact snapshot file.
   */
  public static Header verify(Path file) throws IOException {
    long size = Files.size(file);
    if (size < HASH_BYTES + 28) {
      throw new IllegalArgumentException("snapshot " + file.getFileName() + " is truncated (" + size + " bytes)");
    }
    MessageDigest sha = sha256();
    Header header;
    byte[] trailer = new byte[HASH_BYTES];
    try (InputStream raw = new BufferedInputStream(Files.newInputStream(file), 1 << 16)) {
      BoundedInput body = new BoundedInput(raw, size - HASH_BYTES);
      DigestInputStream digesting = new DigestInputStream(body, sha);
      header = readHeader(new DataInputStream(digesting), file);
      byte[] skip = new byte[1 << 16];
      while (digesting.read(skip) >= 0) {
        // hash the state machine's bytes
      }
      new DataInputStream(raw).readFully(trailer);
    } catch (EOFException e) {
      throw new IllegalArgumentException("snapshot " + file.getFileName() + " is truncated");
    }
    if (!Arrays.equals(trailer, sha.digest())) {
      throw new IllegalArgumentException("snapshot " + file.getFileName() + " is corrupt: its SHA-256 does not match");
    }
    return header;
  }

  /**
   * The configuration in the header of this node's snapshot file at {@code index} of {@code term}
   * in {@code dir} (a snapshot it received, or wrote for followers), or null when there is none
   * or it cannot be read. The file was checked when it was kept; only its header is read.
   */
  public static Membership membershipOf(Path dir, long index, long term) {
    if (dir == null) {
      return null;
    }
    Path file = dir.resolve(String.format("snapshot-%020d-%020d%s", index, term, SUFFIX));
    try (DataInputStream in = new DataInputStream(new BufferedInputStream(Files.newInputStream(file)))) {
      return readHeader(in, file).membership();
    } catch (IOException | RuntimeException e) {
      return null;
    }
  }

  private static Header readHeader(DataInputStream in, Path file) throws IOException {
    int magic = in.readInt();
    if (magic != MAGIC) {
      throw new IllegalArgumentException("" + file.getFileName() + " is not a raftkv snapshot (magic " + Integer.toHexString(magic) + ")");
    }
    int format = in.readInt();
    if (format != FORMAT && format != FORMAT_VOTERS_ONLY) {
      throw new IllegalArgumentException("snapshot " + file.getFileName() + " has format " + format + "; this build reads " + FORMAT);
    }
    long index = in.readLong();
    long term = in.readLong();
    int n = in.readInt();
    if (index < 0 || term < 0 || n < 0 || n > 10_000) {
      throw new IllegalArgumentException("snapshot " + file.getFileName() + " has a corrupt header");
    }
    List<Membership.Member> members = new ArrayList<>(n);
    long offset = 4 + 4 + 8 + 8 + 4;
    for (int i = 0; i < n; i++) {
      String id = in.readUTF();
      String host = in.readUTF();
      int port = in.readInt();
      offset += 2 + utfLength(id) + 2 + utfLength(host) + 4;
      String http = null;
      boolean voter = true;
      if (format == FORMAT) {
        if (in.readBoolean()) {
          http = in.readUTF();
          offset += 2 + utfLength(http);
        }
        voter = in.readBoolean();
        offset += 2;
      }
      members.add(new Membership.Member(id, host, port, http, voter));
    }
    return new Header(index, term, new Membership(members), offset);
  }

  private static int utfLength(String s) {
    int n = 0;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      n += c >= 1 && c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
    }
    return n;
  }

  /** The state machine's bytes of a file that {@link #verify} accepted. */
  public static InputStream openData(Path file, Header header) throws IOException {
    long size = Files.size(file);
    InputStream raw = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
    long skipped = raw.skip(header.dataOffset());
    if (skipped != header.dataOffset()) {
      raw.close();
      throw new EOFException("snapshot " + file.getFileName() + " is shorter than its header");
    }
    return new BoundedInput(raw, size - HASH_BYTES - header.dataOffset());
  }

  /** Reads up to {@code max} bytes of {@code file} from {@code offset}. */
  public static byte[] readChunk(Path file, long offset, int max) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      long left = ch.size() - offset;
      int n = (int) Math.max(0, Math.min(max, left));
      java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate(n);
      while (buf.hasRemaining()) {
        if (ch.read(buf, offset + buf.position()) < 0) {
          throw new EOFException("snapshot " + file.getFileName() + " shrank while it was sent");
        }
      }
      return buf.array();
    }
  }

  /** Appends {@code data} to {@code file} at {@code offset} (truncating anything after it). */
  public static void writeChunk(Path file, long offset, byte[] data) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE, StandardOpenOption.CREATE)) {
      ch.truncate(offset);
      java.nio.ByteBuffer buf = java.nio.ByteBuffer.wrap(data);
      while (buf.hasRemaining()) {
        ch.write(buf, offset + buf.position());
      }
    }
  }

  /** fsyncs {@code tmp}, renames it to its snapshot name in {@code dir} and keeps the newest {@code keep}. */
  public static Path keep(Path tmp, Path dir, Header header, int keep) throws IOException {
    fsync(tmp);
    Path file = dir.resolve(String.format("snapshot-%020d-%020d%s", header.index(), header.term(), SUFFIX));
    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    fsyncDir(dir);
    prune(dir, keep);
    return file;
  }

  /** The snapshot files in {@code dir}, newest first. */
  public static List<Path> list(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    try (Stream<Path> files = Files.list(dir)) {
      return files.filter(f -> f.getFileName().toString().startsWith("snapshot-") && f.getFileName().toString().endsWith(SUFFIX))
          .sorted(Comparator.comparing((Path f) -> f.getFileName().toString()).reversed())
          .toList();
    }
  }

  private static void prune(Path dir, int keep) throws IOException {
    List<Path> files = list(dir);
    for (int i = keep; i < files.size(); i++) {
      Files.deleteIfExists(files.get(i));
    }
  }

  static void fsync(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      ch.force(true);
    }
  }

  static void fsyncDir(Path dir) {
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException e) {
      // not every file system lets a directory be opened for fsync; the rename is still atomic
    }
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("this JVM has no SHA-256", e);
    }
  }

  /** At most {@code left} bytes of the stream; the underlying stream is closed with it. */
  private static final class BoundedInput extends FilterInputStream {
    private long left;

    BoundedInput(InputStream in, long left) {
      super(in);
      this.left = left;
    }

    @Override
    public int read() throws IOException {
      if (left <= 0) {
        return -1;
      }
      int b = super.read();
      if (b >= 0) {
        left--;
      }
      return b;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (left <= 0) {
        return -1;
      }
      int n = super.read(b, off, (int) Math.min(len, left));
      if (n > 0) {
        left -= n;
      }
      return n;
    }

    @Override
    public long skip(long n) throws IOException {
      long s = super.skip(Math.min(n, left));
      left -= s;
      return s;
    }

    @Override
    public int available() throws IOException {
      return (int) Math.min(super.available(), left);
    }
  }

  /** Lets a DataOutputStream be used on a stream it must not close. */
  private static final class NonClosing extends java.io.FilterOutputStream {
    NonClosing(OutputStream out) {
      super(out);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      out.write(b, off, len);
    }

    @Override
    public void close() throws IOException {
      flush();
    }
  }
}
