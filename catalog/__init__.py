"""The item catalogue: loading it, relaying its binlog changes to Kafka, observing it."""
