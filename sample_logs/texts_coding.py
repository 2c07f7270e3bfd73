"""Hand-written texts for the sample log's coding assistant (multi-turn conversations).

Each topic has openers (first user turn, with a code block), the first answer and follow-ups as
(question, answer) pairs. ``[[slot]]`` marks a slot filled once per conversation from
``CODING_SLOTS``. Prose lines are joined per paragraph by ``generate.unwrap``; code blocks keep
their lines.
"""

CODING_SYSTEM_PROMPT = """\
You are DevPilot, the internal coding assistant for engineers at Acme Cloud. Our stack is Python
3.12 (FastAPI, pandas, SQLAlchemy), PostgreSQL 16, and TypeScript with React 18 and Node 20.
Give correct, runnable code first and a short explanation after it. Prefer the standard library
and the dependencies we already use. Point out bugs, security problems and performance traps you
notice in the user's code even if they did not ask. Keep answers focused; do not repeat the whole
file when a small change is enough. Never include secrets or real customer data in examples."""

CODING_SLOTS: dict[str, list[str]] = {
    "fn": ["load_orders", "sync_invoices", "fetch_user_events", "build_report", "process_batch",
           "compute_churn", "parse_webhook", "refresh_accounts", "aggregate_sessions",
           "import_customers"],
    "tbl": ["orders", "invoices", "events", "subscriptions", "payments", "sessions", "tickets"],
    "col": ["customer_id", "account_id", "user_id", "workspace_id"],
    "ts": ["created_at", "updated_at", "event_time", "paid_at"],
    "amount": ["amount_cents", "total", "revenue", "mrr"],
    "df": ["df", "orders", "events_df", "data"],
    "rows": ["2 million", "800k", "15 million", "40 million", "300k"],
    "component": ["UserTable", "InvoiceList", "SearchResults", "BillingPage", "TeamMembers"],
    "endpoint": ["/api/invoices", "/api/users", "/v1/orders", "/api/reports", "/api/search"],
    "n_items": ["5,000", "20k", "about 60,000", "12,000"],
    "limit": ["10", "5", "20", "8"],
    "bucket": ["acme-exports", "billing-reports", "raw-events", "customer-uploads"],
    "cfg": ["AppConfig", "JobSettings", "ExportConfig", "WorkerConfig"],
}

CODING_INTROS = ["", "", "", "Sure. ", "Good question. ", "Yes. ", "Here's how I'd do it. "]
# Optional decoration of user turns, so different engineers don't type identical questions.
OPENER_PREFIXES = ["", "", "", "Hi! ", "Hey, quick one. ", "Morning! ", "Need a hand here. "]
FOLLOWUP_PREFIXES = ["", "", "", "", "OK. ", "Thanks. ", "Nice. ", "Got it. ", "Follow-up: ",
                     "Hmm. ", "Great. ", "Another thing: "]
FOLLOWUP_SUFFIXES = ["", "", "", "", " Thanks!", " Keep it short please.",
                     " Still the same `[[fn]]` code as above.", " Sorry if this is basic."]
CONTEXT_INTROS = ["Here's the whole file for context:", "Full file below in case it helps:",
                  "For context, this is the module:", "Pasting the whole thing:"]
DRIFT_PREFIXES = [
    "Unrelated question, but ", "Switching topics for a second. ", "Different question: ",
    "Totally separate thing: ", "One more unrelated thing. ",
]

# Follow-ups that fit any topic; their short answers make exact query repeats across chats.
GENERIC_FOLLOWUPS: list[tuple[str, str]] = [
    ("Thanks, that worked!",
     "Glad it works! If you hit anything else around `[[fn]]`, send it over."),
    ("Is there anything I should watch out for in production?", """\
A few things to check before this ships:

- **Inputs**: validate sizes and types at the boundary, so a bad payload fails fast with a clear
error instead of deep inside `[[fn]]`.
- **Timeouts and retries**: every network or database call should have a timeout, and retries
should be limited and use backoff.
- **Observability**: log one structured line per run with the row count and duration, and add a
metric so you notice when it slows down.
- **Load**: try it once with production-sized data ([[rows]] rows) on staging before the
release."""),
    ("How would you describe this change in a PR description?", """\
Something like this:

**Title:** Speed up and harden `[[fn]]`

**What:** Replaces the slow implementation with the version discussed above and adds tests for
the edge cases (empty input, missing values).

**Why:** The old code was slow on production-sized data ([[rows]] rows) and failed on some
inputs.

**How to test:** run the unit tests, then run the job once on staging and compare the output
with the previous run.

**Risk:** low; the output format is unchanged."""),
    ("Can you summarize what we changed so far?", """\
So far we:

1. Found the root cause of the original problem in `[[fn]]`.
2. Replaced it with the simpler version above.
3. Covered the edge cases we talked about.

The remaining step is to add a test for the fix so it doesn't regress."""),
    ("What would be a better name for this function?", """\
`[[fn]]` is fine if it only does one thing. If it also filters and aggregates, a name that says
what it returns is clearer, for example `[[fn]]_summary` or `get_[[tbl]]_totals`. Keep the verb
for functions with side effects (`sync_`, `send_`, `write_`) and use nouns for ones that only
compute a value."""),
    ("ok makes sense", "Great. Let me know if anything else comes up."),
]

