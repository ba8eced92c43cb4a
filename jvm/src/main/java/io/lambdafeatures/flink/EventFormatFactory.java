package io.lambdafeatures.flink;

import java.util.Set;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.format.DecodingFormat;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DeserializationFormatFactory;
import org.apache.flink.table.factories.DynamicTableFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.RowType;

/**
 * The format {@code lf-event}: a canonical JSON event read once, typed, checked against the
 * acceptance rules, with its event time and dead-letter reason (streaming/job.py writes its
 * options from features/events.py). Columns {@code reason}, {@code raw} and {@code ts} are the
 * verdict; every other column is an event field of that name.
 */
public final class EventFormatFactory implements DeserializationFormatFactory {
    public static final String IDENTIFIER = "lf-event";

    static final ConfigOption<String> RULES = ConfigOptions.key("rules").stringType().noDefaultValue()
            .withDescription("the acceptance rules, in order, as a JSON list of {reason, field, test, ...}");
    static final ConfigOption<String> TYPE_ERRORS = ConfigOptions.key("type-errors").stringType().noDefaultValue()
            .withDescription("JSON object: each typed field's reason when present but not of its type");
    static final ConfigOption<String> EVENT_TIME = ConfigOptions.key("event-time-field").stringType()
            .noDefaultValue().withDescription("the BIGINT field holding the event time (epoch ms)");
    static final ConfigOption<Integer> RAW_CHARS = ConfigOptions.key("raw-chars").intType().noDefaultValue()
            .withDescription("characters of an unreadable record kept in the column raw");
    static final ConfigOption<String> EMPTY = ConfigOptions.key("empty-reason").stringType().noDefaultValue();
    static final ConfigOption<String> NOT_UTF8 = ConfigOptions.key("not-utf8-reason").stringType().noDefaultValue();
    static final ConfigOption<String> MALFORMED = ConfigOptions.key("malformed-reason").stringType().noDefaultValue();

    @Override
    public DecodingFormat<DeserializationSchema<RowData>> createDecodingFormat(
            DynamicTableFactory.Context context, ReadableConfig options) {
        FactoryUtil.validateFactoryOptions(this, options);
        return new DecodingFormat<>() {
            @Override
            public DeserializationSchema<RowData> createRuntimeDecoder(
                    DynamicTableSource.Context ctx, DataType physicalDataType) {
                EventLayout layout = new EventLayout((RowType) physicalDataType.getLogicalType(),
                        options.get(RULES), options.get(TYPE_ERRORS), options.get(EVENT_TIME),
                        options.get(RAW_CHARS), options.get(EMPTY), options.get(NOT_UTF8), options.get(MALFORMED));
                return new EventDeserializationSchema(layout, ctx.createTypeInformation(physicalDataType));
            }

            @Override
            public ChangelogMode getChangelogMode() {
                return ChangelogMode.insertOnly();
            }
        };
    }

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Set.of(RULES, TYPE_ERRORS, EVENT_TIME, RAW_CHARS, EMPTY, NOT_UTF8, MALFORMED);
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return Set.of();
    }
}
