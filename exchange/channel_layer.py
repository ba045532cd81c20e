"""The Redis channel layer of the production topology: channels_redis' own, with `send` in
one round trip to Redis instead of four.

Every order crosses the layer twice (the web worker's command to the engine, the engine's
answer back), and channels_redis sends with four commands in turn (drop expired messages,
count against the capacity, add, refresh the expiry). Here one Lua script does the same
four steps atomically. `group_send` likewise: one script reads the group's members (most
stream groups are empty) and one sends to them, instead of four round trips with a full
EVAL; a receive takes one script (restore the in-flight backup, pop, back up) while
messages are waiting, instead of three round trips. Group membership and everything else
are channels_redis' own.
"""

import logging
import time
from collections import deque

from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer
from redis.commands.core import AsyncScript

log = logging.getLogger(__name__)

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

# SEND_LUA for many messages at once. KEYS: the channels' keys (a key may repeat: a web
# process's key holds all its local channels); ARGV: each key's message, each key's
# capacity, then the score, the expiry and the expired-before score. 1 or 0 per key.
SEND_MANY = AsyncScript(
    None,
    b"""
local n = #KEYS
local score = ARGV[2 * n + 1]
local expiry = ARGV[2 * n + 2]
local expired = ARGV[2 * n + 3]
local sent = {}
for i = 1, n do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, expired)
    if redis.call('ZCARD', KEYS[i]) < tonumber(ARGV[n + i]) then
        redis.call('ZADD', KEYS[i], score, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
        sent[i] = 1
    else
        sent[i] = 0
    end
end
return sent
""",
)

# KEYS[1]: a group's key; ARGV[1]: members added before this are dropped. Its members.
GROUP_MEMBERS = AsyncScript(
    None,
    b"""
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
""",
)
# KEYS: channel keys; ARGV: each key's message, each key's capacity, then the score, the
# expiry and the expired-before score. channels_redis' group send script, with the expired
# messages dropped in it (channels_redis does that in a pipeline of its own first).
GROUP_SEND = AsyncScript(
    None,
    b"""
local over_capacity = 0
local score = ARGV[#ARGV - 2]
local expiry = ARGV[#ARGV - 1]
local expired = ARGV[#ARGV]
for i = 1, #KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, expired)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
        redis.call('ZADD', KEYS[i], score, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
""",
)


# channels_redis' receive step without blocking: put the backed-up (in-flight) messages
# back in front of the queue, pop the first and keep it in the backup queue, atomically.
# KEYS: the channel's key, its backup queue's key. The popped message, or nil when empty.
POP = AsyncScript(
    None,
    b"""
local backed_up = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = #backed_up, 1, -2 do
    redis.call('ZADD', KEYS[1], backed_up[i], backed_up[i - 1])
end
redis.call('DEL', KEYS[2])
local popped = redis.call('ZPOPMIN', KEYS[1])
if #popped == 0 then
    return false
end
redis.call('ZADD', KEYS[2], popped[2], popped[1])
return popped[1]
""",
)


# A receive on a channel with one receiver (an engine worker's command channel): what is
# waiting, up to ARGV[2] messages, in one script. KEYS: the channel's key, its backup
# queue's key; ARGV[1] '1': first put the backup queue's messages (a dead receiver's in
# flight) back in front, as channels_redis' receive does. Flat [member, score, ...].
POP_MANY = AsyncScript(
    None,
    b"""
if ARGV[1] == '1' then
    local backed_up = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
    for i = #backed_up, 1, -2 do
        redis.call('ZADD', KEYS[1], backed_up[i], backed_up[i - 1])
    end
    redis.call('DEL', KEYS[2])
end
return redis.call('ZPOPMIN', KEYS[1], ARGV[2])
""",
)