CODING_TOPICS: list[dict[str, object]] = [
    {
        "name": "pandas-groupby",
        "lang": "python",
        "openers": [
            """\
I have a pandas DataFrame with about [[rows]] rows and this aggregation is really slow. Any idea
how to speed it up?

```python
result = []
for key, grp in [[df]].groupby("[[col]]"):
    total = 0
    for _, row in grp.iterrows():
        total += row["[[amount]]"]
    result.append({"[[col]]": key, "total": total, "n": len(grp)})
result = pd.DataFrame(result)
```""",
            """\
Why does this take forever? `[[df]]` has [[rows]] rows.

```python
summary = [[df]].groupby("[[col]]").apply(
    lambda g: pd.Series({"total": g["[[amount]]"].sum(), "n": len(g)})
)
```""",
        ],
        "answer": """\
The slow part is the per-group Python work: `iterrows()` and `apply` build a new object for every
row or group. A named aggregation runs the whole thing in vectorized code:

```python
result = (
    [[df]].groupby("[[col]]", as_index=False)
    .agg(total=("[[amount]]", "sum"), n=("[[amount]]", "size"))
)
```

Notes:
- On [[rows]] rows this should go from minutes to well under a second.
- Named aggregation keeps the output columns explicit, so downstream code doesn't depend on the
order of the lambdas.
- If `[[col]]` has relatively few distinct values, `[[df]]["[[col]]"].astype("category")` before
the groupby cuts memory and time further (pass `observed=True`).""",
        "followups": [
            ("Can I also get the average and the latest [[ts]] per [[col]] in the same call?", """\
Yes, just add more named aggregations:

```python
result = (
    [[df]].groupby("[[col]]", as_index=False)
    .agg(
        total=("[[amount]]", "sum"),
        n=("[[amount]]", "size"),
        avg=("[[amount]]", "mean"),
        last_seen=("[[ts]]", "max"),
    )
)
```

Make sure `[[ts]]` is a real datetime column first (`pd.to_datetime([[df]]["[[ts]]"],
utc=True)`), otherwise `max` compares strings."""),
            ("I get `KeyError: '[[amount]]'` when I run it.", """\
That means the column isn't called exactly `[[amount]]` in this DataFrame. The usual causes are
stray whitespace or different casing in the CSV header. Check with:

```python
print([[df]].columns.tolist())
```

If you see something like `' [[amount]]'`, normalize the headers once after loading:

```python
[[df]].columns = [[df]].columns.str.strip().str.lower()
```"""),
            ("How do I keep only the [[col]]s with more than 10 rows after that?", """\
Filter the aggregated frame:

```python
busy = result[result["n"] > 10].sort_values("total", ascending=False)
```

If you need the original rows of those groups instead, use `transform` so the filter stays
vectorized:

```python
mask = [[df]].groupby("[[col]]")["[[amount]]"].transform("size") > 10
busy_rows = [[df]][mask]
```"""),
            ("Can you write a pytest test for this?", """\
Here's a small test with a hand-made frame, so it runs in milliseconds:

```python
import pandas as pd

from reports import [[fn]]


def test_[[fn]]_sums_per_key():
    [[df]] = pd.DataFrame(
        {"[[col]]": [1, 1, 2], "[[amount]]": [100, 250, 40]}
    )
    out = [[fn]]([[df]]).set_index("[[col]]")
    assert out.loc[1, "total"] == 350
    assert out.loc[1, "n"] == 2
    assert out.loc[2, "total"] == 40
```

Add one more case for an empty frame; `groupby` on an empty frame returns an empty result, and
it's worth pinning the columns you expect."""),
            ("Memory is also a problem, the process goes above 6 GB. Tips?", """\
Most of that is usually dtypes. A few things that help a lot:

```python
[[df]] = pd.read_csv(
    path,
    usecols=["[[col]]", "[[amount]]", "[[ts]]"],
    dtype={"[[col]]": "int32", "[[amount]]": "int64"},
    parse_dates=["[[ts]]"],
)
```

- Load only the columns you need (`usecols`).
- Use the smallest integer type that fits, and `category` for repeated strings.
- If the file is still too big, read it in chunks with `chunksize=` and aggregate each chunk,
then aggregate the partial results again."""),
            ("Would polars be faster for this?", """\
For this kind of group-by it usually is, often 3 to 10 times, and it uses all cores by default:

```python
import polars as pl

result = (
    pl.scan_csv(path)
    .group_by("[[col]]")
    .agg(pl.col("[[amount]]").sum().alias("total"), pl.len().alias("n"))
    .collect()
)
```

That said, with the vectorized pandas version this step should already be fast. I'd only switch
if the rest of the pipeline is also slow."""),
        ],
    },
    {
        "name": "asyncio-rate-limit",
        "lang": "python",
        "openers": [
            """\
I'm calling an external API for [[n_items]] ids with asyncio and I keep getting 429 Too Many
Requests. How do I limit the concurrency?

```python
async def [[fn]](ids):
    async with httpx.AsyncClient() as client:
        tasks = [client.get(f"https://api.partner.example/items/{i}") for i in ids]
        return await asyncio.gather(*tasks)
```""",
            """\
This fires all requests at once and the partner API rate-limits us. What's the clean way to only
have [[limit]] in flight?

```python
results = await asyncio.gather(*(fetch(client, i) for i in ids))
```""",
        ],
        "answer": """\
Use an `asyncio.Semaphore` so only a fixed number of requests are in flight at a time:

```python
import asyncio

import httpx

MAX_IN_FLIGHT = [[limit]]


async def [[fn]](ids: list[int]) -> list[dict]:
    sem = asyncio.Semaphore(MAX_IN_FLIGHT)

    async with httpx.AsyncClient(timeout=10.0) as client:

        async def fetch(item_id: int) -> dict:
            async with sem:
                resp = await client.get(f"https://api.partner.example/items/{item_id}")
                resp.raise_for_status()
                return resp.json()

        return await asyncio.gather(*(fetch(i) for i in ids))
```

`gather` still creates all the coroutines, but each one waits on the semaphore before it sends
its request. I also added a timeout, because the default client waits 5 seconds per phase and a
hanging request would otherwise hold a slot.""",
        "followups": [
            ("Some requests still get 429. Can you add a retry with backoff?", """\
Retry only on 429 and 5xx, and honor `Retry-After` when the server sends it:

```python
async def get_with_retry(client, url, attempts=5):
    for attempt in range(attempts):
        resp = await client.get(url)
        if resp.status_code not in (429, 500, 502, 503, 504):
            resp.raise_for_status()
            return resp.json()
        wait = float(resp.headers.get("Retry-After", 2 ** attempt))
        await asyncio.sleep(min(wait, 30) + random.random())
    resp.raise_for_status()
```

Call it inside the `async with sem:` block. The random jitter keeps the retries of many tasks
from arriving at the same moment."""),
            ("If one request fails the whole gather blows up. How do I keep the others?", """\
Pass `return_exceptions=True` and split the results afterwards:

```python
results = await asyncio.gather(*(fetch(i) for i in ids), return_exceptions=True)
ok = [r for r in results if not isinstance(r, Exception)]
failed = [i for i, r in zip(ids, results) if isinstance(r, Exception)]
```

Log the failed ids so you can retry just those later."""),
            ("The partner allows [[limit]] requests per second, not in flight. Different fix?", """\
Yes: a semaphore limits concurrency, not rate. For a per-second limit, space out the starts:

```python
class RateLimiter:
    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second
        self.next_at = 0.0
        self.lock = asyncio.Lock()

    async def wait(self):
        async with self.lock:
            now = asyncio.get_running_loop().time()
            self.next_at = max(self.next_at, now)
            delay = self.next_at - now
            self.next_at += self.interval
        if delay > 0:
            await asyncio.sleep(delay)
```

Create one limiter and call `await limiter.wait()` before each request. Keep the semaphore too,
so slow responses can't pile up."""),
            ("How can I test [[fn]] without hitting the real API?", """\
`respx` mocks httpx nicely:

```python
import httpx
import pytest
import respx


@pytest.mark.asyncio
@respx.mock
async def test_[[fn]]_returns_all_items():
    respx.get(url__regex=r".*/items/\\d+").mock(
        return_value=httpx.Response(200, json={"ok": True})
    )
    out = await [[fn]]([1, 2, 3])
    assert out == [{"ok": True}] * 3
```

You can also return a 429 for the first call with `side_effect=[...]` to test the retry path."""),
            ("Can I show a progress bar while it runs?", """\
`tqdm` has an asyncio helper that works as a drop-in for `gather`:

```python
from tqdm.asyncio import tqdm_asyncio

results = await tqdm_asyncio.gather(*(fetch(i) for i in ids), desc="items")
```

In a job that logs to a file instead of a terminal, log a line every 1,000 items instead."""),
        ],
    },
    {
        "name": "pytest-mock-s3",
        "lang": "python",
        "openers": [
            """\
How do I unit test this without touching real S3?

```python
import boto3


def [[fn]](key: str) -> str:
    s3 = boto3.client("s3")
    obj = s3.get_object(Bucket="[[bucket]]", Key=key)
    return obj["Body"].read().decode("utf-8")
```""",
        ],
        "answer": """\
The easiest change is to patch `boto3.client` in the module under test, so the function gets a
mock instead of a real client:

```python
from unittest.mock import MagicMock, patch

from exports import [[fn]]


def test_[[fn]]_reads_object():
    fake = MagicMock()
    fake.get_object.return_value = {"Body": MagicMock(read=lambda: b"hello")}
    with patch("exports.boto3.client", return_value=fake):
        assert [[fn]]("reports/a.csv") == "hello"
    fake.get_object.assert_called_once_with(Bucket="[[bucket]]", Key="reports/a.csv")
```

Patch where the name is looked up (`exports.boto3`), not where it's defined. Longer term,
passing the client in as a parameter makes the function easier to test without patching.""",
        "followups": [
            ("Is moto better than MagicMock here?", """\
For S3 I'd use moto: it fakes the real API, so typos in parameter names fail the test instead of
passing silently.

```python
import boto3
from moto import mock_aws


@mock_aws
def test_[[fn]]_with_moto():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="[[bucket]]")
    s3.put_object(Bucket="[[bucket]]", Key="a.csv", Body=b"id,total\\n1,10\\n")
    assert [[fn]]("a.csv").startswith("id,total")
```

Set dummy `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` in a fixture so nothing can reach a
real account."""),
            ("How do I test the case where the key doesn't exist?", """\
Make the fake raise the same `ClientError` boto3 raises:

```python
from botocore.exceptions import ClientError

fake.get_object.side_effect = ClientError(
    {"Error": {"Code": "NoSuchKey", "Message": "missing"}}, "GetObject"
)
with patch("exports.boto3.client", return_value=fake), pytest.raises(ClientError):
    [[fn]]("missing.csv")
```

If `[[fn]]` should return `None` for a missing key instead, catch the error there and check
`err.response["Error"]["Code"] == "NoSuchKey"`."""),
            ("Can I turn the mock into a fixture so every test can use it?", """\
Yes, put it in `conftest.py`:

```python
@pytest.fixture
def s3_mock():
    fake = MagicMock()
    with patch("exports.boto3.client", return_value=fake):
        yield fake
```

Then any test takes `s3_mock` as an argument and sets `s3_mock.get_object.return_value` as it
needs. The patch is undone after each test."""),
            ("How do I run the same test for several keys?", """\
Use `pytest.mark.parametrize`:

```python
@pytest.mark.parametrize("key", ["a.csv", "nested/b.csv", "with space.csv"])
def test_[[fn]]_any_key(s3_mock, key):
    s3_mock.get_object.return_value = {"Body": MagicMock(read=lambda: b"x")}
    assert [[fn]](key) == "x"
```"""),
        ],
    },
    {
        "name": "pydantic-config",
        "lang": "python",
        "openers": [
            """\
What's the cleanest way to validate this config? Right now it's a pile of if statements and
errors show up deep inside the job.

```python
def load_config(raw: dict) -> dict:
    if "bucket" not in raw:
        raise ValueError("bucket missing")
    if not isinstance(raw.get("batch_size", 500), int):
        raise ValueError("batch_size must be int")
    if raw.get("mode") not in ("full", "incremental"):
        raise ValueError("bad mode")
    return raw
```""",
        ],
        "answer": """\
A pydantic model replaces all of that and gives readable errors:

```python
from typing import Literal

from pydantic import BaseModel, Field


class [[cfg]](BaseModel):
    bucket: str
    batch_size: int = Field(500, gt=0, le=10_000)
    mode: Literal["full", "incremental"] = "incremental"
    dry_run: bool = False


config = [[cfg]].model_validate(raw)
```

An invalid config now fails at startup with a message that lists every problem at once, for
example `batch_size: Input should be greater than 0`. You also get attribute access
(`config.bucket`) and type hints for free.""",
        "followups": [
            ("Can it read the values from environment variables too?", """\
Use `pydantic-settings`:

```python
from pydantic_settings import BaseSettings, SettingsConfigDict


class [[cfg]](BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOB_", env_file=".env")

    bucket: str
    batch_size: int = 500
```

`JOB_BUCKET=[[bucket]]` then sets `bucket`. Values passed to the constructor still win over the
environment, which is handy in tests."""),
            ("How do I check that bucket names are lowercase?", """\
Add a field validator:

```python
from pydantic import field_validator


class [[cfg]](BaseModel):
    bucket: str

    @field_validator("bucket")
    @classmethod
    def bucket_is_lowercase(cls, v: str) -> str:
        if v != v.lower():
            raise ValueError("bucket names must be lowercase")
        return v
```"""),
            ("The config has a nested retry section. How do I model that?", """\
Nest one model in another:

```python
class RetryPolicy(BaseModel):
    attempts: int = 3
    backoff_seconds: float = 2.0


class [[cfg]](BaseModel):
    bucket: str
    retry: RetryPolicy = RetryPolicy()
```

A dict under `retry` in the raw config is validated into a `RetryPolicy` automatically."""),
            ("How do I print a nice error for the user instead of the traceback?", """\
Catch `ValidationError` at the entry point:

```python
from pydantic import ValidationError

try:
    config = [[cfg]].model_validate(raw)
except ValidationError as err:
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        print(f"config error in {loc}: {e['msg']}", file=sys.stderr)
    sys.exit(2)
```"""),
        ],
    },
    {
        "name": "sql-latest-row",
        "lang": "sql",
        "openers": [
            """\
In Postgres, how do I get the latest row per [[col]] from `[[tbl]]`? This returns duplicates
when two rows have the same timestamp:

```sql
SELECT t.*
FROM [[tbl]] t
JOIN (
  SELECT [[col]], MAX([[ts]]) AS max_ts
  FROM [[tbl]]
  GROUP BY [[col]]
) m ON m.[[col]] = t.[[col]] AND m.max_ts = t.[[ts]];
```""",
            """\
Need one row per [[col]] (the most recent by [[ts]]) from [[tbl]], which has [[rows]] rows.
What's the fastest way in Postgres 16?""",
        ],
        "answer": """\
Postgres has `DISTINCT ON` for exactly this. Add a tie-breaker so the result is deterministic:

```sql
SELECT DISTINCT ON ([[col]]) *
FROM [[tbl]]
ORDER BY [[col]], [[ts]] DESC, id DESC;
```

`DISTINCT ON` keeps the first row of each `[[col]]` in the `ORDER BY` order, so the newest one,
and `id DESC` decides between rows with the same `[[ts]]`. The portable alternative is a window
function:

```sql
SELECT *
FROM (
  SELECT t.*, ROW_NUMBER() OVER (PARTITION BY [[col]] ORDER BY [[ts]] DESC, id DESC) AS rn
  FROM [[tbl]] t
) x
WHERE rn = 1;
```""",
        "followups": [
            ("Which index should I add for that?", """\
An index that matches the `ORDER BY` lets Postgres read each group's newest row directly:

```sql
CREATE INDEX CONCURRENTLY idx_[[tbl]]_[[col]]_[[ts]]
  ON [[tbl]] ([[col]], [[ts]] DESC, id DESC);
```

`CONCURRENTLY` avoids locking writes while it builds, which matters on a [[rows]]-row table.
Run `ANALYZE [[tbl]];` afterwards and check the plan with `EXPLAIN (ANALYZE, BUFFERS)`."""),
            ("How would I delete the older duplicates instead of just selecting around them?", """\
Delete every row that isn't the newest in its group, in a transaction so you can check the count
first:

```sql
BEGIN;
DELETE FROM [[tbl]] t
USING (
  SELECT id,
         ROW_NUMBER() OVER (PARTITION BY [[col]] ORDER BY [[ts]] DESC, id DESC) AS rn
  FROM [[tbl]]
) d
WHERE t.id = d.id AND d.rn > 1;
-- check the reported row count, then
COMMIT;
```

On a big table, do it in batches by `[[col]]` range to keep the transaction short."""),
            ("How do I write the same thing in BigQuery?", """\
BigQuery has no `DISTINCT ON`, but `QUALIFY` makes the window version short:

```sql
SELECT *
FROM `analytics.[[tbl]]`
WHERE TRUE
QUALIFY ROW_NUMBER() OVER (PARTITION BY [[col]] ORDER BY [[ts]] DESC, id DESC) = 1;
```

(The `WHERE TRUE` is needed because BigQuery requires a `WHERE`, `GROUP BY` or `HAVING` next to
`QUALIFY`.)"""),
            ("Can I also get a running total of [[amount]] per [[col]]?", """\
Use `SUM` as a window function ordered by time:

```sql
SELECT [[col]], [[ts]], [[amount]],
       SUM([[amount]]) OVER (
         PARTITION BY [[col]] ORDER BY [[ts]], id
         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
       ) AS running_total
FROM [[tbl]]
ORDER BY [[col]], [[ts]];
```

The explicit `ROWS` frame avoids the default `RANGE` frame, which would add up rows with equal
timestamps together."""),
            ("It's still slow when I filter the last 30 days. Why?", """\
Filtering on `[[ts]]` first and then picking the newest per `[[col]]` can't use the
`([[col]], [[ts]])` index well. Try a partial index for the hot range, or put the filter inside
the window query so the planner can use an index on `[[ts]]`:

```sql
CREATE INDEX CONCURRENTLY idx_[[tbl]]_[[ts]] ON [[tbl]] ([[ts]]);

SELECT DISTINCT ON ([[col]]) *
FROM [[tbl]]
WHERE [[ts]] >= now() - interval '30 days'
ORDER BY [[col]], [[ts]] DESC, id DESC;
```

Then compare both plans with `EXPLAIN (ANALYZE, BUFFERS)`; the row estimates will tell you which
index it picked."""),
        ],
    },
    {
        "name": "sql-monthly-revenue",
        "lang": "sql",
        "openers": [
            """\
I need monthly revenue with month-over-month growth from `[[tbl]]` ([[amount]], [[ts]]). This
gives me the totals but I don't know how to get the growth:

```sql
SELECT date_trunc('month', [[ts]]) AS month, SUM([[amount]]) AS revenue
FROM [[tbl]]
GROUP BY 1
ORDER BY 1;
```""",
        ],
        "answer": """\
Wrap it in a CTE and use `LAG` to look at the previous month:

```sql
WITH monthly AS (
  SELECT date_trunc('month', [[ts]]) AS month, SUM([[amount]]) AS revenue
  FROM [[tbl]]
  GROUP BY 1
)
SELECT month,
       revenue,
       LAG(revenue) OVER (ORDER BY month) AS prev_revenue,
       ROUND(100.0 * (revenue - LAG(revenue) OVER (ORDER BY month))
             / NULLIF(LAG(revenue) OVER (ORDER BY month), 0), 1) AS growth_pct
FROM monthly
ORDER BY month;
```

`NULLIF` avoids a division by zero for a month after a month with no revenue; the first month
gets `NULL` growth, which is correct.""",
        "followups": [
            ("Months with no sales are missing from the output. Can I show them as 0?", """\
Generate the full list of months and left join:

```sql
WITH months AS (
  SELECT generate_series(
    date_trunc('month', (SELECT MIN([[ts]]) FROM [[tbl]])),
    date_trunc('month', now()),
    interval '1 month'
  ) AS month
),
monthly AS (
  SELECT date_trunc('month', [[ts]]) AS month, SUM([[amount]]) AS revenue
  FROM [[tbl]]
  GROUP BY 1
)
SELECT m.month, COALESCE(r.revenue, 0) AS revenue
FROM months m
LEFT JOIN monthly r USING (month)
ORDER BY m.month;
```"""),
            ("Can I split it by plan as columns?", """\
Postgres has `FILTER` for conditional aggregates, which is the cleanest pivot:

```sql
SELECT date_trunc('month', [[ts]]) AS month,
       SUM([[amount]]) FILTER (WHERE plan = 'team') AS team,
       SUM([[amount]]) FILTER (WHERE plan = 'business') AS business,
       SUM([[amount]]) FILTER (WHERE plan = 'enterprise') AS enterprise
FROM [[tbl]]
GROUP BY 1
ORDER BY 1;
```

If the list of plans changes often, keep the data in long format and pivot in the BI tool."""),
            ("[[amount]] is stored in cents. How do I show dollars with two decimals?", """\
Divide by a numeric so you don't get integer division, then cast:

```sql
SELECT month, (revenue / 100.0)::numeric(12, 2) AS revenue_usd
FROM monthly;
```

For display in the app, format it there (`Intl.NumberFormat` on the frontend) and keep cents in
the API."""),
            ("The month boundaries look off for our EU customers. Timezones?", """\
Yes: `date_trunc` on a `timestamptz` uses the session time zone. Be explicit:

```sql
SELECT date_trunc('month', [[ts]] AT TIME ZONE 'Europe/Berlin') AS month,
       SUM([[amount]]) AS revenue
FROM [[tbl]]
GROUP BY 1;
```

Pick one reporting time zone for the company (often UTC) and use it everywhere, or the numbers
won't match between dashboards."""),
        ],
    },
    {
        "name": "react-effect-loop",
        "lang": "javascript",
        "openers": [
            """\
My `[[component]]` component re-renders forever and hammers the API. What's wrong?

```jsx
function [[component]]({ filters }) {
  const [rows, setRows] = useState([]);

  useEffect(() => {
    fetch(`[[endpoint]]?q=${filters.query}&page=${filters.page}`)
      .then((r) => r.json())
      .then(setRows);
  });

  return <Table rows={rows} />;
}
```""",
            """\
The network tab shows `[[endpoint]]` being called in a loop as soon as `[[component]]` mounts. I
added `[filters]` as the dependency but it still loops. The parent renders it like
`<[[component]] filters={{ query, page }} />`.""",
        ],
        "answer": """\
Two things cause the loop:

1. The effect has no dependency array, so it runs after every render, and `setRows` triggers a
new render.
2. Even with `[filters]`, the parent creates a new `filters` object on every render, so the
dependency is never equal to the previous one.

Depend on the primitive values instead, and ignore responses that arrive after the filters
changed:

```jsx
function [[component]]({ filters }) {
  const { query, page } = filters;
  const [rows, setRows] = useState([]);

  useEffect(() => {
    const controller = new AbortController();
    fetch(`[[endpoint]]?q=${encodeURIComponent(query)}&page=${page}`, {
      signal: controller.signal,
    })
      .then((r) => r.json())
      .then(setRows)
      .catch((err) => {
        if (err.name !== "AbortError") throw err;
      });
    return () => controller.abort();
  }, [query, page]);

  return <Table rows={rows} />;
}
```""",
        "followups": [
            ("How do I show a loading spinner and an error message?", """\
Track the request state next to the data:

```jsx
const [state, setState] = useState({ status: "idle", rows: [], error: null });

useEffect(() => {
  const controller = new AbortController();
  setState((s) => ({ ...s, status: "loading" }));
  fetch(`[[endpoint]]?q=${encodeURIComponent(query)}`, { signal: controller.signal })
    .then((r) => {
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      return r.json();
    })
    .then((rows) => setState({ status: "done", rows, error: null }))
    .catch((error) => {
      if (error.name !== "AbortError") setState({ status: "error", rows: [], error });
    });
  return () => controller.abort();
}, [query]);
```

Then render a spinner for `"loading"` and the message for `"error"`."""),
            ("Typing in the search box still sends a request per keystroke. Debounce?", """\
Debounce the value, not the effect:

```jsx
function useDebounced(value, delay = 300) {
  const [debounced, setDebounced] = useState(value);
  useEffect(() => {
    const id = setTimeout(() => setDebounced(value), delay);
    return () => clearTimeout(id);
  }, [value, delay]);
  return debounced;
}

const debouncedQuery = useDebounced(query);
```

Use `debouncedQuery` in the fetch effect's dependency array instead of `query`."""),
            ("Should I just use react-query for this?", """\
For server data it's a good fit: caching, deduplication, retries and cancellation come built in.

```jsx
const { data = [], isLoading, error } = useQuery({
  queryKey: ["[[component]]", query, page],
  queryFn: ({ signal }) =>
    fetch(`[[endpoint]]?q=${encodeURIComponent(query)}&page=${page}`, { signal })
      .then((r) => r.json()),
  staleTime: 30_000,
});
```

The query key replaces the dependency array. If the app already has several hand-written fetch
effects, migrating them is usually worth it."""),
            ("How do I test [[component]] with React Testing Library?", """\
Mock `fetch` and wait for the rows to appear:

```jsx
test("[[component]] shows rows from the API", async () => {
  global.fetch = jest.fn().mockResolvedValue({
    ok: true,
    json: async () => [{ id: 1, name: "Acme" }],
  });

  render(<[[component]] filters={{ query: "ac", page: 1 }} />);

  expect(await screen.findByText("Acme")).toBeInTheDocument();
  expect(fetch).toHaveBeenCalledTimes(1);
});
```

The `toHaveBeenCalledTimes(1)` assertion also guards against the render loop coming back."""),
            ("Can you add TypeScript types to it?", """\
```tsx
type Filters = { query: string; page: number };
type Row = { id: number; name: string };

function [[component]]({ filters }: { filters: Filters }) {
  const { query, page } = filters;
  const [rows, setRows] = useState<Row[]>([]);
  // ...same effect as before...
  return <Table rows={rows} />;
}
```

If the API can change shape, validate the JSON with zod at the boundary instead of trusting the
`Row` type."""),
        ],
    },
    {
        "name": "node-fetch-timeout",
        "lang": "javascript",
        "openers": [
            """\
How do I add a timeout to fetch in Node 20? Sometimes `[[endpoint]]` on the partner side hangs
and our worker just sits there.

```js
async function [[fn]](id) {
  const res = await fetch(`https://partner.example[[endpoint]]/${id}`);
  return res.json();
}
```""",
        ],
        "answer": """\
Node 20 supports `AbortSignal.timeout()`, which aborts the request after the given time:

```js
async function [[fn]](id, { timeoutMs = 5000 } = {}) {
  const res = await fetch(`https://partner.example[[endpoint]]/${id}`, {
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!res.ok) {
    throw new Error(`[[fn]] failed: HTTP ${res.status}`);
  }
  return res.json();
}
```

On timeout the promise rejects with a `DOMException` named `TimeoutError`. I also added the
`res.ok` check: `fetch` does not reject on 4xx/5xx, so without it you'd try to parse an error
page as JSON.""",
        "followups": [
            ("How do I tell a timeout apart from other errors?", """\
Check the error name:

```js
try {
  return await [[fn]](id);
} catch (err) {
  if (err.name === "TimeoutError") {
    logger.warn({ id }, "partner timed out");
    return null;
  }
  throw err;
}
```

A manual `controller.abort()` gives `AbortError` instead, so you can distinguish the two."""),
            ("Can you add 3 retries with exponential backoff?", """\
```js
async function withRetry(fn, { attempts = 3, baseMs = 500 } = {}) {
  let lastErr;
  for (let i = 0; i < attempts; i++) {
    try {
      return await fn();
    } catch (err) {
      lastErr = err;
      const delay = baseMs * 2 ** i + Math.random() * 100;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  throw lastErr;
}

const data = await withRetry(() => [[fn]](id));
```

Only retry idempotent requests (GETs); retrying a POST that timed out can create duplicates."""),
            ("I need to fetch [[n_items]] ids. Promise.all or something else?", """\
`Promise.all` starts everything at once and fails fast. Use `Promise.allSettled` with a small
concurrency limit:

```js
import pLimit from "p-limit";

const limit = pLimit([[limit]]);
const results = await Promise.allSettled(ids.map((id) => limit(() => [[fn]](id))));
const failed = ids.filter((_, i) => results[i].status === "rejected");
```

Log `failed` and retry those in a second pass."""),
            ("How do I use this inside an Express route and return 504 on timeout?", """\
```js
app.get("[[endpoint]]/:id", async (req, res, next) => {
  try {
    res.json(await [[fn]](req.params.id, { timeoutMs: 3000 }));
  } catch (err) {
    if (err.name === "TimeoutError") {
      return res.status(504).json({ error: "upstream timeout" });
    }
    next(err);
  }
});
```

Keep the upstream timeout below your own load balancer's timeout, otherwise the client sees a
generic 502 before your handler can answer."""),
        ],
    },
    {
        "name": "js-date-timezone",
        "lang": "javascript",
        "openers": [
            """\
Why does this show the previous day for some users? The API sends `"2026-10-05"` as the due
date.

```js
const due = new Date(task.dueDate);
label.textContent = due.toLocaleDateString();
```""",
        ],
        "answer": """\
A date-only string like `"2026-10-05"` is parsed as midnight **UTC**. For users west of UTC that
moment is still October 4 in their local time, so `toLocaleDateString()` shows the day before.

Since a due date is a calendar date, not a moment, don't turn it into a local `Date` at all.
Either format it in UTC:

```js
const due = new Date(task.dueDate);
label.textContent = due.toLocaleDateString(undefined, { timeZone: "UTC" });
```

or parse the parts yourself:

```js
const [y, m, d] = task.dueDate.split("-").map(Number);
const due = new Date(y, m - 1, d); // local midnight
```""",
        "followups": [
            ("How do I format it like 'Mon, Oct 5'?", """\
Use `Intl.DateTimeFormat` with the options you want, and keep `timeZone: "UTC"` for date-only
values:

```js
const fmt = new Intl.DateTimeFormat("en-US", {
  weekday: "short",
  month: "short",
  day: "numeric",
  timeZone: "UTC",
});
label.textContent = fmt.format(new Date(task.dueDate));
```

Create the formatter once and reuse it; constructing one per row is slow in long lists."""),
            ("How do I check if a task is overdue?", """\
Compare calendar dates as strings in the user's zone, which avoids off-by-one errors near
midnight:

```js
const today = new Intl.DateTimeFormat("en-CA").format(new Date()); // "2026-10-05"
const overdue = task.dueDate < today;
```

The `en-CA` locale formats as `YYYY-MM-DD`, so plain string comparison works."""),
            ("Our tests pass locally but fail in CI. Related?", """\
Very likely: CI machines usually run in UTC while your laptop doesn't. Pin the time zone for
the test run so results don't depend on the machine:

```json
"scripts": {
  "test": "TZ=America/Los_Angeles jest"
}
```

Even better, add a test that runs the formatting under two zones, so the bug can't come back
unnoticed."""),
            ("Should we store due dates as timestamps in Postgres instead?", """\
No: a due date is a calendar date, so store it as `date`. Use `timestamptz` only for moments
(like `[[ts]]`). Mixing the two is what caused this bug in the first place. In the API, send
dates as `YYYY-MM-DD` strings and moments as ISO 8601 with a `Z` or offset."""),
        ],
    },
    {
        "name": "fastapi-background",
        "lang": "python",
        "openers": [
            """\
Our FastAPI endpoint for exports times out after 30 s because it builds the whole CSV in the
request. How should I restructure it?

```python
@app.post("/exports")
def create_export(req: ExportRequest, db: Session = Depends(get_db)):
    rows = db.execute(select(Order).where(Order.[[col]] == req.[[col]])).scalars().all()
    path = write_csv(rows)
    upload_to_s3(path, "[[bucket]]")
    return {"url": presign(path)}
```""",
        ],
        "answer": """\
Don't do the work in the request. Create a job, return its id right away (202 Accepted), and let
a worker build the file; the client polls for the result:

```python
@app.post("/exports", status_code=202)
def create_export(req: ExportRequest, db: Session = Depends(get_db)):
    job = ExportJob([[col]]=req.[[col]], status="queued")
    db.add(job)
    db.commit()
    queue.enqueue("exports.[[fn]]", job.id)
    return {"job_id": job.id, "status_url": f"/exports/{job.id}"}


@app.get("/exports/{job_id}")
def export_status(job_id: int, db: Session = Depends(get_db)):
    job = db.get(ExportJob, job_id) or abort_404()
    return {"status": job.status, "url": job.url}
```

FastAPI's `BackgroundTasks` would also work for small jobs, but it runs in the web process: a
deploy or crash loses the export, and large exports compete with requests for memory. A real
queue (RQ, Celery, or a Postgres-backed queue) avoids both.""",
        "followups": [
            ("The worker loads all rows into memory. How do I stream them?", """\
Stream with `yield_per` and write rows as you go:

```python
def [[fn]](job_id: int) -> None:
    with Session(engine) as db, open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        stmt = select(Order).where(Order.[[col]] == job.[[col]])
        for order in db.execute(stmt.execution_options(yield_per=1000)).scalars():
            writer.writerow([order.id, order.[[amount]], order.[[ts]].isoformat()])
```

Memory stays flat no matter how many rows the customer has."""),
            ("How do I avoid two exports for the same customer running at once?", """\
Check for an active job in the same transaction that creates the new one, with a unique partial
index as the real guard:

```sql
CREATE UNIQUE INDEX one_active_export
  ON export_jobs ([[col]])
  WHERE status IN ('queued', 'running');
```

Then catch the `IntegrityError` in the endpoint and return the existing job instead of a new
one."""),
            ("How long should the presigned URL be valid?", """\
Long enough for the user to click the link in the email, short enough that a forwarded link
dies quickly. 24 hours is a common choice; generate a fresh URL whenever the status endpoint is
called instead of storing one:

```python
url = s3.generate_presigned_url(
    "get_object",
    Params={"Bucket": "[[bucket]]", "Key": job.key},
    ExpiresIn=24 * 3600,
)
```"""),
        ],
    },
]

