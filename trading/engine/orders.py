"""Order enums, the place command, market rules and the book's order record.

All prices are integer ticks, quantities integer lots, quote amounts integer
quote units (ticks x lots); see :mod:`trading.engine.ticks` for the edge
conversions. Enum values are Backpack's API spellings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self

from trading.engine.ticks import Scale, ratio

if TYPE_CHECKING:
    from trading.engine.levels import Level


class Side(StrEnum):
    BID = "Bid"
    ASK = "Ask"

    @property
    def opposite(self) -> Side:
        return Side.ASK if self is Side.BID else Side.BID


class OrderType(StrEnum):
    LIMIT = "Limit"
    MARKET = "Market"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class SelfTradePrevention(StrEnum):
    REJECT_TAKER = "RejectTaker"
    REJECT_MAKER = "RejectMaker"
    REJECT_BOTH = "RejectBoth"
    ALLOW = "Allow"


class TriggerBy(StrEnum):
    LAST_PRICE = "LastPrice"
    MARK_PRICE = "MarkPrice"
    INDEX_PRICE = "IndexPrice"


class TriggerDirection(StrEnum):
    """Fires when the reference price reaches the trigger from below / above."""

    UP = "Up"  # fires when reference >= trigger price
    DOWN = "Down"  # fires when reference <= trigger price


class OrderStatus(StrEnum):
    NEW = "New"
    PARTIALLY_FILLED = "PartiallyFilled"
    FILLED = "Filled"
    CANCELLED = "Cancelled"
    EXPIRED = "Expired"
    TRIGGER_PENDING = "TriggerPending"
    TRIGGER_FAILED = "TriggerFailed"


class ExpiryReason(StrEnum):
    """Backpack's OrderExpiryReason values the book produces."""

    FILL_OR_KILL = "FillOrKill"
    IMMEDIATE_OR_CANCEL = "ImmediateOrCancel"
    POST_ONLY_TAKER = "PostOnlyTaker"
    PRICE_IMPACT = "PriceImpact"
    REDUCE_ONLY_NOT_REDUCED = "ReduceOnlyNotReduced"
    SELF_TRADE_PREVENTION = "SelfTradePrevention"


class RejectReason(StrEnum):
    """Why a command was refused before the order existed in the book."""

    ORDER_BOOK_CLOSED = "OrderBookClosed"
    CANCEL_ONLY = "CancelOnly"
    LIMIT_ONLY = "LimitOnly"
    POST_ONLY_MODE = "PostOnlyMode"
    DUPLICATE_ORDER_ID = "DuplicateOrderId"
    DUPLICATE_CLIENT_ID = "DuplicateClientId"
    INVALID_ORDER = "InvalidOrder"
    INVALID_PRICE = "InvalidPrice"
    INVALID_QUANTITY = "InvalidQuantity"
    PRICE_OUT_OF_BOUNDS = "PriceOutOfBounds"
    REDUCE_ONLY_NOT_PERP = "ReduceOnlyNotPerp"
    NO_REFERENCE_PRICE = "NoReferencePrice"
    ORDER_NOT_FOUND = "OrderNotFound"


class OrderBookState(StrEnum):
    OPEN = "Open"
    CLOSED = "Closed"
    CANCEL_ONLY = "CancelOnly"
    LIMIT_ONLY = "LimitOnly"
    POST_ONLY = "PostOnly"


class CancelKind(StrEnum):
    """Backpack's CancelOrderTypeEnum for cancel-all."""

    RESTING_LIMIT_ORDER = "RestingLimitOrder"
    CONDITIONAL_ORDER = "ConditionalOrder"


@dataclass(slots=True, frozen=True)
class Attached:
    """A stop-loss or take-profit attached to an order.

    Backpack's flat ``stopLossTriggerPrice`` / ``stopLossLimitPrice`` /
    ``stopLossTriggerBy`` (and ``takeProfit*``) map onto one of these each.
    ``limit_price`` None means the child is a market order when it fires.
    """

    trigger_price: int
    limit_price: int | None = None
    trigger_by: TriggerBy = TriggerBy.LAST_PRICE


@dataclass(slots=True)
class PlaceOrder:
    """Command: place one order. Ids are assigned by the caller.

    Enum fields may hold their plain string values (a command built from stored
    data): the book accepts the valid ones and rejects the rest as InvalidOrder.

    Exactly one of ``quantity`` / ``quote_quantity`` (market orders only) is
    given. ``stop_loss_order_id`` / ``take_profit_order_id`` are the ids the
    child trigger orders will carry when the parent fills.
    """

    # ints, typed Any so that a class compiled by mypyc keeps the caller's int
    # object (an int field is stored unboxed, and boxed anew at every read): the
    # same object then keys every dict of the book
    order_id: Any
    account: Any
    side: Side | str
    order_type: OrderType | str = OrderType.LIMIT
    price: int | None = None
    quantity: int | None = None
    quote_quantity: int | None = None
    time_in_force: TimeInForce | str = TimeInForce.GTC
    post_only: bool = False
    reduce_only: bool = False
    client_id: int | None = None
    self_trade_prevention: SelfTradePrevention | str = SelfTradePrevention.REJECT_TAKER
    trigger_price: int | None = None
    trigger_by: TriggerBy | str = TriggerBy.LAST_PRICE
    stop_loss: Attached | None = None
    take_profit: Attached | None = None
    stop_loss_order_id: int | None = None
    take_profit_order_id: int | None = None
    created_at: int | None = None


