package io.lambdafeatures.flink;

import java.util.Map;

/** {@code top_k}: the k most frequent values of a window, ties by text (ARRAY&lt;STRING&gt;). */
public class TopK extends CountedValues<String[]> {
    @Override
    public String[] getValue(ValueCounts acc) {
        try {
            return mostFrequent(acc).stream().map(Map.Entry::getKey).toArray(String[]::new);
        } catch (Exception e) {
            throw new IllegalStateException("reading a window's value counts", e);
        }
    }
}
