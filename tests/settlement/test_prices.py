"""The price layer: the simulated index, manual prices, the mark rule, the premium EMA,
index/mark klines and the one-second task (settlement/prices.py, settlement/services.py)."""

import time
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN
from decimal import Decimal as D

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Asset
from settlement import prices, services, sources
from settlement.models import MarkPrice, PremiumSample, PriceKline, PriceSetting
from settlement.tasks import update_prices as update_prices_task
from trading import klines as kl
from trading.models import Market

pytestmark = pytest.mark.django_db

PERPS = ("SOL_USDC_PERP", "BTC_USDC_PERP", "ETH_USDC_PERP")
T0 = datetime(2026, 3, 2, 10, 0, 1, tzinfo=UTC)  # a Monday, 1 s into the hour


@pytest.fixture(autouse=True)
def _no_books_left_behind():
    """Books are put in the (process-wide) cache by each test itself; none survive it."""
    yield
    cache.delete_many([f"depth:{m.symbol}" for m in Market.objects.all()])


def book(symbol: str, bids: list[str], asks: list[str]) -> None:
    """Publish a depth snapshot the way the engine does (both sides ascending by price)."""
    levels = lambda prices_: [[p, "1"] for p in sorted(prices_, key=D)]  # noqa: E731
    cache.set(f"depth:{symbol}", {"bids": levels(bids), "asks": levels(asks)}, timeout=None)


def index_of(symbol: str) -> D:
    return Asset.objects.get(symbol=symbol).index_price


# The simulated feed ---------------------------------------------------------------------


def test_random_walk_is_deterministic_per_seed():
    first = prices.random_walk(D("150"), D("0.001"), seed=7, steps=50)
    again = prices.random_walk(D("150"), D("0.001"), seed=7, steps=50)
    other = prices.random_walk(D("150"), D("0.001"), seed=8, steps=50)
    assert first == again
    assert first != other
    assert len(set(first)) == 50  # it moves every step
    assert all(isinstance(p, D) for p in first)


def test_random_walk_never_goes_negative_even_at_extreme_volatility():
    calm = prices.random_walk(D("1"), D("0.1"), seed=3, steps=2000)
    wild = prices.random_walk(D("0.001"), D("5"), seed=3, steps=300)
    assert min(calm) > 0
    assert min(wild) >= prices.MIN_PRICE


def test_normal_draws_are_decimal_with_mean_near_zero_and_variance_near_one():
    rng = prices.step_rng(11, 0)
    draws = [prices.normal_draw(rng) for _ in range(4000)]
    mean = sum(draws, D(0)) / len(draws)
    variance = sum(((z - mean) ** 2 for z in draws), D(0)) / len(draws)
    assert abs(mean) < D("0.06")
    assert D("0.9") < variance < D("1.1")
    assert all(D(-6) <= z <= D(6) for z in draws)


def test_the_tick_walks_each_asset_exactly_as_the_pure_walk_from_its_seed():
    sol = PriceSetting.objects.get(asset_id="SOL")
    start = index_of("SOL")
    expected = prices.random_walk(start, sol.volatility, sol.seed, steps=3)
    for second in range(3):
        services.update_prices(T0 + timedelta(seconds=second))
    assert index_of("SOL") == expected[-1]
    assert PriceSetting.objects.get(asset_id="SOL").step == 3


def test_zero_volatility_keeps_an_asset_still():
    services.update_prices(T0)
    assert index_of("USDT") == D("1")  # seeded flat


# Manual prices and the pinned quote -------------------------------------------------------


def test_a_manual_price_overrides_the_feed_while_set_then_the_walk_resumes_from_it():
    services.set_manual_price("SOL", D("123.45"))
    assert index_of("SOL") == D("123.45")  # at once, before any tick
    services.update_prices(T0)
    services.update_prices(T0 + timedelta(seconds=1))
    assert index_of("SOL") == D("123.45")

    services.set_manual_price("SOL", None)
    services.update_prices(T0 + timedelta(seconds=2))
    resumed = index_of("SOL")
    assert resumed != D("123.45")
    assert abs(resumed - D("123.45")) < D("123.45") * D("0.01")


