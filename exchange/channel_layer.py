"""The Redis channel layer of the production topology: channels_redis' own, with `send` in
one round trip to Redis instead of four.

Every order crosses the layer twice (the web worker's command to the engine, the engine's
answer back), and channels_redis sends with four commands in turn (drop expired messages,
count against the capacity, add, refresh the expiry). Here one Lua script does the same
four steps atomically; receiving, groups and everything else are channels_redis' own.
"""

import time

from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer
from redis.commands.core import AsyncScript

# KEYS[1]: the channel's key; ARGV: expired-before score, capacity, score, message, expiry.
SEND_LUA = b"""
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""
SEND = AsyncScript(
    None,  # run on the layer's connection of each send (EVALSHA, loaded again if missing)
    SEND_LUA,
)


class OneTripRedisChannelLayer(RedisChannelLayer):
    async def send(self, channel: str, message: dict) -> None:
        assert isinstance(message, dict), "message is not a dict"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        assert "__asgi_channel__" not in message
        name = channel
        if "!" in channel:  # a process-local channel: its process's key, the full name inside
            message = {**message, "__asgi_channel__": channel}
            name = self.non_local_name(channel)
            index = self.consistent_hash(channel)
        else:
            index = next(self._send_index_generator)
        connection = self.connection(index)
        sent = await SEND(
            keys=[self.prefix + name],
            args=self.send_args(channel, message, time.time()),
            client=connection,
        )
        if not sent:
            raise ChannelFull()

    def send_args(self, channel: str, message: dict, now: float) -> list:
        """ARGV of SEND_LUA for `message` (its "__asgi_channel__" already in place when the
        channel is process-local)."""
        return [
            int(now) - int(self.expiry),
            self.get_capacity(channel),
            now,
            self.serialize(message),
            int(self.expiry),
        ]
