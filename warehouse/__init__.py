"""The platform's ClickHouse schema: the feature tables and their views, the batch's and the
checks' own tables, and one way to name a table's rows wherever they live (hot or cold).
It sits between the packages that use the stores and common (which holds the client)."""
