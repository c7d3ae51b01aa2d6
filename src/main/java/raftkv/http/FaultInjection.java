package raftkv.http;

import akka.actor.Address;
import akka.actor.typed.ActorSystem;
import akka.actor.typed.javadsl.Adapter;
import akka.http.javadsl.model.ContentTypes;
import akka.http.javadsl.model.HttpResponse;
import akka.http.javadsl.model.StatusCodes;
import akka.http.javadsl.server.AllDirectives;
import akka.http.javadsl.server.Route;
import akka.remote.RARP;
import akka.remote.transport.ThrottlerTransportAdapter;
import raftkv.node.NodeSettings;

import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * TEST ONLY: cuts this node off from chosen peers through Artery's test mode, for the multi-JVM
 * fault tests. Exists only when the node starts with {@code --fault-injection} (which also turns
 * on {@code akka.remote.artery.advanced.test-mode}); off by default.
 *
 * <pre>
 * POST /v1/faults/blackhole?peer=HOST:RAFTPORT   drop everything to and from that peer
 * POST /v1/faults/heal?peer=HOST:RAFTPORT        undo it (no peer: undo every cut)
 * </pre>
 */
final class FaultInjection extends AllDirectives {
  private final ActorSystem<?> system;
  private final Set<String> cut = new TreeSet<>();

  FaultInjection(ActorSystem<?> system) {
    this.system = system;
  }

  static boolean enabled(ActorSystem<?> system) {
    return system.settings().config().getBoolean("raftkv.test.fault-injection");
  }

  Route route() {
    return pathPrefix("v1", () -> pathPrefix("faults", () -> post(() -> concat(
        path("blackhole", () -> parameter("peer", peer -> onSuccess(
            throttle(peer, ThrottlerTransportAdapter.blackholeThrottleMode()), done -> {
              synchronized (cut) {
                cut.add(peer);
              }
              return json("{\"blackholed\":\"" + peer + "\"}");
            }))),
        path("heal", () -> parameterOptional("peer", peer -> {
          Set<String> targets;
          synchronized (cut) {
            targets = peer.map(Set::of).orElseGet(() -> Set.copyOf(cut));
          }
          CompletableFuture<?>[] all = targets.stream()
              .map(p -> throttle(p, ThrottlerTransportAdapter.unthrottledThrottleMode()).toCompletableFuture())
              .toArray(CompletableFuture[]::new);
          return onSuccess(CompletableFuture.allOf(all), done -> {
            synchronized (cut) {
              cut.removeAll(targets);
            }
            return json("{\"healed\":" + targets.size() + "}");
          });
        }))))));
  }

  private CompletionStage<Object> throttle(String peer, ThrottlerTransportAdapter.ThrottleMode mode) {
    int colon = peer.lastIndexOf(':');
    if (colon <= 0) {
      return CompletableFuture.failedFuture(new IllegalArgumentException("peer must be host:port"));
    }
    Address address = new Address("akka", NodeSettings.SYSTEM_NAME, peer.substring(0, colon),
        Integer.parseInt(peer.substring(colon + 1)));
    RARP rarp = (RARP) RARP.get(Adapter.toClassic(system));
    return scala.jdk.javaapi.FutureConverters.asJava(rarp.provider().transport().managementCommand(
        new ThrottlerTransportAdapter.SetThrottle(address, ThrottlerTransportAdapter.bothDirection(), mode)));
  }

  private Route json(String body) {
    return complete(HttpResponse.create().withStatus(StatusCodes.OK).withEntity(ContentTypes.APPLICATION_JSON, body));
  }
}