def test_usdc_stays_one_whatever_its_settings_say():
    PriceSetting.objects.filter(asset_id="USDC").update(
        manual_price=D("1.5"), volatility=D("0.05"), source="coingecko"
    )
    Asset.objects.filter(symbol="USDC").update(index_price=D("0.97"))
    services.update_prices(T0)
    services.update_prices(T0 + timedelta(seconds=1))
    assert index_of("USDC") == D("1")
    with pytest.raises(ValueError):
        services.set_manual_price("USDC", D("2"))
    with pytest.raises(ValidationError):
        PriceSetting(asset_id="USDC", manual_price=D("2")).full_clean()


def test_a_failing_source_keeps_the_previous_index(monkeypatch):
    def offline(ids):
        class Offline:
            def prices(self, symbols):
                raise OSError("no network")

        return Offline()

    monkeypatch.setitem(sources.SOURCES, "coingecko", offline)
    PriceSetting.objects.filter(asset_id="BTC").update(source="coingecko")
    before = index_of("BTC")
    services.update_prices(T0)
    assert index_of("BTC") == before


def test_the_coingecko_adapter_parses_its_json_shape_into_decimals():
    source = sources.CoinGeckoSource({"BTC": "bitcoin", "SOL": "solana", "ETH": "ethereum"})
    assert source.url(["solana", "bitcoin"]) == (
        "https://api.coingecko.com/api/v3/simple/price"
        "?ids=bitcoin%2Csolana&vs_currencies=usd&precision=full"
    )
    payload = {"bitcoin": {"usd": D("90123.45")}, "solana": {"usd": D("151.2")}, "x": 1}
    parsed = source.parse(payload, ["BTC", "SOL", "ETH"])
    assert parsed == {"BTC": D("90123.45"), "SOL": D("151.2")}


# Premium, EMA and the mark rule (pure) ------------------------------------------------------


@pytest.mark.parametrize(
    ("bid", "ask", "index", "expected"),
    [
        ("99", "101", "100", "0"),
        ("100", "102", "100", "0.01"),
        ("98", "98", "100", "-0.02"),
        (None, "101", "100", None),
        ("99", None, "100", None),
    ],
)
def test_premium_is_mid_over_index_minus_one_and_needs_both_sides(bid, ask, index, expected):
    got = prices.premium(bid and D(bid), ask and D(ask), D(index))
    assert got == (expected and D(expected))


def test_ema_alpha_is_two_over_samples_plus_one():
    assert prices.ema_alpha() == D(2) / D(361)  # 30 minutes of 5-second samples
    assert prices.ema_alpha(60, 5) == D(2) / D(13)


@pytest.mark.parametrize(
    ("samples", "alpha", "start", "expected"),
    [
        # alpha 1/2 from no history (0): 0.005, then 0.0175, then 0.00375
        (["0.01", "0.03", "-0.01"], "0.5", None, "0.00375"),
        # from a previous EMA of 0.002: 0.002 + 0.1 x (0.012 - 0.002) = 0.003
        (["0.012"], "0.1", "0.002", "0.003"),
        # a constant sample is approached, never overshot: 0.01 x (1 - 0.5^3)
        (["0.01", "0.01", "0.01"], "0.5", None, "0.00875"),
        # SPEC's alpha, one sample of 0.1%: 0.001 x 2/361, rounded to 18 places
        (["0.001"], None, None, "0.000005540166204986"),
        ([], "0.5", "0.004", "0.004"),
    ],
)
def test_ema_over_hand_made_samples(samples, alpha, start, expected):
    alpha = D(alpha) if alpha else prices.DEFAULT_ALPHA
    got = prices.ema([D(s) for s in samples], alpha, start and D(start))
    assert got == D(expected)


