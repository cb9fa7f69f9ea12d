package dev.turnout.bench;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import dev.turnout.Client;
import dev.turnout.Context;
import dev.turnout.Facets;
import dev.turnout.Turnout;
import dev.turnout.Variable;
import dev.turnout.ffi.FacetValue;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The shared scenario (tests/bench/scenario.json): the seed rollout over 1,000
 * pre-generated contexts, one benchmark invocation = one pass over them
 * (1,000 decisions, so JMH's score is per decision), default client options
 * (decision events on, repeats fold; the queue is drained between iterations,
 * outside the timing). Every path is checked against the expected sum first.
 *
 * <ul>
 *   <li>{@code prepared*}: a context per unit and the variable handle built once, then the int64 getter:
 *       through the facade (JNI), through the generated UniFFI API (JNA, RustBuffer-free but a call status
 *       Structure and handle clones per call), and the JNA direct-mapped C ABI getter {@code turnout_context_int64}
 *       over the fast handles ({@code fastHandle()}, ffi/src/fast.rs).
 *   <li>{@code oneShot*}: {@code getVariable(name, facets)} with the facets held as the language's natural
 *       form and converted on every call: the facade's {@code Facets} builder (JSON bytes, one JNI call), and
 *       the generated API's {@code Map<String, FacetValue>} (a RustBuffer each way).
 * </ul>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class ScenarioBench {
    /** JNA direct mapping of the C ABI's hot getter (Native.register: the fastest JNA call style). */
    public static final class JnaFast {
        static {
            Native.register(JnaFast.class, NativeLibrary.getInstance("turnout_ffi"));
        }

        public static native long turnout_context_int64(long ctx, long variable, long defaultValue);
    }

    static final int N = 1000;

    String variableName;
    long expectedSum;

    Client client;
    Variable variable;
    Context[] contexts;
    Facets[] facets;

    dev.turnout.ffi.Client genClient;
    dev.turnout.ffi.Variable genVariable;
    dev.turnout.ffi.Context[] genContexts;
    List<Map<String, FacetValue>> genFacets;

    long rawVariable;
    long[] rawContexts;

    @Setup
    public void setup() throws IOException {
        Path root = Path.of(System.getProperty("turnout.repo.root", "."));
        JsonObject scenario = JsonParser.parseString(Files.readString(root.resolve("tests/bench/scenario.json"))).getAsJsonObject();
        byte[] config = Files.readAllBytes(root.resolve(scenario.get("config").getAsString()));
        variableName = scenario.get("variable").getAsString();
        expectedSum = scenario.get("expectedSum").getAsLong();
        List<JsonObject> units = new ArrayList<>();
        for (JsonElement e : scenario.getAsJsonArray("contexts")) units.add(e.getAsJsonObject());
        if (units.size() != N) throw new IllegalStateException("scenario has " + units.size() + " contexts");

        client = Turnout.client(config);
        variable = client.variable(variableName);
        contexts = new Context[N];
        facets = new Facets[N];
        genClient = new dev.turnout.ffi.Client(config, "");
        genVariable = genClient.variable(variableName);
        genContexts = new dev.turnout.ffi.Context[N];
        genFacets = new ArrayList<>();
        rawContexts = new long[N];
        rawVariable = genVariable.fastHandle();
        for (int i = 0; i < N; i++) {
            JsonObject u = units.get(i);
            facets[i] = new Facets().city(u.get("city").getAsLong()).service(u.get("svc").getAsLong()).passenger(u.get("pax").getAsLong());
            contexts[i] = client.context(facets[i]);
            Map<String, FacetValue> m = new HashMap<>();
            m.put("city", new FacetValue.Int(u.get("city").getAsLong()));
            m.put("svc", new FacetValue.Int(u.get("svc").getAsLong()));
            m.put("pax", new FacetValue.Int(u.get("pax").getAsLong()));
            genFacets.add(m);
            genContexts[i] = genClient.context(m);
            rawContexts[i] = genContexts[i].fastHandle();
        }
        check("preparedJni", preparedJni());
        check("preparedUniffi", preparedUniffi());
        check("preparedJnaDirect", preparedJnaDirect());
        check("oneShotJni", oneShotJni());
        check("oneShotUniffi", oneShotUniffi());
        System.out.println("\n[turnout] fast path: " + Turnout.getFastPath() + ", JNA " + Native.class.getPackage().getImplementationVersion() + ", all paths sum to " + expectedSum);
    }

    private void check(String name, long sum) {
        if (sum != expectedSum) throw new IllegalStateException(name + ": one pass sums to " + sum + ", expected " + expectedSum);
    }

    /** Drains the event queues between iterations (outside the timing). */
    @Setup(Level.Iteration)
    public void drain() {
        dev.turnout.Batch b;
        while ((b = client.takeBatch(10_000)) != null) client.ack(b.getSeq());
        // The generated client's queue is not drained (its Kotlin signature uses unsigned types Java cannot
        // call): repeats fold into the same 1,000 events, so its queue never grows or drops either.
    }

    @TearDown
    public void close() {
        for (Context c : contexts) c.close();
        client.close();
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public long preparedJni() {
        long sum = 0;
        for (Context c : contexts) sum += c.int64(variable, 0L);
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public long preparedUniffi() {
        long sum = 0;
        for (dev.turnout.ffi.Context c : genContexts) sum += c.int64(genVariable, 0L);
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public long preparedJnaDirect() {
        long sum = 0;
        for (long c : rawContexts) sum += JnaFast.turnout_context_int64(c, rawVariable, 0L);
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public long oneShotJni() {
        long sum = 0;
        for (Facets f : facets) sum += client.getVariable(variableName, f).int64(0L);
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public long oneShotUniffi() {
        long sum = 0;
        for (Map<String, FacetValue> m : genFacets) {
            String v = genClient.getVariable(variableName, m).getValueJson();
            sum += v == null ? 0L : Long.parseLong(v);
        }
        return sum;
    }
}
