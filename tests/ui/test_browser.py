"""The browser UI in real headless Chromium (Playwright) against the real server
(`manage.py serve`, embedded default, demo market makers on) on a SQLite file of its own:
sign up, faucet, a limit order in the book and in open orders, cancel it, an order placed
and cancelled through the API showing up live from the private streams (no /ui/api/state
read in between, no polling), a market buy with its fill and balance change, auto lend,
and a perp position whose PnL moves with the mark on account.positionUpdate. Screenshots
of every page (desktop and phone) go to artifacts/screenshots/; every page fits a phone's
width."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest

from tests.clients.helpers import SOL, backpack
from tests.clients.server import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
VENDOR = ROOT / "static" / "vendor" / "lightweight-charts.mjs"
SHOTS = ROOT / "artifacts" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "a-long-test-password-42"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
    pytest.mark.skipif(
        not VENDOR.exists(),
        reason="static/vendor/lightweight-charts.mjs missing: run `make install-test` (npm ci)",
    ),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="needs playwright")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/status", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("ui-server")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{work / 'ui.sqlite3'}",
        "DEMO_MARKET_MAKERS": "1",
        "LOG_LEVEL": "WARNING",
    }
    for name in ("REDIS_URL", "ENGINE_CLIENT", "ENGINE_CHANNEL"):
        env.pop(name, None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = work / "server.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [*manage, "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not _ready(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=server)
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    yield pg
    context.close()


def shoot(browser, page, name: str, path: str) -> None:
    """Desktop and phone screenshots of `path`, signed in as the page's user."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(path)
    page.wait_for_timeout(2500)
    page.screenshot(path=str(SHOTS / f"{name}-desktop.png"), full_page=True)
    phone = browser.new_context(viewport={"width": 390, "height": 844})
    phone.add_cookies(page.context.cookies())
    pp = phone.new_page()
    pp.goto(page.url)
    pp.wait_for_timeout(2500)
    pp.screenshot(path=str(SHOTS / f"{name}-phone.png"), full_page=True)
    phone.close()


def balance_cell(page, asset: str, column: int) -> Decimal:
    text = page.locator(f'#balances tr[data-asset="{asset}"] td').nth(column).inner_text()
    return Decimal(text.strip() or "0")


