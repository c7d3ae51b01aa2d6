package raftkv.raft;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The size bounds must fit together: the largest command in one AppendEntries, every
 * AppendEntries in one Artery frame. A configuration where they do not is refused at start, with
 * one line that names the keys.
 */
class RaftSettingsTest {

  private static RaftSettings load(String overrides) {
    Config config = ConfigFactory.parseString(overrides).withFallback(ConfigFactory.load()).resolve();
    return RaftSettings.fromConfig(config);
  }

  @Test
  void the_defaults_fit_together() {
    RaftSettings s = assertDoesNotThrow(() -> load(""));
    assertEquals(1028 * 1024, s.maxCommandBytes());
    assertEquals(1536 * 1024, s.maxBytesPerAppend());
    assertEquals(2 * 1024 * 1024, s.maximumFrameSize());
  }

  @Test
  void a_command_larger_than_one_append_entries_can_carry_is_refused_at_start() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> load("raftkv.raft.max-command-bytes = 1536 KiB"));
    assertTrue(e.getMessage().contains("raftkv.raft.max-bytes-per-append") && e.getMessage().contains("max-command-bytes"),
        e.getMessage());
    assertTrue(!e.getMessage().contains("\n"), "one line");
  }

  @Test
  void an_append_entries_larger_than_the_frame_is_refused_at_start() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> load("akka.remote.artery.advanced.maximum-frame-size = 1536 KiB"));
    assertTrue(e.getMessage().contains("akka.remote.artery.advanced.maximum-frame-size")
        && e.getMessage().contains("raftkv.raft.max-bytes-per-append"), e.getMessage());
  }

  @Test
  void larger_limits_are_fine_when_raised_together() {
    RaftSettings s = assertDoesNotThrow(() -> load("""
        raftkv.raft.max-command-bytes = 4 MiB
        raftkv.raft.max-bytes-per-append = 5 MiB
        akka.remote.artery.advanced.maximum-frame-size = 6 MiB
        """));
    assertEquals(4 * 1024 * 1024, s.maxCommandBytes());
  }

  @Test
  void the_other_bounds_are_still_checked() {
    assertThrows(IllegalArgumentException.class, () -> load("raftkv.raft.max-command-bytes = 100"));
    assertThrows(IllegalArgumentException.class, () -> load("raftkv.raft.max-entries-per-append = 0"));
    assertThrows(IllegalArgumentException.class, () -> load("raftkv.raft.election-timeout = 200ms"));
  }

  @Test
  void a_node_whose_id_and_address_would_crowd_out_the_largest_command_is_refused() {
    assertDoesNotThrow(() -> RaftSettings.checkIdentity("n".repeat(64), "h".repeat(253) + ":65535"));
    assertThrows(IllegalArgumentException.class, () -> RaftSettings.checkIdentity("n".repeat(5000), "127.0.0.1:8080"));
  }
}
