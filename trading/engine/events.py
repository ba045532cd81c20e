"""Events returned by the order book.

Every call on :class:`~trading.engine.book.OrderBook` returns a list of these,
in order. ``seq`` is the per-market sequence number: it increases by exactly one
per event, so a consumer can detect gaps. Prices are ticks, quantities lots,
quote amounts quote units (ticks x lots). Treat events as immutable (they are
plain slotted dataclasses for speed, not frozen).

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

from dataclasses import dataclass

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


@dataclass(slots=True)
class OrderAccepted:
    """The order entered matching. ``command`` is the request as placed;
    ``quantity`` the effective quantity (a reduce-only order's is clamped to
    the position; None for a market order by quote quantity)."""

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
    def side(self) -> Side:
        return self.command.side

    @property
    def order_type(self) -> OrderType:
        return self.command.order_type

    @property
    def price(self) -> int | None:
        return self.command.price

    @property
    def quote_quantity(self) -> int | None:
        return self.command.quote_quantity

    @property
    def time_in_force(self) -> TimeInForce:
        return self.command.time_in_force

    @property
    def post_only(self) -> bool:
        return self.command.post_only

    @property
    def reduce_only(self) -> bool:
        return self.command.reduce_only

    @property
    def self_trade_prevention(self) -> SelfTradePrevention:
        return self.command.self_trade_prevention

    @property
    def created_at(self) -> int | None:
        return self.command.created_at


@dataclass(slots=True)
class OrderRejected:
    seq: int
    order_id: int | None
    account: int
    client_id: int | None
    reason: RejectReason
    triggered: bool = False  # True: a trigger order fired and then failed


@dataclass(slots=True)
class Fill:
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


@dataclass(slots=True)
class OrderDone:
    seq: int
    order_id: int
    account: int
    client_id: int | None
    status: OrderStatus
    reason: ExpiryReason | None
    executed_quantity: int
    executed_quote: int
    remaining: int  # lots cancelled/expired (0 when Filled)


@dataclass(slots=True)
class OrderModified:
    seq: int
    order_id: int
    account: int
    client_id: int | None
    quantity: int  # new total quantity (executed + remaining)
    remaining: int
    reason: ExpiryReason | None  # ReduceOnlyNotReduced for a shrink, None to grow


@dataclass(slots=True)
class TriggerPlaced:
    seq: int
    order_id: int
    account: int
    client_id: int | None
    side: Side
    order_type: OrderType
    price: int | None
    quantity: int | None
    quote_quantity: int | None
    trigger_price: int
    trigger_by: TriggerBy
    direction: TriggerDirection
    reduce_only: bool
    parent_id: int | None  # set for stop-loss / take-profit children
    sibling_id: int | None  # the OCO partner of a child


@dataclass(slots=True)
class OrderTriggered:
    seq: int
    order_id: int
    account: int
    client_id: int | None
    trigger_by: TriggerBy
    trigger_price: int
    reference_price: int


@dataclass(slots=True)
class CancelRejected:
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
