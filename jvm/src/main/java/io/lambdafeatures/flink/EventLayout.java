package io.lambdafeatures.flink;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.LogicalTypeRoot;
import org.apache.flink.table.types.logical.RowType;

/**
 * What the format reads and decides, from the table's columns and the format options: each
 * column's role (an event field of a type, or the verdict: reason, raw text, event time), the
 * type error of each typed field, and the acceptance rules in the order they are reported.
 */
final class EventLayout implements Serializable {
    private static final long serialVersionUID = 1L;

    /** The columns the format fills itself; every other column is an event field. */
    static final String REASON = "reason";
    static final String RAW = "raw";
    static final String TS = "ts";

    enum Kind {
        STRING,
        LONG,
        DOUBLE,
        BOOLEAN,
        REASON,
        RAW,
        TS;

        /** An event field, read from the record's JSON. */
        boolean isField() {
            return compareTo(BOOLEAN) <= 0;
        }

        /** An event field whose text may not be of its type. */
        boolean isTyped() {
            return isField() && this != STRING;
        }
    }

    final String[] names;
    final Kind[] kinds;
    final String[] typeErrors; // per column: its reason when present but not of its type
    final List<Rule> rules;
    final int eventTime;
    final int rawChars;
    final String emptyReason;
    final String notUtf8Reason;
    final String malformedReason;

    EventLayout(RowType row, String rules, String typeErrors, String eventTime, int rawChars,
            String emptyReason, String notUtf8Reason, String malformedReason) {
        int n = row.getFieldCount();
        this.names = row.getFieldNames().toArray(new String[0]);
        this.kinds = new Kind[n];
        for (int i = 0; i < n; i++) {
            kinds[i] = kind(names[i], row.getTypeAt(i));
        }
        this.typeErrors = new String[n];
        JsonNode errors = json(typeErrors, "type-errors");
        errors.fields().forEachRemaining(e -> this.typeErrors[position(e.getKey())] = e.getValue().asText());
        for (int i = 0; i < n; i++) {
            if (this.typeErrors[i] == null && kinds[i].isTyped()) {
                throw new ValidationException("type-errors: no reason for the field " + names[i]);
            }
        }
        this.rules = new ArrayList<>();
        for (JsonNode r : json(rules, "rules")) {
            this.rules.add(rule(r));
        }
        this.eventTime = position(eventTime);
        if (kinds[this.eventTime] != Kind.LONG) {
            throw new ValidationException("event-time-field " + eventTime + " is not BIGINT (epoch ms)");
        }
        this.rawChars = rawChars;
        this.emptyReason = emptyReason;
        this.notUtf8Reason = notUtf8Reason;
        this.malformedReason = malformedReason;
    }

    /** Position of each event field by its JSON name. */
    Map<String, Integer> fields() {
        Map<String, Integer> m = new HashMap<>();
        for (int i = 0; i < names.length; i++) {
            if (kinds[i].isField()) {
                m.put(names[i], i);
            }
        }
        return m;
    }

    int position(String name) {
        for (int i = 0; i < names.length; i++) {
            if (names[i].equals(name)) {
                return i;
            }
        }
        throw new ValidationException("no column " + name + " in the table");
    }

    private static Kind kind(String name, LogicalType type) {
        LogicalTypeRoot root = type.getTypeRoot();
        switch (name) {
            case REASON:
            case RAW:
                if (root != LogicalTypeRoot.VARCHAR) {
                    throw new ValidationException("column " + name + " must be STRING");
                }
                return name.equals(REASON) ? Kind.REASON : Kind.RAW;
            case TS:
                if (root != LogicalTypeRoot.TIMESTAMP_WITH_LOCAL_TIME_ZONE) {
                    throw new ValidationException("column ts must be TIMESTAMP_LTZ(3)");
                }
                return Kind.TS;
            default:
        }
        switch (root) {
            case VARCHAR:
                return Kind.STRING;
            case BIGINT:
                return Kind.LONG;
            case DOUBLE:
                return Kind.DOUBLE;
            case BOOLEAN:
                return Kind.BOOLEAN;
            default:
                throw new ValidationException("column " + name + ": type " + type + " is not STRING, BIGINT, DOUBLE or BOOLEAN");
        }
    }

    private Rule rule(JsonNode r) {
        String reason = r.path("reason").asText();
        int field = position(r.path("field").asText());
        Rule.Test test;
        try {
            test = Rule.Test.valueOf(r.path("test").asText().toUpperCase());
        } catch (IllegalArgumentException e) {
            throw new ValidationException("rule " + reason + ": unknown test " + r.path("test"));
        }
        LinkedHashSet<String> values = new LinkedHashSet<>();
        r.path("values").forEach(v -> values.add(v.asText()));
        return new Rule(reason, field, test, values, r.path("min_ms").asLong(), r.path("future_ms").asLong());
    }

    private static JsonNode json(String text, String option) {
        try {
            return new ObjectMapper().readTree(text);
        } catch (Exception e) {
            throw new ValidationException("format option " + option + " is not JSON: " + e.getMessage());
        }
    }
}
