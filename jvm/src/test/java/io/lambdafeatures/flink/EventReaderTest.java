package io.lambdafeatures.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.types.logical.BigIntType;
import org.apache.flink.table.types.logical.BooleanType;
import org.apache.flink.table.types.logical.DoubleType;
import org.apache.flink.table.types.logical.LocalZonedTimestampType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.VarCharType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Each decision of the format: the reasons, UTF-8, numbers as strings, huge numbers, nesting, duplicate keys. */
class EventReaderTest {
    static final long NOW = 1_700_000_123_456L; // the clock; the rules read it in whole seconds
    static final long MIN = 1_000_000_000_000L;
    static final long FUTURE = 3_600_000L;
    static final long T = 1_700_000_000_000L;
    // as streaming/job.py writes them from features/events.py
    static final String RULES = "[{\"reason\": \"missing user_id\", \"field\": \"user_id\", \"test\": \"missing\"},"
            + "{\"reason\": \"missing event_time\", \"field\": \"event_time\", \"test\": \"missing\"},"
            + "{\"reason\": \"missing event_type\", \"field\": \"event_type\", \"test\": \"missing\"},"
            + "{\"reason\": \"unknown event_type\", \"field\": \"event_type\", \"test\": \"one_of\", \"values\": [\"click\", \"cart\"]},"
            + "{\"reason\": \"negative price\", \"field\": \"price\", \"test\": \"negative\"},"
            + "{\"reason\": \"event_time out of range\", \"field\": \"event_time\", \"test\": \"time_range\", \"min_ms\": "
            + MIN + ", \"future_ms\": " + FUTURE + "}]";
    static final String TYPE_ERRORS = "{\"user_id\": \"user_id not an integer\", \"item_id\": \"item_id not an integer\","
            + " \"price\": \"price not a number\", \"event_time\": \"event_time not an integer\","
            + " \"gift\": \"gift not a boolean\"}";
    static final String[] NAMES = {"event_id", "user_id", "item_id", "brand", "price", "event_type", "event_time", "gift",
        "reason", "raw", "ts"};
    static final LogicalType[] TYPES = {new VarCharType(VarCharType.MAX_LENGTH), new BigIntType(), new BigIntType(),
        new VarCharType(VarCharType.MAX_LENGTH), new DoubleType(), new VarCharType(VarCharType.MAX_LENGTH),
        new BigIntType(), new BooleanType(), new VarCharType(VarCharType.MAX_LENGTH),
        new VarCharType(VarCharType.MAX_LENGTH), new LocalZonedTimestampType(3)};
    static final int ID = 0, USER = 1, ITEM = 2, BRAND = 3, PRICE = 4, TYPE = 5, TIME = 6, GIFT = 7, REASON = 8, RAW = 9,
        TS = 10;

    static EventLayout layout(int rawChars) {
        return new EventLayout(RowType.of(TYPES, NAMES), RULES, TYPE_ERRORS, "event_time", rawChars, "empty record",
                "not UTF-8", "malformed JSON");
    }

    final EventReader reader = new EventReader(layout(20), () -> NOW);

    GenericRowData read(String json) {
        return reader.read(json.getBytes(StandardCharsets.UTF_8));
    }

    /** A good event with these fields changed (their JSON text appended: the last key counts). */
    GenericRowData event(String more) {
        return read("{\"event_id\": \"e1\", \"user_id\": 7, \"event_type\": \"click\", \"event_time\": " + T + more + "}");
    }

    static String reason(GenericRowData row) {
        return row.isNullAt(REASON) ? null : row.getString(REASON).toString();
    }

    static long rowtime(GenericRowData row) {
        return row.getTimestamp(TS, 3).getMillisecond();
    }

    @Test
    void anAcceptedEventIsTypedWithItsEventTime() {
        GenericRowData row = event(", \"item_id\": 3, \"brand\": \"acme\", \"price\": 12.5, \"gift\": true, \"x\": 1");
        assertNull(reason(row));
        assertEquals("e1", row.getString(ID).toString());
        assertEquals(7L, row.getLong(USER));
        assertEquals(3L, row.getLong(ITEM));
        assertEquals("acme", row.getString(BRAND).toString());
        assertEquals(12.5, row.getDouble(PRICE));
        assertEquals("click", row.getString(TYPE).toString());
        assertEquals(T, row.getLong(TIME));
        assertTrue(row.getBoolean(GIFT));
        assertTrue(row.isNullAt(RAW));
        assertEquals(T, rowtime(row));
    }

    @Test
    void absentAndNullFieldsAreNull() {
        GenericRowData row = event(", \"brand\": null, \"price\": null");
        assertNull(reason(row));
        assertTrue(row.isNullAt(ITEM) && row.isNullAt(BRAND) && row.isNullAt(PRICE) && row.isNullAt(GIFT));
    }

