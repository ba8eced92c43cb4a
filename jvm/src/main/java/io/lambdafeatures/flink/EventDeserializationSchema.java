package io.lambdafeatures.flink;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.table.data.RowData;

/** The format's runtime: each record's value read once by an {@link EventReader}. */
public final class EventDeserializationSchema implements DeserializationSchema<RowData> {
    private static final long serialVersionUID = 1L;
    private final EventLayout layout;
    private final TypeInformation<RowData> producedType;
    private transient EventReader reader;

    EventDeserializationSchema(EventLayout layout, TypeInformation<RowData> producedType) {
        this.layout = layout;
        this.producedType = producedType;
    }

    @Override
    public void open(InitializationContext context) {
        reader = new EventReader(layout, System::currentTimeMillis);
    }

    /** Never null and never throws: a record that is no event becomes its dead letter. */
    @Override
    public RowData deserialize(byte[] message) {
        if (reader == null) {
            open(null);
        }
        return reader.read(message);
    }

    @Override
    public boolean isEndOfStream(RowData nextElement) {
        return false;
    }

    @Override
    public TypeInformation<RowData> getProducedType() {
        return producedType;
    }
}