@pytest.mark.parametrize(
    ("index", "ema", "bid", "ask", "previous", "expected"),
    [
        # fair 100.2 lies between the sides: median(100.2, 100.1, 100.5) = 100.2
        ("100", "0.002", "100.1", "100.5", "100", "100.2"),
        # the book sits above fair: median(100, 100.4, 100.6) = 100.4
        ("100", "0", "100.4", "100.6", "100", "100.4"),
        # no bids: median(100.1, 100.5) = their mean, 100.3
        ("100", "0.001", None, "100.5", "100", "100.3"),
        # no asks: median(100.1, 99.9) = 100.0
        ("100", "0.001", "99.9", None, "100", "100.0"),
        # no book at all: the fair price, 100 x (1 - 0.003) = 99.7
        ("100", "-0.003", None, None, "100", "99.7"),
        # median 103 is capped at +1% of the previous mark: 101
        ("103", "0", "103", "103.2", "100", "101"),
        # median 97 is capped at -1%: 99
        ("97", "0", "96.9", "97.1", "100", "99"),
        # the first mark (no previous) is not capped
        ("103", "0", "103", "103.2", None, "103"),
    ],
)
def test_mark_is_the_median_of_fair_price_and_book_sides_capped_at_one_percent(
    index, ema, bid, ask, previous, expected
):
    got = prices.mark_price(
        D(index), D(ema), bid and D(bid), ask and D(ask), previous and D(previous)
    )
    assert got == D(expected)


# The tick: marks, premium samples, klines ---------------------------------------------------


def test_the_tick_marks_a_perp_by_the_median_rule_and_samples_its_premium():
    services.set_manual_price("SOL", D("150"))
    book("SOL_USDC_PERP", bids=["150.9", "151.2"], asks=["151.8", "152.4"])
    services.update_prices(T0)
    mark = MarkPrice.objects.get(market_id="SOL_USDC_PERP")
    # premium = (151.5 - 150) / 150 = 0.01; EMA from 0: 0.01 x 2/361
    ema = prices.ema_update(None, D("0.01"))
    assert mark.ema_premium == ema
    assert mark.index_price == D("150")
    # first mark: median(150 x (1 + ema) = 150.0083.., 151.2, 151.8) = 151.2
    assert mark.mark_price == D("151.2")
    sample = PremiumSample.objects.get(market_id="SOL_USDC_PERP")
    assert (sample.premium, sample.mid_price, sample.at) == (
        D("0.01"),
        D("151.5"),
        T0 - timedelta(seconds=1),
    )

    # The bids vanish and the asks jump: median(fair, 160) ~ 155, capped at +1% of 151.2.
    book("SOL_USDC_PERP", bids=[], asks=["160"])
    services.update_prices(T0 + timedelta(seconds=5))
    mark.refresh_from_db()
    assert mark.mark_price == D("152.712")
    assert mark.ema_premium == ema  # no sample without both sides
    assert PremiumSample.objects.filter(market_id="SOL_USDC_PERP").count() == 1


def test_premium_samples_are_one_per_five_second_slot():
    services.set_manual_price("BTC", D("90000"))
    book("BTC_USDC_PERP", bids=["90080"], asks=["90100"])  # premium 0.1%
    for second in range(12):  # 10:00:01 .. 10:00:12: slots :00, :05, :10
        services.update_prices(T0 + timedelta(seconds=second))
    samples = PremiumSample.objects.filter(market_id="BTC_USDC_PERP")
    assert [s.at.second for s in samples] == [0, 5, 10]
    assert {s.premium for s in samples} == {D("0.001")}
    start = T0.replace(second=0)
    assert services.average_premium("BTC_USDC_PERP", start, start + timedelta(hours=1)) == D(
        "0.001"
    )
    expected = prices.ema([D("0.001")] * 3)
    assert MarkPrice.objects.get(market_id="BTC_USDC_PERP").ema_premium == expected


