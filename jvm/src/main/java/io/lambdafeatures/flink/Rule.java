package io.lambdafeatures.flink;

import java.io.Serializable;
import java.util.Set;

/**
 * One acceptance rule of features/events.py, as the format option {@code rules} carries it: a
 * record fails it when its typed field is missing, not one of the allowed values, below zero, or
 * (an event time) outside [min, clock + future].
 */
final class Rule implements Serializable {
    private static final long serialVersionUID = 1L;

    enum Test {
        MISSING,
        ONE_OF,
        NEGATIVE,
        TIME_RANGE
    }

    final String reason;
    final int field; // position of the field in the row
    final Test test;
    final Set<String> values; // ONE_OF
    final long minMs; // TIME_RANGE
    final long futureMs; // TIME_RANGE

    Rule(String reason, int field, Test test, Set<String> values, long minMs, long futureMs) {
        this.reason = reason;
        this.field = field;
        this.test = test;
        this.values = values;
        this.minMs = minMs;
        this.futureMs = futureMs;
    }

    /** Does a record with these typed values fail the rule? {@code nowMs}: the clock. */
    boolean fails(Object[] row, long nowMs) {
        Object v = row[field];
        switch (test) {
            case MISSING:
                return v == null;
            case ONE_OF:
                return v != null && !values.contains(v.toString());
            case NEGATIVE:
                return v != null && ((Number) v).doubleValue() < 0;
            case TIME_RANGE:
                if (v == null) {
                    return false;
                }
                long t = ((Number) v).longValue();
                // as SQL's UNIX_TIMESTAMP() * 1000: the clock in whole seconds
                return t < minMs || t > (nowMs / 1000) * 1000 + futureMs;
            default:
                throw new IllegalStateException(test.toString());
        }
    }
}