# Whole files some engineers paste with their first question (listing name -> listing).
CONTEXT_FOR_TOPIC = {"pandas-groupby": "python", "pytest-mock-s3": "python",
                     "sql-latest-row": "sql", "sql-monthly-revenue": "sql",
                     "react-effect-loop": "javascript"}
CONTEXT_FILES: dict[str, str] = {
    "python": '''\
```python
"""Nightly [[tbl]] report: load, clean, aggregate and upload to S3."""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import boto3
import pandas as pd
import sqlalchemy as sa

log = logging.getLogger(__name__)

BUCKET = os.environ.get("REPORT_BUCKET", "[[bucket]]")
ENGINE = sa.create_engine(os.environ["DATABASE_URL"], pool_pre_ping=True)


@dataclass
class ReportWindow:
    start: date
    end: date

    @classmethod
    def yesterday(cls) -> "ReportWindow":
        today = datetime.now(UTC).date()
        return cls(start=today - timedelta(days=1), end=today)


def load_[[tbl]](window: ReportWindow) -> pd.DataFrame:
    query = sa.text(
        "SELECT id, [[col]], [[amount]], [[ts]], status "
        "FROM [[tbl]] WHERE [[ts]] >= :start AND [[ts]] < :end"
    )
    with ENGINE.connect() as conn:
        [[df]] = pd.read_sql(query, conn, params={"start": window.start, "end": window.end})
    log.info("loaded %d rows from [[tbl]]", len([[df]]))
    return [[df]]


def clean([[df]]: pd.DataFrame) -> pd.DataFrame:
    [[df]] = [[df]].drop_duplicates(subset="id")
    [[df]] = [[df]].query("status != 'test'")
    [[df]]["[[ts]]"] = pd.to_datetime([[df]]["[[ts]]"], utc=True)
    [[df]]["[[amount]]"] = [[df]]["[[amount]]"].fillna(0).astype("int64")
    return [[df]]


def [[fn]]([[df]]: pd.DataFrame) -> pd.DataFrame:
    result = []
    for key, grp in [[df]].groupby("[[col]]"):
        total = 0
        for _, row in grp.iterrows():
            total += row["[[amount]]"]
        result.append({"[[col]]": key, "total": total, "n": len(grp)})
    return pd.DataFrame(result)


def upload(report: pd.DataFrame, window: ReportWindow) -> str:
    key = f"reports/[[tbl]]/{window.start.isoformat()}.csv"
    buf = io.StringIO()
    report.to_csv(buf, index=False)
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=buf.getvalue().encode())
    log.info("uploaded s3://%s/%s", BUCKET, key)
    return key


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    window = ReportWindow.yesterday()
    report = [[fn]](clean(load_[[tbl]](window)))
    upload(report, window)


if __name__ == "__main__":
    main()
```''',
    "sql": '''\
```sql
-- schema for the billing side (Postgres 16)
CREATE TABLE accounts (
  id            bigserial PRIMARY KEY,
  name          text NOT NULL,
  plan          text NOT NULL CHECK (plan IN ('starter', 'team', 'business', 'enterprise')),
  region        text NOT NULL DEFAULT 'us',
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
  id            bigserial PRIMARY KEY,
  account_id    bigint NOT NULL REFERENCES accounts (id),
  email         text NOT NULL UNIQUE,
  role          text NOT NULL DEFAULT 'member',
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE [[tbl]] (
  id            bigserial PRIMARY KEY,
  [[col]]       bigint NOT NULL,
  plan          text NOT NULL,
  [[amount]]    bigint NOT NULL,
  currency      char(3) NOT NULL DEFAULT 'USD',
  status        text NOT NULL DEFAULT 'open',
  [[ts]]        timestamptz NOT NULL DEFAULT now(),
  metadata      jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX idx_[[tbl]]_status ON [[tbl]] (status);
CREATE INDEX idx_[[tbl]]_[[col]] ON [[tbl]] ([[col]]);

CREATE TABLE refunds (
  id            bigserial PRIMARY KEY,
  source_id     bigint NOT NULL REFERENCES [[tbl]] (id),
  [[amount]]    bigint NOT NULL,
  reason        text,
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE VIEW account_balance AS
SELECT a.id AS account_id,
       a.name,
       COALESCE(SUM(t.[[amount]]), 0) - COALESCE(SUM(r.[[amount]]), 0) AS balance
FROM accounts a
LEFT JOIN [[tbl]] t ON t.[[col]] = a.id AND t.status = 'paid'
LEFT JOIN refunds r ON r.source_id = t.id
GROUP BY a.id, a.name;

-- about [[rows]] rows in [[tbl]], growing ~3% a month
```''',
    "javascript": '''\
```jsx
import { useEffect, useMemo, useState } from "react";
import { Table } from "../components/Table";
import { Pagination } from "../components/Pagination";
import { useCurrentUser } from "../hooks/useCurrentUser";
import { formatMoney } from "../lib/format";

const PAGE_SIZE = 25;

function columnsFor(user) {
  const base = [
    { key: "name", label: "Name" },
    { key: "status", label: "Status" },
    { key: "updatedAt", label: "Updated" },
  ];
  if (user.role === "admin") {
    base.push({ key: "amount", label: "Amount", render: (v) => formatMoney(v) });
  }
  return base;
}

export default function [[component]]Page() {
  const user = useCurrentUser();
  const [query, setQuery] = useState("");
  const [page, setPage] = useState(1);
  const filters = { query, page };

  return (
    <div className="page">
      <h1>[[component]]</h1>
      <input
        placeholder="Search..."
        value={query}
        onChange={(e) => {
          setQuery(e.target.value);
          setPage(1);
        }}
      />
      <[[component]] filters={filters} columns={columnsFor(user)} />
      <Pagination page={page} onChange={setPage} />
    </div>
  );
}

export function [[component]]({ filters, columns }) {
  const [rows, setRows] = useState([]);
  const [error, setError] = useState(null);

  useEffect(() => {
    fetch(`[[endpoint]]?q=${filters.query}&page=${filters.page}&size=${PAGE_SIZE}`)
      .then((r) => r.json())
      .then(setRows)
      .catch(setError);
  });

  const sorted = useMemo(
    () => [...rows].sort((a, b) => b.updatedAt.localeCompare(a.updatedAt)),
    [rows]
  );

  if (error) return <p className="error">Could not load data.</p>;
  return <Table rows={sorted} columns={columns} />;
}
```''',
}
