package raftkv.cluster;

import akka.actor.testkit.typed.javadsl.FishingOutcomes;
import akka.actor.testkit.typed.javadsl.TestProbe;
import akka.actor.typed.ActorRef;
import akka.actor.typed.ActorRefResolver;
import akka.actor.typed.ActorSystem;
import akka.actor.typed.Behavior;
import akka.actor.typed.Props;
import akka.actor.typed.eventstream.EventStream;
import akka.actor.typed.javadsl.Behaviors;
import akka.actor.DeadLetter;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import raftkv.node.NodeSettings;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A node's peers address its Raft actor by path ({@code akka://raftkv@host:port/system/raftkv},
 * no actor UID), and a restarted node receives their messages before that actor exists. Those
 * early messages must not poison what comes after: with Artery's actor-ref compression on, the
 * restarted node counted the dead-letter ref of the not-yet-started actor as a heavy hitter,
 * advertised it to the sender a minute later, and from then on every message of that sender to
 * the Raft actor was decompressed into dead letters, for good (a one-way partition that no log
 * showed; MixedFaultsIT caught it). reference.conf turns actor-ref compression off; this test
 * runs with reference.conf and a short advertisement interval, so that a regression shows in
 * seconds instead of a minute.
 */
class LateStartedPeerTest {
  private static final Duration ADVERTISEMENT = Duration.ofMillis(200);
  private final List<ActorSystem<?>> systems = new ArrayList<>();

  @AfterEach
  void tearDown() throws Exception {
    for (ActorSystem<?> system : systems) {
      system.terminate();
    }
    for (ActorSystem<?> system : systems) {
      system.getWhenTerminated().toCompletableFuture().get(20, TimeUnit.SECONDS);
    }
  }

  private ActorSystem<Void> system() {
    Config config = ConfigFactory.parseString("""
            akka.remote.artery.canonical.hostname = "127.0.0.1"
            akka.remote.artery.canonical.port = 0
            akka.remote.artery.advanced.compression.actor-refs.advertisement-interval = %1$dms
            akka.remote.artery.advanced.compression.manifests.advertisement-interval = %1$dms
            akka.loglevel = WARNING
            akka.coordinated-shutdown.run-by-jvm-shutdown-hook = off
            """.formatted(ADVERTISEMENT.toMillis()))
        .withFallback(ConfigFactory.load());
    ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), NodeSettings.SYSTEM_NAME, config);
    systems.add(system);
    return system;
  }

  /** Sends "0", "1", "2", ... to {@code target}, one every 20 ms. */
  private static Behavior<String> ticker(ActorRef<String> target) {
    return Behaviors.withTimers(timers -> {
      timers.startTimerWithFixedDelay("tick", "tick", Duration.ofMillis(20));
      long[] next = {0};
      return Behaviors.receiveMessage(tick -> {
        target.tell(Long.toString(next[0]++));
        return Behaviors.same();
      });
    });
  }

  @Test
  void anActorThatStartsAfterItsPeerBeganSendingGetsEveryLaterMessageAcrossAdvertisements() {
    ActorSystem<Void> restarted = system();
    ActorSystem<Void> peer = system();
    String path = restarted.address() + "/system/raftkv-target";

    // the peer resolves the target by path, as RaftState resolves its peers, and starts sending
    ActorRef<String> byPath = ActorRefResolver.get(peer).resolveActorRef(path);
    TestProbe<DeadLetter> deadLetters = TestProbe.create(restarted);
    restarted.eventStream().tell(new EventStream.Subscribe<>(DeadLetter.class, deadLetters.ref()));
    peer.systemActorOf(ticker(byPath), "ticker", Props.empty());
    // one of the peer's messages reached the restarted node before the target exists (the cluster
    // daemons' own dead letters do not count: they would let the target start too early)
    deadLetters.fishForMessage(Duration.ofSeconds(20), "a peer's message in dead letters", d ->
        d.message() instanceof String ? FishingOutcomes.complete() : FishingOutcomes.continueAndIgnore());

    // now the target starts
    TestProbe<String> received = TestProbe.create(restarted);
    restarted.systemActorOf(Behaviors.<String>receiveMessage(m -> {
      received.ref().tell(m);
      return Behaviors.same();
    }), "raftkv-target", Props.empty());

    // every message from the first one it gets on, in order, for 15 advertisement intervals
    long first = Long.parseLong(received.receiveMessage(Duration.ofSeconds(10)));
    long last = first + 15 * ADVERTISEMENT.toMillis() / 20;
    long[] expected = {first + 1};
    received.fishForMessage(Duration.ofSeconds(20), "messages " + (first + 1) + ".." + last + " in order", m -> {
      assertEquals(expected[0]++, Long.parseLong(m), "the next message from the peer");
      return Long.parseLong(m) >= last ? FishingOutcomes.complete() : FishingOutcomes.continueAndIgnore();
    });
  }
}