    @Test
    void aRecordWithoutValueIsEmpty() {
        GenericRowData row = reader.read(null);
        assertEquals("empty record", reason(row));
        assertTrue(row.isNullAt(RAW) && row.isNullAt(USER));
        assertEquals(0L, rowtime(row));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "this is not json", "{\"user_id\": 5, \"event_ti", "[1, 2, 3]", "\"text\"", "42", "null",
        "{\"user_id\": 5} trailing", "{} {}", "{\"a\": 1,}", "{'a': 1}", "{\"a\": NaN}", "  "})
    void whatIsNotOneJsonObjectIsMalformed(String text) {
        GenericRowData row = read(text);
        assertEquals("malformed JSON", reason(row));
        assertEquals(text.length() > 20 ? text.substring(0, 20) : text, row.getString(RAW).toString());
        assertTrue(row.isNullAt(USER));
        assertEquals(0L, rowtime(row));
    }

    @Test
    void utf16IsMalformedNotReadAsJson() {
        byte[] utf16 = ("{\"user_id\": 7, \"event_type\": \"click\", \"event_time\": " + T + "}")
                .getBytes(StandardCharsets.UTF_16LE);
        assertEquals("malformed JSON", reason(reader.read(utf16)));
    }

    @ParameterizedTest
    @CsvSource({
        "ff fe", // bytes that never start a character
        "c0 af", // an overlong '/'
        "ed a0 80", // a surrogate, which UTF-8 may not carry
        "e2 82", // a character cut short
        "f4 90 80 80", // above U+10FFFF
    })
    void invalidUtf8IsNotUtf8(String hex) {
        byte[] bad = bytes(hex);
        byte[] message = concat("{\"user_id\": 1, \"brand\": \"".getBytes(StandardCharsets.UTF_8), bad,
                "\", \"event_type\": \"click\", \"event_time\": 1}".getBytes(StandardCharsets.UTF_8));
        GenericRowData row = reader.read(message);
        assertEquals("not UTF-8", reason(row));
        assertTrue(row.getString(RAW).toString().startsWith("{\"user_id\": 1, \"bra"));
        assertTrue(row.isNullAt(USER));
    }

    @Test
    void multiByteCharactersAreRead() {
        GenericRowData row = event(", \"brand\": \"Café 😀 ü\"");
        assertNull(reason(row));
        assertEquals("Café 😀 ü", row.getString(BRAND).toString());
    }

    @Test
    void theRawTextIsCutAtCharactersNotBytes() {
        String text = "😀".repeat(30); // 30 characters, each two UTF-16 units and four bytes
        GenericRowData row = read(text);
        assertEquals("malformed JSON", reason(row));
        assertEquals("😀".repeat(20), row.getString(RAW).toString());
    }

    @Test
    void numbersAsStringsAreTheirNumbers() {
        GenericRowData row = read("{\"user_id\": \"42\", \"item_id\": \" 9 \", \"price\": \"12.50\", \"event_type\": \"cart\","
                + " \"event_time\": \"" + T + "\", \"gift\": \"yes\"}");
        assertNull(reason(row));
        assertEquals(42L, row.getLong(USER));
        assertEquals(9L, row.getLong(ITEM));
        assertEquals(12.5, row.getDouble(PRICE));
        assertEquals(T, row.getLong(TIME));
        assertTrue(row.getBoolean(GIFT));
        assertEquals(T, rowtime(row));
    }

    @Test
    void aNumberInAStringFieldIsItsText() {
        GenericRowData row = event(", \"event_id\": 123, \"brand\": 1.5");
        assertEquals("123", row.getString(ID).toString());
        assertEquals("1.5", row.getString(BRAND).toString());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "\"user_id\": 123456789012345678901234567890|user_id not an integer",
        "\"user_id\": \"99999999999999999999\"|user_id not an integer",
        "\"user_id\": 9223372036854775808|user_id not an integer",
        "\"user_id\": \"abc\"|user_id not an integer",
        "\"user_id\": true|user_id not an integer",
        "\"user_id\": 1e30|user_id not an integer",
        "\"event_time\": \"yesterday\"|event_time not an integer",
        "\"price\": \"free\"|price not a number",
        "\"price\": [1]|price not a number",
        "\"gift\": \"maybe\"|gift not a boolean",
        "\"gift\": 2|gift not a boolean",
    })
    void aFieldOfTheWrongTypeIsNamed(String field, String expected) {
        GenericRowData row = event(", " + field);
        assertEquals(expected, reason(row));
        assertEquals(0L, rowtime(row));
    }

    @Test
    void hugeNumbersWithinTheirTypeAreRead() {
        GenericRowData row = event(", \"item_id\": 9223372036854775807, \"price\": 1e300");
        assertNull(reason(row));
        assertEquals(Long.MAX_VALUE, row.getLong(ITEM));
        assertEquals(1e300, row.getDouble(PRICE));
    }

    @Test
    void nestedValues() {
        // an object where a number belongs is a type error
        assertEquals("user_id not an integer", reason(event(", \"user_id\": {\"id\": 1}")));
        assertEquals("item_id not an integer", reason(event(", \"item_id\": [1]")));
        // in a text field, its JSON text
        GenericRowData row = event(", \"brand\": {\"a\": [1, {\"b\": null}]}");
        assertNull(reason(row));
        assertEquals("{\"a\":[1,{\"b\":null}]}", row.getString(BRAND).toString());
        // unknown fields, however deep, are skipped
        row = event(", \"extra\": {\"user_id\": \"x\", \"deep\": [[{\"price\": -1}]]}");
        assertNull(reason(row));
        assertEquals(7L, row.getLong(USER));
    }

    @Test
    void ofDuplicateKeysTheLastCounts() {
        GenericRowData row = read("{\"user_id\": \"abc\", \"user_id\": 5, \"event_type\": \"click\", \"event_time\": " + T + "}");
        assertNull(reason(row));
        assertEquals(5L, row.getLong(USER));
        assertEquals("user_id not an integer", reason(event(", \"user_id\": \"abc\"")));
        assertTrue(event(", \"brand\": \"a\", \"brand\": null").isNullAt(BRAND));
    }

    @Test
    void theFirstWrongFieldInColumnOrderIsReportedAndTheOthersStayTyped() {
        GenericRowData row = read("{\"price\": \"free\", \"user_id\": \"x\", \"item_id\": 4, \"event_type\": \"click\","
                + " \"event_time\": " + T + "}");
        assertEquals("user_id not an integer", reason(row));
        assertTrue(row.isNullAt(USER) && row.isNullAt(PRICE));
        assertEquals(4L, row.getLong(ITEM));
        assertEquals(T, row.getLong(TIME));
    }

    @Test
    void aTypeErrorComesBeforeTheRules() {
        assertEquals("price not a number", reason(read("{\"price\": \"free\", \"event_time\": " + T + "}")));
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "{\"event_type\": \"click\", \"event_time\": " + T + "}|missing user_id",
        "{\"user_id\": null, \"event_type\": \"click\", \"event_time\": " + T + "}|missing user_id",
        "{\"user_id\": 1, \"event_type\": \"click\"}|missing event_time",
        "{\"user_id\": 1, \"event_time\": " + T + "}|missing event_type",
        "{\"user_id\": 1, \"event_type\": \"Click\", \"event_time\": " + T + "}|unknown event_type",
        "{\"user_id\": 1, \"event_type\": \"cart\", \"price\": -0.01, \"event_time\": " + T + "}|negative price",
        "{\"user_id\": 1, \"event_type\": \"click\", \"event_time\": 1}|event_time out of range",
        "{\"user_id\": 1, \"event_type\": \"click\", \"event_time\": " + (MIN - 1) + "}|event_time out of range",
        // the clock in whole seconds (as SQL's UNIX_TIMESTAMP()), plus the future allowed, plus 1 ms
        "{\"user_id\": 1, \"event_type\": \"click\", \"event_time\": " + (1_700_000_123_000L + FUTURE + 1)
                + "}|event_time out of range",
        "{\"event_type\": \"nope\", \"price\": -1}|missing user_id",
    })
    void eachRuleInItsOrder(String json, String expected) {
        GenericRowData row = read(json);
        assertEquals(expected, reason(row));
        assertEquals(0L, rowtime(row));
        assertTrue(row.isNullAt(RAW));
    }

    @Test
    void theBoundsThemselvesAreAccepted() {
        assertNull(reason(event(", \"event_time\": " + MIN)));
        long newest = 1_700_000_123_000L + FUTURE;
        GenericRowData row = event(", \"event_time\": " + newest + ", \"price\": 0");
        assertNull(reason(row));
        assertEquals(newest, rowtime(row));
    }

    @Test
    void theNewestEventTimeFollowsTheClockAsEachRecordIsRead() {
        long[] clock = {NOW};
        EventReader r = new EventReader(layout(20), () -> clock[0]);
        byte[] late = ("{\"user_id\": 1, \"event_type\": \"click\", \"event_time\": " + (NOW + FUTURE + 5_000) + "}")
                .getBytes(StandardCharsets.UTF_8);
        assertEquals("event_time out of range", reason(r.read(late)));
        clock[0] += 10_000;
        assertNull(reason(r.read(late)));
    }

    @Test
    void aBadLayoutIsRefusedNamingWhat() {
        ValidationException e = assertThrows(ValidationException.class, () -> new EventLayout(RowType.of(TYPES, NAMES),
                RULES.replace("\"price\", \"test\"", "\"cost\", \"test\""), TYPE_ERRORS, "event_time", 10, "a", "b", "c"));
        assertTrue(e.getMessage().contains("cost"), e.getMessage());
        e = assertThrows(ValidationException.class, () -> new EventLayout(RowType.of(TYPES, NAMES), RULES, "{}",
                "event_time", 10, "a", "b", "c"));
        assertTrue(e.getMessage().contains("user_id"), e.getMessage());
        assertFalse(layout(10).fields().containsKey("reason"));
    }

    static byte[] bytes(String hex) {
        String[] parts = hex.split(" ");
        byte[] out = new byte[parts.length];
        for (int i = 0; i < parts.length; i++) {
            out[i] = (byte) Integer.parseInt(parts[i], 16);
        }
        return out;
    }

    static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) {
            n += p.length;
        }
        byte[] out = new byte[n];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }
}
