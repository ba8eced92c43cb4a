package io.lambdafeatures.flink;

import org.apache.flink.table.api.dataview.MapView;

/**
 * The accumulator of {@link TopK} and {@link Histogram}: each value's count in a window, in a
 * {@link MapView} (state of its own: an event reads and writes one entry, not the whole map),
 * and the k of the measure.
 */
public class ValueCounts {
    public MapView<String, Long> counts = new MapView<>();
    public int k;
}