def test_index_and_mark_klines_update_in_place():
    services.set_manual_price("ETH", D("3000"))
    book("ETH_USDC_PERP", bids=["2999"], asks=["3001"])
    services.update_prices(T0)
    rows = PriceKline.objects.count()
    series = 5 + len(PERPS)  # index per asset, mark per perp
    assert rows == series * len(kl.INTERVALS)

    services.set_manual_price("ETH", D("3010"))
    book("ETH_USDC_PERP", bids=["3009"], asks=["3011"])
    services.update_prices(T0 + timedelta(seconds=10))
    services.set_manual_price("ETH", D("2995"))
    book("ETH_USDC_PERP", bids=["2994"], asks=["2996"])
    services.update_prices(T0 + timedelta(seconds=20))
    assert PriceKline.objects.count() == rows  # same minute: no new candle, none duplicated

    minute = T0.replace(second=0)
    index = PriceKline.objects.get(asset_id="ETH", price_type="Index", interval="1m", start=minute)
    assert (index.open, index.high, index.low, index.close) == (
        D("3000"),
        D("3010"),
        D("2995"),
        D("2995"),
    )
    month = PriceKline.objects.get(asset_id="ETH", price_type="Index", interval="1month")
    assert (month.start, month.close) == (datetime(2026, 3, 1, tzinfo=UTC), D("2995"))
    mark = PriceKline.objects.get(market_id="ETH_USDC_PERP", price_type="Mark", interval="1m")
    marks = [D("3000"), D("3010"), D("2995")]  # book mids equal the index: mark = index
    assert (mark.open, mark.high, mark.low, mark.close) == (
        marks[0],
        max(marks),
        min(marks),
        marks[-1],
    )

    services.update_prices(T0 + timedelta(minutes=1))
    assert PriceKline.objects.filter(interval="1m").count() == 2 * series
    assert PriceKline.objects.filter(interval="1h").count() == series


def test_the_task_run_twice_advances_prices_and_writes_premium_samples(monkeypatch):
    for symbol in PERPS:
        index = index_of(symbol.split("_")[0])
        book(symbol, bids=[str(index * D("0.999"))], asks=[str(index * D("1.003"))])
    before = {s: index_of(s) for s in ("SOL", "BTC", "ETH")}
    clock = iter([T0, T0 + timedelta(seconds=5)])
    monkeypatch.setattr(timezone, "now", lambda: next(clock))

    first = update_prices_task.apply().get()
    second = update_prices_task.apply().get()

    assert first["premiumSamples"] == second["premiumSamples"] == len(PERPS)
    after = {s: index_of(s) for s in before}
    assert all(after[s] != before[s] for s in before)
    assert first["index"]["USDC"] == second["index"]["USDC"] == "1"
    assert PremiumSample.objects.count() == 2 * len(PERPS)
    for sample in PremiumSample.objects.all():
        exact = (sample.mid_price - sample.index_price) / sample.index_price
        assert sample.premium == exact.quantize(D("1e-18"))
    assert set(second["marks"]) == set(PERPS)
    assert cache.get("markPrice:SOL_USDC_PERP")["markPrice"] == second["marks"]["SOL_USDC_PERP"]


def test_the_beat_runs_the_price_task_every_second():
    entry = settings.CELERY_BEAT_SCHEDULE["update-prices"]
    assert entry == {"task": "settlement.update_prices", "schedule": 1.0}


def test_admin_sets_a_manual_price_that_is_the_index_at_once(admin_client):
    url = "/admin/settlement/pricesetting/SOL/change/"
    assert admin_client.get("/admin/settlement/pricesetting/").status_code == 200
    form = {"source": "simulated", "volatility": "0.0003", "manual_price": "142.5", "seed": "3"}
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content[:2000]
    assert index_of("SOL") == D("142.5")


