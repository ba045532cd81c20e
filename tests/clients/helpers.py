"""ccxt's `backpack` class (and ccxt.pro's) pointed at our server."""

import ccxt
import ccxt.pro

SOL = "SOL/USDC"
SOL_PERP = "SOL/USDC:USDC"


def backpack(url: str, credentials: dict | None = None, *, pro: bool = False):  # noqa: ANN201
    """A ccxt client of the server at `url`, signed with demo_account's credentials."""
    module = ccxt.pro if pro else ccxt
    config: dict = {"enableRateLimit": True}
    if credentials:
        config.update(apiKey=credentials["apiKey"], secret=credentials["apiSecret"])
    exchange = module.backpack(config)
    ws = url.replace("http://", "ws://") + "/ws"
    exchange.urls["api"] = {
        "public": url,
        "private": url,
        "ws": {"public": ws, "private": ws},
    }
    # ccxt waits for 10 depth deltas before it takes the REST snapshot (Backpack's books
    # never rest); a test's book is quiet, so take the snapshot at the first delta.
    exchange.options["watchOrderBook"] = {"snapshotDelay": 0}
    return exchange
