package oms.example;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Places one order from outside the OMS and follows it on {@code oms.orders.events} alone until its outcome.
 *
 * <pre>
 * java -jar target/place-order.jar [--order-id ID] [--token tok_ok_visa] [--bootstrap 127.0.0.1:9092]
 *     [--registry http://127.0.0.1:8081/apis/ccompat/v7] [--timeout-s 120]
 * </pre>
 *
 * <p>What a partner needs (docs/producing.md): the key is the order id; the value is Avro in the Confluent wire
 * format (magic byte 0, the schema's 4-byte id, the body) written with the schema the registry has for the
 * subject {@code <topic>-<record full name>}; {@code event_id} is a fresh UUID; CloudEvents headers name the
 * record's type. Following reads committed records only and dispatches on the {@code ce_type} header; the
 * outcome's body is decoded with the schema its id names.
 *
 * <p>Prints one line per event of the order, then the outcome's type and fields; exits 0 once an outcome
 * arrives, 2 if none does in time.
 */
public final class PlaceAndFollow {
  static final String COMMANDS = "oms.orders.commands";
  static final String EVENTS = "oms.orders.events";
  static final String PLACE_ORDER = "oms.orders.PlaceOrder";
  /** The CloudEvents types with which an order's story ends on the orders topic. */
  static final Set<String> OUTCOMES =
      Set.of("oms.OrderDelivered", "oms.OrderRejected", "oms.OrderCancelled", "oms.OrderFailed");

  public static void main(String[] args) throws Exception {
    Map<String, String> options = options(args);
    String orderId = options.getOrDefault("order-id", "java-" + UUID.randomUUID().toString().substring(0, 10));
    String bootstrap = options.getOrDefault("bootstrap", "127.0.0.1:9092");
    Registry registry = new Registry(options.getOrDefault("registry", "http://127.0.0.1:8081/apis/ccompat/v7"));
    Duration timeout = Duration.ofSeconds(Long.parseLong(options.getOrDefault("timeout-s", "120")));

    try (KafkaConsumer<String, byte[]> follower = follower(bootstrap)) {
      // Positioned at the end before the order is sent, so that no earlier record is read and none of this
      // order's is missed.
      List<TopicPartition> partitions = new ArrayList<>();
      follower.partitionsFor(EVENTS).forEach(p -> partitions.add(new TopicPartition(EVENTS, p.partition())));
      follower.assign(partitions);
      follower.seekToEnd(partitions);
      partitions.forEach(follower::position);

      place(bootstrap, registry, orderId, options.getOrDefault("token", "tok_ok_visa"));
      System.out.println("placed " + orderId);
      System.exit(follow(follower, registry, orderId, timeout) ? 0 : 2);
    }
  }

  static void place(String bootstrap, Registry registry, String orderId, String token) throws Exception {
    Registry.Registered registered = registry.latest(COMMANDS + "-" + PLACE_ORDER);
    GenericRecord order = placeOrder(registered.schema(), orderId, token);
    Properties config = new Properties();
    config.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    config.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
    config.put(ProducerConfig.ACKS_CONFIG, "all");
    try (KafkaProducer<String, byte[]> producer =
        new KafkaProducer<>(config, new StringSerializer(), new ByteArraySerializer())) {
      // Java's default partitioner hashes the key with murmur2, as every OMS producer does.
      ProducerRecord<String, byte[]> record =
          new ProducerRecord<>(COMMANDS, orderId, wireFormat(registered.id(), order));
      String eventId = order.get("event_id").toString();
      record.headers()
          .add("ce_specversion", bytes("1.0"))
          .add("ce_id", bytes(eventId))
          .add("ce_type", bytes("oms.PlaceOrder"))
          .add("ce_source", bytes("example.java-shop"))
          .add("ce_subject", bytes(orderId))
          .add("content-type", bytes("application/avro"));
      producer.send(record).get();
    }
  }

  /** A PlaceOrder intake accepts: two mugs and a tea, paid with {@code token}, shipped to Berlin. */
  static GenericRecord placeOrder(Schema schema, String orderId, String token) {
    GenericRecord order = new GenericData.Record(schema);
    order.put("event_id", UUID.randomUUID().toString());
    order.put("order_id", orderId);
    order.put("occurred_at", Instant.now().toEpochMilli());
    order.put("customer_id", "c-java");
    order.put("customer_email", "grace@example.com");
    Schema lineSchema = schema.getField("lines").schema().getElementType();
    order.put("lines", List.of(line(lineSchema, "SKU-MUG-01", 2, 1250), line(lineSchema, "SKU-TEA-01", 1, 500)));
    GenericRecord address = new GenericData.Record(schema.getField("shipping_address").schema());
    address.put("recipient", "Grace Hopper");
    address.put("line1", "2 Compiler Street");
    address.put("line2", null);
    address.put("city", "Berlin");
    address.put("postal_code", "10115");
    address.put("country", "DE");
    order.put("shipping_address", address);
    Schema tenderSchema = schema.getField("tenders").schema().getElementType();
    GenericRecord tender = new GenericData.Record(tenderSchema);
    tender.put("method", new GenericData.EnumSymbol(tenderSchema.getField("method").schema(), "CARD"));
    tender.put("token", token);
    tender.put("amount", money(tenderSchema.getField("amount").schema(), 3000));
    order.put("tenders", List.of(tender));
    order.put("priority", new GenericData.EnumSymbol(schema.getField("priority").schema(), "STANDARD"));
    order.put("is_gift", false);
    return order;
  }

  static GenericRecord line(Schema schema, String sku, int quantity, long unitPriceMinor) {
    GenericRecord line = new GenericData.Record(schema);
    line.put("sku", sku);
    line.put("quantity", quantity);
    line.put("unit_price", money(schema.getField("unit_price").schema(), unitPriceMinor));
    return line;
  }

  static GenericRecord money(Schema schema, long amountMinor) {
    GenericRecord money = new GenericData.Record(schema);
    money.put("amount_minor", amountMinor);
    money.put("currency", "EUR");
    return money;
  }

  static KafkaConsumer<String, byte[]> follower(String bootstrap) {
    Properties config = new Properties();
    config.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    // The OMS writes in transactions: only what a transaction committed has happened.
    config.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    config.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    return new KafkaConsumer<>(config, new StringDeserializer(), new ByteArrayDeserializer());
  }

  /** Prints the order's events as they come; true once its outcome has arrived. */
  static boolean follow(KafkaConsumer<String, byte[]> follower, Registry registry, String orderId, Duration timeout)
      throws Exception {
    Instant deadline = Instant.now().plus(timeout);
    while (Instant.now().isBefore(deadline)) {
      for (ConsumerRecord<String, byte[]> record : follower.poll(Duration.ofMillis(500))) {
        if (!orderId.equals(record.key())) {
          continue;
        }
        String type = header(record, "ce_type");
        System.out.println("event " + type);
        if (OUTCOMES.contains(type)) {
          System.out.println("outcome " + type + " " + registry.decode(record.value()));
          return true;
        }
      }
    }
    System.out.println("no outcome for " + orderId + " within " + timeout.toSeconds() + " s");
    return false;
  }

  static byte[] wireFormat(int schemaId, GenericRecord record) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.write(0);
    out.write(ByteBuffer.allocate(4).putInt(schemaId).array());
    BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(out, null);
    new GenericDatumWriter<GenericRecord>(record.getSchema()).write(record, encoder);
    encoder.flush();
    return out.toByteArray();
  }

  static String header(ConsumerRecord<String, byte[]> record, String name) {
    Header header = record.headers().lastHeader(name);
    return header == null ? "" : new String(header.value(), StandardCharsets.UTF_8);
  }

  static byte[] bytes(String text) {
    return text.getBytes(StandardCharsets.UTF_8);
  }

  static Map<String, String> options(String[] args) {
    Map<String, String> options = new HashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      if (!args[i].startsWith("--")) {
        throw new IllegalArgumentException("expected --name value pairs, got " + args[i]);
      }
      options.put(args[i].substring(2), args[i + 1]);
    }
    return options;
  }

  /** The schema registry's Confluent-compatible HTTP API: schemas by subject and by id. */
  static final class Registry {
    record Registered(int id, Schema schema) {}

    private final String url;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final ObjectMapper json = new ObjectMapper();
    private final Map<Integer, Schema> byId = new HashMap<>();

    Registry(String url) {
      this.url = url.replaceAll("/+$", "");
    }

    /** The subject's latest version: a producer writes with what the registry has and never registers. */
    Registered latest(String subject) throws Exception {
      JsonNode version = get("/subjects/" + URLEncoder.encode(subject, StandardCharsets.UTF_8) + "/versions/latest");
      return new Registered(version.get("id").asInt(), new Schema.Parser().parse(version.get("schema").asText()));
    }

    /** A record in the wire format, as JSON, read with the schema its id names. */
    String decode(byte[] value) throws Exception {
      ByteBuffer buffer = ByteBuffer.wrap(value);
      if (buffer.get() != 0) {
        throw new IOException("not the Confluent wire format");
      }
      int id = buffer.getInt();
      Schema schema = byId.get(id);
      if (schema == null) {
        schema = new Schema.Parser().parse(get("/schemas/ids/" + id).get("schema").asText());
        byId.put(id, schema);
      }
      GenericRecord record =
          new GenericDatumReader<GenericRecord>(schema)
              .read(null, DecoderFactory.get().binaryDecoder(value, 5, value.length - 5, null));
      return record.toString();
    }

    private JsonNode get(String path) throws Exception {
      HttpRequest request =
          HttpRequest.newBuilder(URI.create(url + path)).timeout(Duration.ofSeconds(10)).GET().build();
      HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
      if (response.statusCode() != 200) {
        throw new IOException("the registry answered " + response.statusCode() + " to " + path + ": "
            + response.body());
      }
      return json.readTree(response.body());
    }
  }
}
