package wirecore;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A plain Java caller of the blocking API (no coroutines). */
class JavaBlockingTest {
    @Test
    void javaCallsTheBlockingApi() throws Exception {
        try (TestServer srv = TestServer.Companion.start()) {
            String base = srv.url("http");
            try (Client client = new Client("{\"pool\": {\"max_idle_per_host\": 4}}")) {
                Response r = client.requestBlocking("GET", base + "/bytes/100", List.of(new Header("x-from", "java")), null, null);
                assertEquals(200, r.status());
                assertEquals(100, r.bytesBlocking().length);

                RequestOptions opts = new RequestOptions(null, null, null, null, true, null, null, null, null, null, null, null, null, null);
                Response echo = client.requestBlocking(
                        "PUT", base + "/echo", List.of(), "hello".getBytes(StandardCharsets.UTF_8), opts);
                String text = new String(echo.bytesBlocking(), StandardCharsets.UTF_8);
                assertTrue(text.contains("\"method\":\"PUT\""), text);

                WirecoreException.Timeout e = assertThrows(WirecoreException.Timeout.class, () -> client.requestBlocking(
                        "GET", base + "/hang", List.of(), null,
                        new RequestOptions(100L, null, null, null, null, null, null, null, null, null, null, null, null, null)));
                assertEquals("timeout.total", e.getCode());

                client.closeBlocking(5000);
                WirecoreException.Closed closed = assertThrows(WirecoreException.Closed.class,
                        () -> client.requestBlocking("GET", base + "/bytes/1", List.of(), null, null));
                assertEquals("closed", closed.getCode());
            }
        }
    }
}
