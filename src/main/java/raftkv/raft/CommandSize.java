package raftkv.raft;

import raftkv.kv.Compare;
import raftkv.kv.KvCommand;
import raftkv.kv.TxnOp;

/** Approximate wire size of a command, for batching decisions; exactness does not matter. */
final class CommandSize {
  private CommandSize() {}

  static int of(KvCommand command) {
    if (command instanceof KvCommand.Put p) {
      return p.key().length() + len(p.value());
    } else if (command instanceof KvCommand.Delete d) {
      return d.key().length();
    } else if (command instanceof KvCommand.Txn t) {
      int n = 0;
      for (Compare c : t.compare()) {
        n += 32 + c.key().length() + len(c.value());
      }
      for (TxnOp op : t.success()) {
        n += of(op);
      }
      for (TxnOp op : t.failure()) {
        n += of(op);
      }
      return n;
    }
    return 64;
  }

  private static int of(TxnOp op) {
    if (op instanceof TxnOp.Put p) {
      return 16 + p.key().length() + len(p.value());
    } else if (op instanceof TxnOp.Get g) {
      return 16 + g.key().length();
    } else if (op instanceof TxnOp.Delete d) {
      return 16 + d.key().length();
    }
    return 16;
  }

  private static int len(byte[] b) {
    return b == null ? 0 : b.length;
  }
}
