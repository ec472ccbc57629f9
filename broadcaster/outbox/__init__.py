"""The outbox: message rows are the truth; queues only carry chunk ids."""
