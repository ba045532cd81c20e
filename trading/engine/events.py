"""Events returned by the order book.

Every call on :class:`~trading.engine.book.OrderBook` returns a list of these,
in order. ``seq`` is the per-market sequence number: it increases by exactly one
per event, so a consumer can detect gaps. Prices are ticks, quantities lots,
quote amounts quote units (ticks x lots). Events are slotted records, to be
treated as immutable: ``Kind.of(*values)`` builds one positionally (the book's
general paths); the hot paths call ``Kind()``, which runs no Python code, and
set the slots, because building events is a large share of the book's time.
Two events are equal when they are of the same kind with equal fields.

Life of an order, as events:

* ``OrderRejected``: refused before it existed (no other event for it).
* ``TriggerPlaced``: a trigger order waits (status TriggerPending);
  ``OrderTriggered`` when its price is crossed, then the normal flow below.
* ``OrderAccepted``: entered matching with ``quantity`` (a reduce-only order's
  quantity is already clamped to the position).
* ``Fill``: one trade against a resting maker.
* ``OrderModified``: quantity changed while open (reduce-only shrink, or a
  stop-loss/take-profit child growing with its parent's fills).
* ``OrderDone``: left the book: Filled, Cancelled or Expired, with a reason.

An accepted order without an ``OrderDone`` is resting in the book.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mypy_extensions import mypyc_attr

from trading.engine.orders import (
    ExpiryReason,
    OrderStatus,
    OrderType,
    PlaceOrder,
    RejectReason,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TriggerBy,
    TriggerDirection,
)


@mypyc_attr(acyclic=True)
class _Event:
    """Base of the event kinds (see the module docstring).

    Compiled by mypyc, events are not tracked by the garbage collector
    (``acyclic``): their fields hold numbers, enums and the command, none of
    which can refer back to an event. The kinds every order produces
    (``OrderAccepted``, ``Fill``, ``OrderDone``) also keep their last freed
    instance for the next one (``free_list_len=1``): a caller that drops each
    call's events before the next call (the benchmark, for one) then
    builds them without a trip through the allocator.
    """

    __slots__ = ()
    # the field names in declaration order: the kinds' __slots__, which a class
    # compiled by mypyc does not keep
    FIELDS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def of(cls, *values: Any) -> Any:
        """An event from all its field values, in declaration order."""
        names = cls.FIELDS
        if len(values) != len(names):
            raise TypeError(f"{cls.__name__} takes {len(names)} values, got {len(values)}")
        event = cls()
        for name, value in zip(names, values, strict=True):
            setattr(event, name, value)
        return event

    def fields(self) -> tuple:
        names = self.FIELDS
        return tuple(getattr(self, name) for name in names)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.fields() == other.fields()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        names = self.FIELDS
        values = ", ".join(f"{n}={getattr(self, n, None)!r}" for n in names)
        return f"{type(self).__name__}({values})"


@mypyc_attr(acyclic=True, free_list_len=1)  # see _Event
class OrderAccepted(_Event):
    """The order entered matching. ``command`` is the request as placed;
    ``quantity`` the effective quantity (a reduce-only order's is clamped to
    the position; None for a market order by quote quantity)."""

    FIELDS = ("seq", "command", "quantity")
    __slots__ = FIELDS

    seq: int
    command: PlaceOrder
    quantity: int | None

    @property
    def order_id(self) -> int:
        return self.command.order_id

    @property
    def account(self) -> int:
        return self.command.account

    @property
    def client_id(self) -> int | None:
        return self.command.client_id

    @property
    def side(self) -> Side | str:
        return self.command.side

    @property
    def order_type(self) -> OrderType | str:
        return self.command.order_type

    @property
    def price(self) -> int | None:
        return self.command.price

    @property
    def quote_quantity(self) -> int | None:
        return self.command.quote_quantity

    @property
    def time_in_force(self) -> TimeInForce | str:
        return self.command.time_in_force

    @property
    def post_only(self) -> bool:
        return self.command.post_only

    @property
    def reduce_only(self) -> bool:
        return self.command.reduce_only

    @property
    def self_trade_prevention(self) -> SelfTradePrevention | str:
        return self.command.self_trade_prevention

    @property
    def created_at(self) -> int | None:
        return self.command.created_at


@mypyc_attr(acyclic=True)  # see _Event
class OrderRejected(_Event):
    FIELDS = ("seq", "order_id", "account", "client_id", "reason", "triggered")
    __slots__ = FIELDS

    seq: int
    order_id: int | None
    account: int
    client_id: int | None
    reason: RejectReason
    triggered: bool  # True: a trigger order fired and then failed


@mypyc_attr(acyclic=True, free_list_len=1)  # see _Event
class Fill(_Event):
    FIELDS = (
        "seq",
        "trade_id",
        "price",
        "quantity",
        "taker_side",
        "maker_order_id",
        "taker_order_id",
        "maker_account",
        "taker_account",
        "maker_client_id",
        "taker_client_id",
        "maker_remaining",
        "taker_remaining",
        "maker_reduce_only",
        "taker_reduce_only",
    )
    __slots__ = FIELDS

    seq: int
    trade_id: int
    price: int
    quantity: int
    taker_side: Side
    maker_order_id: int
    taker_order_id: int
    maker_account: int
    taker_account: int
    maker_client_id: int | None
    taker_client_id: int | None
    maker_remaining: int
    taker_remaining: int  # lots left on the taker (0 for quote-driven orders)
    maker_reduce_only: bool
    taker_reduce_only: bool

    @property
    def maker_side(self) -> Side:
        return Side.ASK if self.taker_side is Side.BID else Side.BID

    @property
    def quote(self) -> int:
        return self.price * self.quantity


@mypyc_attr(acyclic=True, free_list_len=1)  # see _Event
class OrderDone(_Event):
    FIELDS = (
        "seq",
        "order_id",
        "account",
        "client_id",
        "status",
        "reason",
        "executed_quantity",
        "executed_quote",
        "remaining",
    )
    __slots__ = FIELDS

    seq: int
    order_id: int
    account: int
    client_id: int | None
    status: OrderStatus
    reason: ExpiryReason | None
    executed_quantity: int
    executed_quote: int
    remaining: int  # lots cancelled/expired (0 when Filled)


@mypyc_attr(acyclic=True)  # see _Event
class OrderModified(_Event):
    FIELDS = (
        "seq",
        "order_id",
        "account",
        "client_id",
        "quantity",
        "remaining",
        "reason",
    )
    __slots__ = FIELDS

    seq: int
    order_id: int
    account: int
    client_id: int | None
    quantity: int  # new total quantity (executed + remaining)
    remaining: int
    reason: ExpiryReason | None  # ReduceOnlyNotReduced for a shrink, None to grow


@mypyc_attr(acyclic=True)  # see _Event
class TriggerPlaced(_Event):
    FIELDS = (
        "seq",
        "order_id",
        "account",
        "client_id",
        "side",
        "order_type",
        "price",
        "quantity",
        "quote_quantity",
        "trigger_price",
        "trigger_by",
        "direction",
        "reduce_only",
        "parent_id",
        "sibling_id",
    )
    __slots__ = FIELDS

    seq: int
    order_id: int
    account: int
    client_id: int | None
    side: Side | str  # enum fields: as the command holds them (see PlaceOrder)
    order_type: OrderType | str
    price: int | None
    quantity: int | None
    quote_quantity: int | None
    trigger_price: int
    trigger_by: TriggerBy | str
    direction: TriggerDirection
    reduce_only: bool
    parent_id: int | None  # set for stop-loss / take-profit children
    sibling_id: int | None  # the OCO partner of a child


@mypyc_attr(acyclic=True)  # see _Event
class OrderTriggered(_Event):
    FIELDS = (
        "seq",
        "order_id",
        "account",
        "client_id",
        "trigger_by",
        "trigger_price",
        "reference_price",
    )
    __slots__ = FIELDS

    seq: int
    order_id: int
    account: int
    client_id: int | None
    trigger_by: TriggerBy | str
    trigger_price: int
    reference_price: int


@mypyc_attr(acyclic=True)  # see _Event
class CancelRejected(_Event):
    FIELDS = ("seq", "account", "order_id", "client_id", "reason")
    __slots__ = FIELDS

    seq: int
    account: int
    order_id: int | None
    client_id: int | None
    reason: RejectReason


Event = (
    OrderAccepted
    | OrderRejected
    | Fill
    | OrderDone
    | OrderModified
    | TriggerPlaced
    | OrderTriggered
    | CancelRejected
)
