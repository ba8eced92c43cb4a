package io.lambdafeatures.flink;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.function.LongSupplier;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.data.binary.BinaryStringData;
import org.apache.flink.table.data.binary.BinaryStringDataUtil;

/**
 * Reads one Kafka record's value in one pass and decides: empty, not UTF-8 or malformed JSON
 * (not one JSON object); else each field typed, the first field present but not of its type,
 * the first failed acceptance rule, and the event time (0 for a rejected record, so it can
 * never move the watermark). A field is typed as SQL's TRY_CAST types its JSON text (the
 * engine's own string casts), so the stream reads what the json format and TRY_CAST read
 * before; of a duplicate key, the last value counts (as Jackson's tree and Flink's json format).
 */
final class EventReader {
    private static final BinaryStringData SPACE = BinaryStringData.fromString(" ");
    private final EventLayout layout;
    private final LongSupplier clock;
    private final Map<String, Integer> fields;
    private final JsonFactory json = new JsonFactory();
    private final ObjectMapper nested = new ObjectMapper(); // a nested value read as STRING: its JSON text
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    private final Object[] values;
    private final boolean[] wrong;

    EventReader(EventLayout layout, LongSupplier clock) {
        this.layout = layout;
        this.clock = clock;
        this.fields = layout.fields();
        this.values = new Object[layout.names.length];
        this.wrong = new boolean[layout.names.length];
    }

    GenericRowData read(byte[] message) {
        Arrays.fill(values, null);
        Arrays.fill(wrong, false);
        if (message == null) {
            return unreadable(layout.emptyReason, null);
        }
        if (!isUtf8(message)) {
            return unreadable(layout.notUtf8Reason, message);
        }
        if (hasZeroByte(message)) { // UTF-16 or UTF-32, which the parser would detect and read
            return unreadable(layout.malformedReason, message);
        }
        try (JsonParser p = json.createParser(message)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                return unreadable(layout.malformedReason, message);
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                Integer i = fields.get(p.currentName());
                JsonToken t = p.nextToken();
                if (i == null) {
                    p.skipChildren();
                } else {
                    wrong[i] = false; // a duplicate key: its last value counts
                    values[i] = null;
                    read(p, t, i);
                }
            }
            if (p.currentToken() != JsonToken.END_OBJECT || p.nextToken() != null) {
                return unreadable(layout.malformedReason, message);
            }
        } catch (IOException e) {
            return unreadable(layout.malformedReason, message);
        }
        return verdict();
    }

    /** The field at position i from the parser's current token (null: JSON null). */
    private void read(JsonParser p, JsonToken t, int i) throws IOException {
        if (t == JsonToken.VALUE_NULL) {
            return;
        }
        switch (layout.kinds[i]) {
            case STRING:
                values[i] = text(p, t);
                return;
            case LONG:
                if (t == JsonToken.VALUE_NUMBER_INT && p.getNumberType() != JsonParser.NumberType.BIG_INTEGER) {
                    values[i] = p.getLongValue();
                    return;
                }
                try {
                    values[i] = BinaryStringDataUtil.toLong(trimmed(p, t));
                } catch (NumberFormatException e) {
                    wrong[i] = true;
                }
                return;
            case DOUBLE:
                if (t.isNumeric()) {
                    values[i] = p.getDoubleValue();
                    return;
                }
                try {
                    values[i] = BinaryStringDataUtil.toDouble(trimmed(p, t));
                } catch (NumberFormatException e) {
                    wrong[i] = true;
                }
                return;
            case BOOLEAN:
                if (t.isBoolean()) {
                    values[i] = t == JsonToken.VALUE_TRUE;
                    return;
                }
                try {
                    values[i] = BinaryStringDataUtil.toBoolean(trimmed(p, t));
                } catch (RuntimeException e) {
                    wrong[i] = true;
                }
                return;
            default:
                throw new IllegalStateException("not an event field: " + layout.names[i]);
        }
    }

    /** A JSON value as text, as Flink's json format reads it into a STRING column. */
    private String text(JsonParser p, JsonToken t) throws IOException {
        if (t == JsonToken.START_OBJECT || t == JsonToken.START_ARRAY) {
            return nested.readTree(p).toString();
        }
        if (t == JsonToken.VALUE_NUMBER_FLOAT) {
            return Double.toString(p.getDoubleValue());
        }
        return p.getText();
    }

    private BinaryStringData trimmed(JsonParser p, JsonToken t) throws IOException {
        return BinaryStringDataUtil.trim(BinaryStringData.fromString(text(p, t)), SPACE);
    }

    private GenericRowData verdict() {
        String reason = null;
        for (int i = 0; i < wrong.length && reason == null; i++) {
            if (wrong[i]) {
                reason = layout.typeErrors[i];
            }
        }
        if (reason == null) {
            long now = clock.getAsLong();
            for (Rule r : layout.rules) {
                if (r.fails(values, now)) {
                    reason = r.reason;
                    break;
                }
            }
        }
        long rowtime = reason == null ? (Long) values[layout.eventTime] : 0L;
        GenericRowData row = new GenericRowData(values.length);
        for (int i = 0; i < values.length; i++) {
            switch (layout.kinds[i]) {
                case STRING:
                    row.setField(i, values[i] == null ? null : StringData.fromString((String) values[i]));
                    break;
                case REASON:
                    row.setField(i, reason == null ? null : StringData.fromString(reason));
                    break;
                case RAW:
                    break;
                case TS:
                    row.setField(i, TimestampData.fromEpochMillis(rowtime));
                    break;
                default:
                    row.setField(i, values[i]);
            }
        }
        return row;
    }

    /** A record that is no event: its reason and (when it has one) its first characters. */
    private GenericRowData unreadable(String reason, byte[] message) {
        GenericRowData row = new GenericRowData(values.length);
        for (int i = 0; i < values.length; i++) {
            switch (layout.kinds[i]) {
                case REASON:
                    row.setField(i, StringData.fromString(reason));
                    break;
                case RAW:
                    row.setField(i, message == null ? null : StringData.fromString(head(message)));
                    break;
                case TS:
                    row.setField(i, TimestampData.fromEpochMillis(0L));
                    break;
                default:
            }
        }
        return row;
    }

    /** The record's first rawChars characters (code points), undecodable bytes replaced. */
    private String head(byte[] message) {
        String s = new String(message, StandardCharsets.UTF_8);
        int n = s.codePointCount(0, s.length());
        return n <= layout.rawChars ? s : s.substring(0, s.offsetByCodePoints(0, layout.rawChars));
    }

    /** JSON in UTF-8 has no zero byte: a control character in a string must be escaped. */
    private static boolean hasZeroByte(byte[] message) {
        for (byte b : message) {
            if (b == 0) {
                return true;
            }
        }
        return false;
    }

    private boolean isUtf8(byte[] message) {
        for (byte b : message) {
            if (b < 0) { // a non-ASCII byte: the strict decoder has the last word
                try {
                    utf8.reset().decode(ByteBuffer.wrap(message));
                    return true;
                } catch (CharacterCodingException e) {
                    return false;
                }
            }
        }
        return true;
    }
}