def wait_until(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def place(page, side: str, kind: str, quantity: str, price: str | None = None) -> None:
    page.click("#side-buy" if side == "Bid" else "#side-sell")
    page.select_option("#order-type", kind)
    if price is not None:
        page.fill("#price", price)
    page.fill("#quantity", quantity)
    page.click("#submit-order")


def create_api_key(page) -> dict:
    """A key made on the account page: {"apiKey", "apiSecret"} as shown once."""
    page.goto("/account/")
    page.fill("input[name=label]", "browser-test")
    page.click("text=Create API key")
    page.wait_for_selector("#new-api-secret")
    return {
        "apiKey": page.inner_text("#new-api-key").strip(),
        "apiSecret": page.inner_text("#new-api-secret").strip(),
    }


def state_reads(page, refuse: bool) -> list[float]:
    """Record the page's /ui/api/state requests (their times); with `refuse`, every one
    fails, so that what the page shows can only have come from the streams."""
    seen: list[float] = []
    page.on(
        "request",
        lambda r: seen.append(time.monotonic()) if "/ui/api/state" in r.url else None,
    )
    if refuse:
        page.route("**/ui/api/state*", lambda route: route.abort())
    return seen


def stream_frames(page) -> list[dict]:
    """Record the stream frames the page's sockets receive from now on (numbers as
    Decimal)."""
    frames: list[dict] = []

    def on_socket(ws) -> None:  # noqa: ANN001
        def on_frame(payload) -> None:  # noqa: ANN001
            if isinstance(payload, str) and payload.startswith('{"stream":'):
                frames.append(json.loads(payload, parse_float=Decimal))

        ws.on("framereceived", on_frame)

    page.on("websocket", on_socket)
    return frames


def open_trade_page_live(page, symbol: str) -> None:
    page.goto(f"/trade/{symbol}/")
    page.wait_for_selector('[data-private-status="live"]')
    page.wait_for_selector("#asks tr[data-price]")


@pytest.fixture(scope="module")
def api(page):
    """ccxt's backpack client with a key made on the account page: another channel than
    the page's own."""
    credentials = create_api_key(page)
    client = backpack(re.match(r"https?://[^/]+", page.url).group(0), credentials)
    client.load_markets()
    return client


def bid_below_market(page, factor: str) -> Decimal:
    """A bid price on the tick grid well below the live book's best bid (nothing sells
    into it), with a last digit that no normalisation drops."""
    best_bid = Decimal(page.locator("#bids tr[data-price]").first.get_attribute("data-price"))
    return (best_bid * Decimal(factor)).quantize(Decimal("0.1"), ROUND_DOWN) + Decimal("0.07")


def test_1_sign_up_and_faucet(page):
    page.goto("/signup/")
    page.fill("#id_username", "browser-user")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url("**/account/")
    for symbol in ("USDC", "SOL"):
        page.select_option("select[name=symbol] >> nth=0", symbol)
        page.click("text=Get test funds")
        page.wait_for_selector(f'#balances tr[data-asset="{symbol}"]')
    assert balance_cell(page, "USDC", 1) > 0
    assert balance_cell(page, "SOL", 1) > 0


def test_2_limit_order_in_book_and_open_orders_then_cancel(page, browser):
    page.goto("/trade/SOL_USDC/")
    page.wait_for_selector("#bids tr[data-price]")
    price = bid_below_market(page, "0.99")
    place(page, "Bid", "Limit", "0.5", str(price))
    page.wait_for_selector("#order-result:not([hidden])")
    assert "New" in page.inner_text("#order-result")
    page.wait_for_selector(f'#bids tr[data-price="{price}"]')  # in the live book
    row = page.locator("#open-orders tbody tr[data-order-id]")
    row.first.wait_for()
    assert str(price) in row.first.inner_text()
    shoot(browser, page, "trade", "/trade/SOL_USDC/")
    page.locator("#open-orders button.cancel").first.click()
    page.wait_for_selector("#open-orders tbody tr[data-order-id]", state="detached")
    page.wait_for_selector(f'#bids tr[data-price="{price}"]', state="detached")


def test_2b_api_orders_appear_and_go_live_from_the_private_stream_without_polling(page, api):
    open_trade_page_live(page, "SOL_USDC")
    reads = state_reads(page, refuse=True)
    price = bid_below_market(page, "0.98")
    order = api.create_order(SOL, "limit", "buy", 0.3, float(price))
    row = page.locator(f'#open-orders tr[data-order-id="{order["id"]}"]')
    row.wait_for()
    assert str(price) in row.inner_text() and "New" in row.inner_text()
    history = page.locator(f'#order-history tr[data-order-id="{order["id"]}"]')
    api.cancel_order(order["id"], SOL)
    row.wait_for(state="detached")
    assert "Cancelled" in history.inner_text()
    # Every snapshot read since the page was live failed: the rows came from the stream.
    page.unroute("**/ui/api/state*")
    assert page.evaluate("window.accountFeed.status") == "live"
    # No polling: with nothing happening to the account, at most the 30 s fallback reads.
    page.wait_for_timeout(1500)  # the debounced read after the cancel
    quiet_from = time.monotonic()
    page.wait_for_timeout(6500)
    assert len([t for t in reads if t >= quiet_from]) <= 1, reads


def test_2c_after_a_reconnect_the_page_catches_up_and_is_live_again(page, api):
    open_trade_page_live(page, "SOL_USDC")
    subscribed = page.evaluate("window.accountFeed.subscriptions")
    # The socket drops and comes back after 3 s; an order placed meanwhile is told to
    # nobody: the snapshot read after the private streams are subscribed again shows it.
    page.evaluate("window.pageStream.delay = 3000; window.pageStream.ws.close()")
    page.wait_for_selector('[data-private-status="reconnecting"]')
    missed = api.create_order(SOL, "limit", "buy", 0.2, float(bid_below_market(page, "0.97")))
    wait_until(
        lambda: page.evaluate("window.accountFeed.subscriptions") > subscribed,
        20,
        "the private streams subscribed again",
    )
    page.locator(f'#open-orders tr[data-order-id="{missed["id"]}"]').wait_for()
    # Live again: with every snapshot read refused, the next order comes by the stream.
    state_reads(page, refuse=True)
    live = api.create_order(SOL, "limit", "buy", 0.2, float(bid_below_market(page, "0.96")))
    page.locator(f'#open-orders tr[data-order-id="{live["id"]}"]').wait_for()
    api.cancel_all_orders(SOL)
    page.wait_for_selector("#open-orders tbody tr[data-order-id]", state="detached")
    page.unroute("**/ui/api/state*")


def test_3_market_buy_fills_and_changes_the_balance(page):
    page.goto("/account/")
    sol_before = balance_cell(page, "SOL", 1)
    page.goto("/trade/SOL_USDC/")
    page.wait_for_selector("#asks tr[data-price]")
    place(page, "Bid", "Market", "0.2")
    page.wait_for_selector("#order-result:not([hidden])")
    assert "Filled" in page.inner_text("#order-result")
    page.click("button[data-tab=tab-fills]")
    page.wait_for_selector("#fills tbody tr:not(.empty)")
    cells = page.locator("#fills tbody tr").first.locator("td")
    assert Decimal(cells.nth(3).inner_text()) == Decimal("0.2")
    fee, fee_symbol = cells.nth(4).inner_text().split()
    received = Decimal("0.2") - (Decimal(fee) if fee_symbol == "SOL" else 0)
    page.goto("/account/")
    assert balance_cell(page, "SOL", 1) == sol_before + received


def test_4_an_order_refused_for_margin_says_so_next_to_the_form(page):
    page.goto("/trade/SOL_USDC_PERP/")
    page.wait_for_selector("#asks tr[data-price]")
    place(page, "Bid", "Market", "50000")
    page.wait_for_selector("#order-error:not([hidden])")
    assert re.search(r"INSUFFICIENT|MARGIN|FUNDS", page.inner_text("#order-error"))


def test_5_auto_lend_shows_the_lent_amount(page, browser):
    page.goto("/account/")
    page.check("#id_autoLend")
    page.click("text=Save settings")
    page.wait_for_selector("text=Settings saved.")

    def lent() -> Decimal:
        page.reload()
        page.wait_for_timeout(1500)
        text = page.locator('#balances tr[data-asset="USDC"] td.lent').inner_text().strip()
        return Decimal(text) if text not in ("", "–") else Decimal(0)

    wait_until(lambda: lent() > 0, 40, "the lent USDC on the account page")
    shoot(browser, page, "account", "/account/")
    shoot(browser, page, "lend", "/lend/")
    shoot(browser, page, "markets", "/markets/")


def shown_mark_and_pnl(row) -> tuple[Decimal, Decimal]:  # noqa: ANN001
    """A position row's mark and PnL as the page has them (a cut value carries its full
    text in its title), read at one instant."""
    mark, pnl = row.evaluate(
        "tr => ['.mark', '.pnl'].map((c) => { const td = tr.querySelector(c);"
        " return td.querySelector('span[title]')?.title ?? td.textContent; })"
    )
    return Decimal(mark), Decimal(pnl)


def test_6_a_perp_position_pnl_moves_with_the_mark(page, browser):
    frames = stream_frames(page)
    open_trade_page_live(page, "SOL_USDC_PERP")
    page.fill("#stop-loss", "1")  # a stop loss far below: it waits as a trigger order
    place(page, "Bid", "Market", "2")
    page.wait_for_selector("#order-result:not([hidden])")
    assert "Filled" in page.inner_text("#order-result"), page.inner_text("#order-result")
    page.fill("#stop-loss", "")
    open_orders = page.locator("#open-orders tbody")
    wait_until(lambda: "@1" in open_orders.inner_text(), 20, "the stop loss in open orders")
    page.click("button[data-tab=tab-positions]")
    row = page.locator('#positions tr[data-symbol="SOL_USDC_PERP"]')
    row.wait_for()
    # From here on every /ui/api/state read fails: what moves comes from the stream.
    state_reads(page, refuse=True)
    first = shown_mark_and_pnl(row)

    def moved_by_an_update() -> bool:
        shown = shown_mark_and_pnl(row)
        told = {
            (f["data"]["M"], Decimal(f["data"]["P"]))
            for f in frames
            if f["stream"] == "account.positionUpdate" and f["data"]["s"] == "SOL_USDC_PERP"
        }
        return shown[1] != first[1] and shown in told

    wait_until(moved_by_an_update, 40, "the PnL to move to a positionUpdate's mark and PnL")
    assert Decimal(row.locator("td").nth(1).inner_text()) == Decimal(2)
    page.unroute("**/ui/api/state*")
    # The chart's mark line follows markPrice.<symbol> (no kline polling for perps).
    page.click('#price-type button[data-value="Mark"]')
    wait_until(
        lambda: (
            page.get_attribute("#chart", "data-last")
            in {f["data"]["p"] for f in frames if f["stream"] == "markPrice.SOL_USDC_PERP"}
        ),
        20,
        "the mark line at a markPrice frame's price",
    )
    shoot(browser, page, "trade-perp", "/trade/SOL_USDC_PERP/")


def test_7_depth_gap_resyncs_from_the_snapshot_and_no_page_error(page):
    page.goto("/trade/SOL_USDC/")
    page.wait_for_selector("#bids tr[data-price]")
    before = page.evaluate("window.depthBook.resyncs")
    page.evaluate(
        "window.depthBook.update({U: window.depthBook.lastU + 5, u: window.depthBook.lastU + 6,"
        " a: [['999999', '1']], b: []})"
    )
    wait_until(lambda: page.evaluate("window.depthBook.resyncs") > before, 10, "a resync")
    page.wait_for_timeout(1000)
    assert page.locator('#asks tr[data-price="999999"]').count() == 0
    assert page.errors == []


def test_8_every_page_fits_a_phone_and_its_trade_page_is_live(page, browser, server):
    phone = browser.new_context(viewport={"width": 390, "height": 844}, base_url=server)
    phone.add_cookies(page.context.cookies())
    pp = phone.new_page()
    pp.set_default_timeout(20_000)
    try:
        for path in (
            "/markets/",
            "/trade/SOL_USDC/",
            "/trade/SOL_USDC_PERP/",
            "/account/",
            "/lend/",
        ):
            pp.goto(path)
            pp.wait_for_timeout(1000)
            # Wide tables scroll inside their cards; the page itself never scrolls sideways.
            overflow = pp.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (path, overflow)
        pp.goto("/trade/SOL_USDC_PERP/")
        pp.wait_for_selector('[data-private-status="live"]')
        row = pp.locator('#positions tr[data-symbol="SOL_USDC_PERP"]')
        row.scroll_into_view_if_needed()
        assert row.is_visible()
        pp.click("button[data-tab=tab-open]")
        assert pp.locator("#open-orders").is_visible()
    finally:
        phone.close()