def test_tick_time_with_seven_markets(capsys):
    """Measured, not asserted: a steady-state tick (every candle exists) with the seeded
    7 markets (3 perps), then with 7 perps."""

    def measure(label: str) -> None:
        perps = Market.objects.filter(market_type="PERP")
        for market in perps:
            index = index_of(market.base_id)
            book(market.symbol, bids=[str(index - 1)], asks=[str(index + 1)])
        services.update_prices(T0)  # creates the candles
        ticks, spent = 20, 0
        with CaptureQueriesContext(connection) as queries:
            for second in range(1, ticks + 1):
                started = time.perf_counter_ns()
                services.update_prices(T0 + timedelta(seconds=second))
                spent += time.perf_counter_ns() - started
        per_tick = D(spent) / ticks / D(1_000_000)
        with capsys.disabled():
            print(
                f"\nprice tick ({connection.vendor}, {label}): {per_tick.quantize(D('0.01'))} ms,"
                f" {len(queries) // ticks} queries per tick"
            )

    assert Market.objects.count() == 7
    measure("7 markets, 3 perps")
    seeded = Market.objects.get(symbol="SOL_USDC_PERP")
    for n in range(4):
        seeded.pk = f"SOL{n}_USDC_PERP"
        seeded.save(force_insert=True)
    Market.objects.filter(market_type="SPOT").delete()
    measure("7 perps")


def test_the_average_premium_of_an_hour_of_samples_is_their_exact_mean_rounded_half_even():
    """An hour of samples (720, one per five seconds), averaged where they are stored on
    PostgreSQL: the same mean, to the last digit, as summing them in Python."""
    start = T0.replace(minute=0, second=0)
    values = [D(f"0.000{i % 97:02d}{i % 7}1234567891") * (-1 if i % 3 else 1) for i in range(720)]
    PremiumSample.objects.bulk_create(
        PremiumSample(
            market_id="SOL_USDC_PERP",
            at=start + timedelta(seconds=5 * i),
            premium=v,
            mid_price=1,
            index_price=1,
        )
        for i, v in enumerate(values)
    )
    later = start + timedelta(hours=1)
    PremiumSample.objects.create(
        market_id="SOL_USDC_PERP", at=later, premium=1, mid_price=1, index_price=1
    )
    expected = (sum(values, D(0)) / 720).quantize(prices.RATIO_QUANTUM, ROUND_HALF_EVEN)
    assert services.average_premium("SOL_USDC_PERP", start, later) == expected
    assert services.average_premium("SOL_USDC_PERP", later + timedelta(hours=1), later) is None


def test_the_average_premiums_of_several_markets_are_each_their_own_windows_mean():
    """One read for several markets, each over its own window, gives what each market's
    own read gives; a market without samples in its window has None."""
    start = T0.replace(minute=0, second=0)
    for i in range(6):
        for symbol, premium in (("SOL_USDC_PERP", D("0.001") * i), ("BTC_USDC_PERP", D(-i))):
            PremiumSample.objects.create(
                market_id=symbol,
                at=start + timedelta(minutes=10 * i),
                premium=premium,
                mid_price=1,
                index_price=1,
            )
    windows = {
        "SOL_USDC_PERP": (start, start + timedelta(hours=1)),
        "BTC_USDC_PERP": (start + timedelta(minutes=30), start + timedelta(hours=1)),
        "ETH_USDC_PERP": (start, start + timedelta(hours=1)),
    }
    means = services.average_premiums(windows)
    assert means == {s: services.average_premium(s, *w) for s, w in windows.items()}
    assert means == {"SOL_USDC_PERP": D("0.0025"), "BTC_USDC_PERP": D(-4), "ETH_USDC_PERP": None}


def test_the_streams_hubs_perp_frames_read_the_database_four_times_for_any_number_of_perps():
    """markPrice (mark, index, predicted funding rate) and openInterest of every perp, each
    second in the engine worker's process: the markets, their marks, their premium samples
    and the open interest are one read each (it was 8 reads with 3 perps, 2 more per perp)."""
    from exchange.streams.hub import _perp_frames

    perps = frozenset(Market.objects.filter(market_type="PERP").values_list("symbol", flat=True))
    assert len(perps) == 3
    services.update_prices(T0)
    with CaptureQueriesContext(connection) as queries:
        frames = dict(_perp_frames(perps))
    assert len(queries) == 4
    assert set(frames) == {f"{k}.{s}" for k in ("markPrice", "openInterest") for s in perps}
    mark = frames["markPrice.SOL_USDC_PERP"]
    assert mark["p"] == cache.get("markPrice:SOL_USDC_PERP")["markPrice"]
    assert {"i", "f", "n"} <= set(mark)
