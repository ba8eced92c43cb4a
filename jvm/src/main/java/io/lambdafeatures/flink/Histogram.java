package io.lambdafeatures.flink;

import java.util.LinkedHashMap;
import java.util.Map;

/** {@code histogram}: value to count of the k most frequent values of a window, ties by text (MAP&lt;STRING, BIGINT&gt;). */
public class Histogram extends CountedValues<Map<String, Long>> {
    @Override
    public Map<String, Long> getValue(ValueCounts acc) {
        Map<String, Long> out = new LinkedHashMap<>();
        try {
            mostFrequent(acc).forEach(e -> out.put(e.getKey(), e.getValue()));
        } catch (Exception e) {
            throw new IllegalStateException("reading a window's value counts", e);
        }
        return out;
    }
}
