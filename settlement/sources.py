"""Price sources: where an asset's index price comes from.

A ``PriceSource`` answers ``prices(symbols)`` with the current USD price of each symbol it
knows (an asset it cannot price is left out; the tick then keeps that asset's previous
index). The tick calls each source once per second with all the assets configured for it.

* ``SimulatedSource`` - the default: a seeded geometric random walk per asset
  (settlement/prices.py), so a machine with no network has a living market.
* ``CoinGeckoSource`` - an example adapter for a real venue's HTTP JSON API, configured
  in ``SOURCES`` and selectable per asset in admin, but not used by default (the exchange
  runs without network).

Manual prices set in admin are not a source: they override whatever source an asset uses
while they are set (settlement/services.py).
"""

import json
import logging
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Protocol

from settlement import prices

log = logging.getLogger(__name__)


class PriceSource(Protocol):
    """Current USD prices of assets, by asset symbol."""

    def prices(self, symbols: Iterable[str]) -> dict[str, Decimal]: ...


@dataclass(frozen=True)
class WalkState:
    """One asset's simulated walk: where it stands and how it moves."""

    price: Decimal
    volatility: Decimal
    seed: int
    step: int


class SimulatedSource:
    """The seeded random walk: each call to ``prices`` advances every asset one step.

    The state (last price, volatility, seed, step) lives in the database; the caller
    passes it in and stores the advanced step back, so the walk is the same whichever
    process runs the tick.
    """

    def __init__(self, states: Mapping[str, WalkState]) -> None:
        self.states = dict(states)

    def prices(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        out = {}
        for symbol in symbols:
            state = self.states.get(symbol)
            if state is None:
                continue
            out[symbol] = prices.walk_step(state.price, state.volatility, state.seed, state.step)
        return out


class HttpJsonSource:
    """Base of real-venue adapters: GET a URL, parse JSON with exact decimals."""

    timeout_seconds = 2.0
    user_agent = "exchange-price-source/1"

    def get_json(self, url: str) -> object:
        request = urllib.request.Request(
            url, headers={"Accept": "application/json", "User-Agent": self.user_agent}
        )
        with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:  # noqa: S310
            # Numbers as Decimal: a price never passes through a float.
            return json.load(response, parse_float=Decimal, parse_int=Decimal)

    def prices(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        raise NotImplementedError


class CoinGeckoSource(HttpJsonSource):
    """CoinGecko's public simple-price endpoint:

    GET {base_url}/simple/price?ids=bitcoin,solana&vs_currencies=usd&precision=full
    -> {"bitcoin": {"usd": 90123.45}, "solana": {"usd": 151.2}}

    `ids` maps our asset symbols to CoinGecko ids (Asset.coingecko_id supplies them).
    """

    def __init__(
        self, ids: Mapping[str, str], base_url: str = "https://api.coingecko.com/api/v3"
    ) -> None:
        self.ids = dict(ids)
        self.base_url = base_url.rstrip("/")

    def url(self, coin_ids: Iterable[str]) -> str:
        query = urllib.parse.urlencode(
            {"ids": ",".join(sorted(set(coin_ids))), "vs_currencies": "usd", "precision": "full"}
        )
        return f"{self.base_url}/simple/price?{query}"

    def parse(self, payload: object, symbols: Iterable[str]) -> dict[str, Decimal]:
        """Our symbols' USD prices out of the response; missing or malformed ones are left out."""
        out: dict[str, Decimal] = {}
        if not isinstance(payload, dict):
            return out
        for symbol in symbols:
            entry = payload.get(self.ids.get(symbol, ""))
            if not isinstance(entry, dict) or "usd" not in entry:
                continue
            try:
                value = Decimal(entry["usd"])
            except (InvalidOperation, TypeError, ValueError):
                continue
            if value.is_finite() and value > 0:
                out[symbol] = value
        return out

    def prices(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        wanted = [s for s in symbols if self.ids.get(s)]
        if not wanted:
            return {}
        return self.parse(self.get_json(self.url(self.ids[s] for s in wanted)), wanted)


# Sources selectable in admin besides the simulated feed: name -> factory taking
# {asset symbol: coingecko id}. Configured, not used unless an admin picks one.
SOURCES = {
    "coingecko": lambda ids: CoinGeckoSource(ids),
}