@dataclass(slots=True)
class MarketRules:
    """Per-market parameters. Quantities in lots; multipliers as Decimals.

    A multiplier set to None disables that check (useful in tests).
    """

    symbol: str
    tick_size: Decimal
    step_size: Decimal
    perp: bool = False
    min_quantity: int = 1
    max_quantity: int | None = None
    min_multiplier: Decimal | None = Decimal("0.75")
    max_multiplier: Decimal | None = Decimal("1.25")
    min_impact_multiplier: Decimal | None = Decimal("0.95")
    max_impact_multiplier: Decimal | None = Decimal("1.05")
    state: OrderBookState = OrderBookState.OPEN
    scale: Scale = field(init=False)
    band_low: tuple[int, int] | None = field(init=False)
    band_high: tuple[int, int] | None = field(init=False)
    impact_low: tuple[int, int] | None = field(init=False)
    impact_high: tuple[int, int] | None = field(init=False)

    def __post_init__(self) -> None:
        self.scale = Scale(self.tick_size, self.step_size)
        self.band_low = _opt_ratio(self.min_multiplier)
        self.band_high = _opt_ratio(self.max_multiplier)
        self.impact_low = _opt_ratio(self.min_impact_multiplier)
        self.impact_high = _opt_ratio(self.max_impact_multiplier)


def _opt_ratio(multiplier: Decimal | None) -> tuple[int, int] | None:
    return None if multiplier is None else ratio(multiplier)


class Order:
    """The book's mutable record of one open order (resting or in matching).

    ``cmd`` keeps the immutable request (side, type, time in force, ...); the
    fields the matcher touches live in slots. ``live`` is False once the order
    left the book (price levels delete lazily); ``level`` is set while it
    rests. ``special`` marks what the plain matching loop hands over to the
    general one: a reduce-only order or one with an attached stop-loss /
    take-profit. ``spawned`` (set only on orders with an attached stop-loss /
    take-profit) records which children were created: bit 1 stop-loss, bit 2
    take-profit.

    ``acct_prev`` / ``acct_next`` thread the order into its account's list of
    open orders (resting and trigger-pending, oldest first): a circular doubly
    linked list through the orders themselves, whose head is a bare ``Order``
    (the book's ``_by_account[account]``), so that leaving the list is a few
    pointer writes rather than a deletion from a per-account hash table. Both
    are None (or unset) while the order is not in such a list.

    There is no ``__init__``: ``Order()`` runs no Python code and the book's
    fast path sets the slots itself; :meth:`new` fills them from a command.
    """

    # (compiled by mypyc, the fields are laid out in this order: the ones a cancel
    # touches first, the flags packed together, so an order spans fewer cache lines)
    __slots__ = (
        "account",
        "level",
        "remaining",
        "executed",
        "executed_quote",
        "client_id",
        "acct_prev",
        "acct_next",
        "id",
        "is_bid",
        "reduce_only",
        "live",
        "special",
        "price",
        "quantity",
        "cmd",
        "spawned",
    )

    account: Any  # int; Any: the command's int object, kept as is (see PlaceOrder)
    level: Level
    remaining: int
    executed: int
    executed_quote: int
    client_id: int | None
    acct_prev: Order | None  # the account's list of open orders, see above
    acct_next: Order | None
    id: Any  # int; as account
    is_bid: bool
    reduce_only: bool
    live: bool
    special: bool
    price: int | None
    quantity: int | None  # None: market order by quote quantity
    cmd: PlaceOrder
    spawned: int

    @classmethod
    def new(
        cls,
        cmd: PlaceOrder,
        quantity: int | None,
        price: int | None,
        reduce_only: bool,
    ) -> Self:
        order = cls()
        order.id = cmd.order_id
        order.account = cmd.account
        order.is_bid = cmd.side == Side.BID
        order.price = price
        order.quantity = quantity
        order.remaining = quantity if quantity is not None else 0
        order.executed = 0
        order.executed_quote = 0
        order.client_id = cmd.client_id
        order.reduce_only = reduce_only
        order.live = True
        order.acct_prev = order.acct_next = None
        order.cmd = cmd
        order.special = reduce_only or cmd.stop_loss is not None or cmd.take_profit is not None
        return order

    @property
    def side(self) -> Side:
        return Side.BID if self.is_bid else Side.ASK

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(id={self.id}, account={self.account}, "
            f"side={self.side}, price={self.price}, "
            f"remaining={self.remaining}/{self.quantity})"
        )


class TriggerOrder(Order):
    """An order waiting for its trigger price (status TriggerPending).

    ``parent_id`` / ``sibling_id`` are set on stop-loss / take-profit children
    (the OCO partner is cancelled when this one fires). ``arrival`` orders
    triggers that fire together.
    """

    __slots__ = ("direction", "parent_id", "sibling_id", "arrival")

    direction: TriggerDirection
    parent_id: int | None
    sibling_id: int | None
    arrival: int

    @classmethod
    def new_trigger(
        cls,
        cmd: PlaceOrder,
        quantity: int | None,
        direction: TriggerDirection,
        parent_id: int | None = None,
        sibling_id: int | None = None,
    ) -> Self:
        order = cls.new(cmd, quantity, cmd.price, cmd.reduce_only)
        order.direction = direction
        order.parent_id = parent_id
        order.sibling_id = sibling_id
        order.arrival = 0
        return order
