package io.lambdafeatures.flink;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import org.apache.flink.table.functions.AggregateFunction;

/**
 * Counts each value of a window (nulls skipped) and gives its k most frequent ones, ties by the
 * value's text in code point order (as Spark and Python order text): `top_k` and `histogram` of
 * docs/features.md, called as {@code f(value, k)} with k a literal. Windows merge (sessions, the
 * slices of a hopping window) by adding their counts.
 */
public abstract class CountedValues<T> extends AggregateFunction<T, ValueCounts> {
    static final Comparator<Map.Entry<String, Long>> MOST_FREQUENT_FIRST =
            Comparator.<Map.Entry<String, Long>>comparingLong(Map.Entry::getValue)
                    .reversed()
                    .thenComparing(Map.Entry::getKey, CountedValues::byCodePoint);

    @Override
    public ValueCounts createAccumulator() {
        return new ValueCounts();
    }

    public void accumulate(ValueCounts acc, String value, Integer k) throws Exception {
        acc.k = k;
        if (value != null) {
            Long count = acc.counts.get(value);
            acc.counts.put(value, count == null ? 1L : count + 1);
        }
    }

    public void merge(ValueCounts acc, Iterable<ValueCounts> others) throws Exception {
        for (ValueCounts other : others) {
            acc.k = Math.max(acc.k, other.k); // the same literal, unless one side saw no event
            for (Map.Entry<String, Long> e : other.counts.entries()) {
                Long count = acc.counts.get(e.getKey());
                acc.counts.put(e.getKey(), count == null ? e.getValue() : count + e.getValue());
            }
        }
    }

    /** The k most frequent values with their counts, most frequent first. */
    static List<Map.Entry<String, Long>> mostFrequent(ValueCounts acc) throws Exception {
        List<Map.Entry<String, Long>> all = new ArrayList<>();
        for (Map.Entry<String, Long> e : acc.counts.entries()) {
            all.add(Map.entry(e.getKey(), e.getValue()));
        }
        all.sort(MOST_FREQUENT_FIRST);
        return all.subList(0, Math.min(acc.k, all.size()));
    }

    static int byCodePoint(String a, String b) {
        int i = 0;
        int j = 0;
        while (i < a.length() && j < b.length()) {
            int x = a.codePointAt(i);
            int y = b.codePointAt(j);
            if (x != y) {
                return Integer.compare(x, y);
            }
            i += Character.charCount(x);
            j += Character.charCount(y);
        }
        return Integer.compare(a.length() - i, b.length() - j);
    }
}
