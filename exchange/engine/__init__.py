"""The engine worker: the single writer of orders, fills and their balances for the
markets it owns. It composes the apps for each command: risk check (accounts balances;
margin arrives with lending and settlement), match (trading.engine), settle (the ledger),
persist (one transaction per batch), then acknowledge and publish.

Transports: `local.LocalEngineClient` runs the engine in a thread of this process (the
embedded default and the tests); `consumer` serves it as a Channels consumer
(`manage.py runworker engine`) over the Redis channel layer in production.
"""
