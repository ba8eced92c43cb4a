package io.lambdafeatures.flink;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** top_k and histogram as docs/features.md defines them: ties, nulls, the cap, empty windows, merges. */
class CountedValuesTest {
    private static ValueCounts counted(int k, String... values) throws Exception {
        TopK f = new TopK();
        ValueCounts acc = f.createAccumulator();
        for (String v : values) {
            f.accumulate(acc, v, k);
        }
        return acc;
    }

    @Test
    void mostFrequentFirstTiesByText() throws Exception {
        ValueCounts acc = counted(3, "b", "c", "a", "c", "b", "d", "c");
        assertArrayEquals(new String[] {"c", "b", "a"}, new TopK().getValue(acc));
        assertEquals(List.of(Map.entry("c", 3L), Map.entry("b", 2L), Map.entry("a", 1L)),
                List.copyOf(new Histogram().getValue(acc).entrySet()));
    }

    @Test
    void nullsAreSkipped() throws Exception {
        ValueCounts acc = counted(2, null, "x", null, null, "y", "y");
        assertArrayEquals(new String[] {"y", "x"}, new TopK().getValue(acc));
        assertEquals(Map.of("y", 2L, "x", 1L), new Histogram().getValue(acc));
    }

    @Test
    void atMostK() throws Exception {
        ValueCounts acc = counted(1, "a", "b", "b");
        assertArrayEquals(new String[] {"b"}, new TopK().getValue(acc));
        assertEquals(Map.of("b", 2L), new Histogram().getValue(acc));
        assertArrayEquals(new String[] {"a", "b"}, new TopK().getValue(counted(5, "b", "a")));
    }

    @Test
    void anEmptyWindowGivesNone() throws Exception {
        assertArrayEquals(new String[0], new TopK().getValue(counted(3)));
        assertArrayEquals(new String[0], new TopK().getValue(counted(3, null, null)));
        assertEquals(Map.of(), new Histogram().getValue(counted(3, (String) null)));
    }

    @Test
    void numbersTieByTheirTextAndTextByCodePoint() throws Exception {
        // "10" < "9" as text; U+1F600 (a surrogate pair in UTF-16) sorts after U+FF5E, as in UTF-8
        assertArrayEquals(new String[] {"10", "9"}, new TopK().getValue(counted(2, "9", "10")));
        assertArrayEquals(new String[] {"～", "😀"}, new TopK().getValue(counted(2, "😀", "～")));
        assertArrayEquals(new String[] {"a", "ab"}, new TopK().getValue(counted(2, "ab", "a")));
    }

    @Test
    void mergedWindowsAddTheirCounts() throws Exception {
        ValueCounts acc = counted(2, "a", "b");
        new TopK().merge(acc, List.of(counted(2, "b", "c", "c"), counted(2, "c"), new TopK().createAccumulator()));
        assertEquals(Map.of("c", 3L, "b", 2L), new Histogram().getValue(acc));
        ValueCounts empty = new TopK().createAccumulator(); // a session with no event yet takes the k it merges
        new TopK().merge(empty, List.of(counted(1, "z")));
        assertArrayEquals(new String[] {"z"}, new TopK().getValue(empty));
    }
}
