package raftkv.node;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * Tells a write that a crash cut short from a damaged journal, by reading LevelDB's write-ahead
 * logs ({@code NNNNNN.log}: 32 KiB blocks of records, each a 7-byte header of masked CRC32C,
 * length and type, then the payload).
 *
 * <p>A node killed while LevelDB appends a record leaves that record unfinished at the end of the
 * newest log: the bytes written before the kill, then nothing (or zeros, since LevelDB 1.8 maps
 * the file in growing regions). That record was never acknowledged, since the write returns only
 * after the whole record is on disk and synced; LevelDB's ordinary recovery drops it, but with
 * paranoid checks (which {@link DataDir} uses to find real damage before the node starts) it
 * refuses the whole journal. Anything else (a bad record followed by data, a bad record in an
 * older log) is damage, and the node must not start on it.
 */
final class LevelDbLogTail {
  private static final int BLOCK = 32 * 1024;
  private static final int HEADER = 7;
  private static final int MASK_DELTA = 0xa282ead8;

  private LevelDbLogTail() {}

  /**
   * True when every log in {@code journal} reads cleanly except for one unfinished record at the
   * end of the newest, after which the file holds only zeros (or ends).
   */
  static boolean onlyAnUnfinishedWriteAtTheEnd(Path journal) throws IOException {
    List<Path> logs;
    try (var files = Files.list(journal)) {
      logs = files.filter(p -> p.getFileName().toString().matches("\\d+\\.log")).sorted().toList();
    }
    if (logs.isEmpty()) {
      return false;
    }
    for (int i = 0; i < logs.size(); i++) {
      byte[] log = Files.readAllBytes(logs.get(i));
      long firstBad = firstBadRecord(log);
      boolean newest = i == logs.size() - 1;
      if (firstBad >= 0 && (!newest || !zerosAfterBlockOf(log, firstBad))) {
        return false;
      }
    }
    return true;
  }

  /** The offset of the first record whose header or checksum is wrong, or -1 when all are right. */
  static long firstBadRecord(byte[] log) {
    ByteBuffer b = ByteBuffer.wrap(log).order(ByteOrder.LITTLE_ENDIAN);
    int off = 0;
    while (off < log.length) {
      int leftInBlock = BLOCK - off % BLOCK;
      if (leftInBlock < HEADER) {
        off += leftInBlock; // a block's trailer, zeros
        continue;
      }
      if (off + HEADER > log.length) {
        return allZero(log, off, log.length) ? -1 : off;
      }
      int crc = b.getInt(off);
      int length = b.getShort(off + 4) & 0xFFFF;
      int type = log[off + 6] & 0xFF;
      if (crc == 0 && length == 0 && type == 0) {
        // LevelDB's mapped file grows in zeroed regions: a zero header ends what was written
        return allZero(log, off, log.length) ? -1 : off;
      }
      if (type < 1 || type > 4 || HEADER + length > leftInBlock || off + HEADER + length > log.length
          || unmask(crc) != crc(log, off + 6, 1 + length)) {
        return off;
      }
      off += HEADER + length;
    }
    return -1;
  }

  private static boolean zerosAfterBlockOf(byte[] log, long offset) {
    long blockEnd = Math.min(log.length, (offset / BLOCK + 1) * BLOCK);
    return allZero(log, (int) blockEnd, log.length);
  }

  private static boolean allZero(byte[] bytes, int from, int to) {
    for (int i = from; i < to; i++) {
      if (bytes[i] != 0) {
        return false;
      }
    }
    return true;
  }

  private static int crc(byte[] bytes, int from, int length) {
    CRC32C crc = new CRC32C();
    crc.update(bytes, from, length);
    return (int) crc.getValue();
  }

  private static int unmask(int masked) {
    int rot = masked - MASK_DELTA;
    return (rot >>> 17) | (rot << 15);
  }
}