class OneTripRedisChannelLayer(RedisChannelLayer):
    receive_many = 64  # messages a receive on a plain channel takes from Redis at once

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self._taken: dict[str, deque] = {}  # plain channel -> messages taken, not yet received

    async def send(self, channel: str, message: dict) -> None:
        key, message, index = self._addressed(channel, message)
        sent = await SEND(
            keys=[key],
            args=self.send_args(channel, message, time.time()),
            client=self.connection(index),
        )
        if not sent:
            raise ChannelFull()

    async def send_many(self, messages: list[tuple[str, dict]]) -> list[bool]:
        """`send` of each (channel, message), in one round trip per Redis server (the
        engine worker's answers to a batch's callers); whether each was sent (False: its
        channel was full)."""
        now, expiry = time.time(), int(self.expiry)
        by_server: dict[int, list[tuple[int, str, bytes, int]]] = {}  # (position, key, ...)
        for i, (channel, message) in enumerate(messages):
            key, message, index = self._addressed(channel, message)
            row = (i, key, self.serialize(message), self.get_capacity(channel))
            by_server.setdefault(index, []).append(row)
        sent = [False] * len(messages)
        for index, rows in by_server.items():
            at, keys, payloads, capacities = zip(*rows, strict=True)
            result = await SEND_MANY(
                keys=list(keys),
                args=[*payloads, *capacities, now, expiry, int(now) - expiry],
                client=self.connection(index),
            )
            for i, ok in zip(at, result, strict=True):
                sent[i] = bool(ok)
        return sent

    def _addressed(self, channel: str, message: dict) -> tuple[str, dict, int]:
        """The key a message to `channel` goes to, the message as stored there, and the
        index of the Redis server that holds the key."""
        assert isinstance(message, dict), "message is not a dict"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        assert "__asgi_channel__" not in message
        if "!" in channel:  # a process-local channel: its process's key, the full name inside
            message = {**message, "__asgi_channel__": channel}
            return (
                self.prefix + self.non_local_name(channel),
                message,
                self.consistent_hash(channel),
            )
        return self.prefix + channel, message, next(self._send_index_generator)

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

    async def group_send(self, group: str, message: dict) -> None:
        """channels_redis' group_send in one round trip for an empty group (the engine
        worker publishes every stream update to its group, most of them without
        subscribers) and two otherwise, instead of four."""
        assert self.require_valid_group_name(group), "Group name not valid"
        members = await GROUP_MEMBERS(
            keys=[self._group_key(group)],
            args=[int(time.time()) - self.group_expiry],
            client=self.connection(self.consistent_hash(group)),
        )
        if not members:
            return
        names = [member.decode("utf8") for member in members]
        by_connection, messages, capacities = self._map_channel_keys_to_connection(names, message)
        for index, keys in by_connection.items():
            now = time.time()
            over = await GROUP_SEND(
                keys=keys,
                args=[
                    *(messages[key] for key in keys),
                    *(capacities[key] for key in keys),
                    now,
                    int(self.expiry),
                    int(now) - int(self.expiry),
                ],
                client=self.connection(index),
            )
            if over > 0:
                log.info("%s of %s channels over capacity in group %s", over, len(names), group)

    async def receive(self, channel: str) -> dict:
        """A plain channel (an engine worker's commands: one receiver each) is read with
        every message waiting taken in one round trip, kept here and handed out one per
        call: channels_redis takes two round trips per message (pop with a backup copy,
        then a task that drops the copy, the next receive waiting for it), which an engine
        worker busy with a batch (its thread holding the GIL) turned into a queue of
        hundreds of milliseconds. Messages taken and not yet handed out die with the
        process, as those handed out and not yet run do: their callers get TIMEOUT.
        Process-local channels (`!`) are channels_redis' own."""
        if "!" in channel:
            return await super().receive(channel)
        assert self.require_valid_channel_name(channel, receive=True), "Channel name invalid"
        taken = self._taken.get(channel)
        if taken:
            return taken.popleft()
        restore = taken is None  # the first receive here puts a dead receiver's back first
        taken = self._taken.setdefault(channel, deque())
        key = self.prefix + channel
        connection = self.connection(next(self._receive_index_generator))
        while True:
            popped = await POP_MANY(
                keys=[key, self._backup_channel_name(key)],
                args=["1" if restore else "0", self.receive_many],
                client=connection,
            )
            restore = False
            taken.extend(map(self.deserialize, popped[::2]))
            if taken:
                return taken.popleft()
            result = await connection.bzpopmin(key, timeout=self.brpop_timeout)
            if result is not None:
                return self.deserialize(result[1])

    async def _brpop_with_clean(self, index: int, channel: str, timeout: float) -> bytes | None:
        """channels_redis' (restore the backup queue, BZPOPMIN, back the message up: three
        round trips per message) in one script while messages are waiting; on an empty
        queue it blocks as channels_redis does."""
        backup = self._backup_channel_name(channel)
        connection = self.connection(index)
        member = await POP(keys=[channel, backup], args=[], client=connection)
        if member is not None:
            return member
        result = await connection.bzpopmin(channel, timeout=timeout)
        if result is None:
            return None
        _, member, score = result
        await connection.zadd(backup, {member: float(score)})
        return member
