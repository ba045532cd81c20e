"""Backpack-compatible WebSocket streams.

`publisher.StreamPublisher` (engine side) turns each committed batch of engine events into
stream payloads; `hub.Hub` delivers them through the channel layer on the layer's event
loop (groups per stream, one group per account for private updates) and runs the timed
streams; `fanout.Fanout` is a web process's one receiver of them, handing each update to
its local sockets; `consumer.StreamConsumer` is the endpoint clients subscribe on.
"""
