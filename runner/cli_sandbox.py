"""The click layer of `imgbatch sandbox`: the stand-in server and its fault knobs. Like
runner/cli.py it only parses options and calls one runner.commands function, imported lazily."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from runner.cliopts import SHARE

if TYPE_CHECKING:
    from runner.sandbox import Faults

# The sandbox's image-host faults (runner/sandbox/imagehost.py keeps the same list; a test checks).
IMAGE_FAULTS = ("404", "expired", "truncated", "oversized", "slow", "html", "svg", "error-body")


def fault_options(f: Any) -> Any:
    """The sandbox's fault knobs, shared by `sandbox` and `run --sandbox`."""
    for decorator in reversed(
        [
            click.option(
                "--task-seconds",
                type=click.FloatRange(0.0),
                default=2.0,
                show_default=True,
                help="How long a task takes from pending to its end.",
            ),
            click.option("--fail-share", type=SHARE, default=0.0, help="Share of tasks that end failed."),
            click.option(
                "--latency",
                type=click.FloatRange(0.0),
                default=0.0,
                help="Seconds added to every API request.",
            ),
            click.option(
                "--submit-latency",
                type=click.FloatRange(0.0),
                default=0.0,
                help="Seconds added to every submit on top of --latency.",
            ),
            click.option(
                "--rate-limit",
                type=click.FloatRange(0.0),
                default=0.0,
                help="API requests per second before 429 with Retry-After (0: none).",
            ),
            click.option("--error-share", type=SHARE, default=0.0, help="Share answered with 5xx."),
            click.option(
                "--lost-submit-share",
                type=SHARE,
                default=0.0,
                help="Share of submits recorded but answered with an error anyway.",
            ),
            click.option(
                "--malformed-share",
                type=SHARE,
                default=0.0,
                help="Share of answers whose JSON body is cut short.",
            ),
            click.option(
                "--envelope-error-share",
                type=SHARE,
                default=0.0,
                help="Share of HTTP 200 answers whose envelope says statusCode 500.",
            ),
            click.option(
                "--credits",
                "credits",
                type=click.IntRange(0),
                default=100,
                show_default=True,
                help="Credits each task costs.",
            ),
            click.option(
                "--price",
                "prices",
                multiple=True,
                metavar="CLASS=P",
                help="Price of a size class (1K, 2K, 4K, custom); repeatable. P may be text.",
            ),
            click.option(
                "--price-from",
                multiple=True,
                metavar="N=P",
                help="From the N-th accepted submit on, every task costs P; repeatable.",
            ),
            click.option(
                "--price-format",
                type=click.Choice(["number", "string", "missing"]),
                default="number",
                show_default=True,
                help='How estimated_credits is sent: a number, as text ("1000"), or not at all.',
            ),
            click.option(
                "--used-factor",
                type=click.FloatRange(0.0),
                default=1.0,
                show_default=True,
                help="credits_used reported on completion = price x this.",
            ),
            click.option(
                "--query-404-share",
                type=SHARE,
                default=0.0,
                help="Share of queries of known tasks answered 404.",
            ),
            click.option(
                "--query-404-times",
                type=click.IntRange(0),
                default=0,
                help="The first N queries of each task are answered 404 (replication lag).",
            ),
            click.option(
                "--wrong-task-share",
                type=SHARE,
                default=0.0,
                help="Share of queries answered with another task's data.",
            ),
            click.option(
                "--echo-headers", is_flag=True, help="Echo the request headers (the key too) into messages."
            ),
            click.option("--seed", type=int, default=0, help="Seed of the fault dice."),
            click.option(
                "--end-status",
                default="failed",
                show_default=True,
                help="How --fail-share tasks end (e.g. canceled, error, expired; 'processing': never).",
            ),
            click.option(
                "--image-faults",
                default="",
                help="Comma list of image-host faults: " + ", ".join(IMAGE_FAULTS) + ".",
            ),
            click.option(
                "--image-fault-share",
                type=SHARE,
                default=1.0,
                show_default=True,
                help="Share of images faulted.",
            ),
            click.option(
                "--image-fault-times",
                type=click.IntRange(0),
                default=1,
                show_default=True,
                help="Faulted fetches of each such image before it is served right (0: always).",
            ),
            click.option(
                "--url-ttl",
                type=click.FloatRange(0.0),
                default=3600.0,
                show_default=True,
                help="Seconds a signed image URL stays valid.",
            ),
            click.option(
                "--oversize-mb",
                type=click.FloatRange(0.0),
                default=200.0,
                show_default=True,
                help="Body size of an 'oversized' image answer.",
            ),
            click.option(
                "--drip-seconds",
                type=click.FloatRange(0.0),
                default=2.0,
                show_default=True,
                help="Pause before each byte of a 'slow' image answer.",
            ),
        ]
    ):
        f = decorator(f)
    return f


def faults_from(opts: dict[str, Any]) -> Faults:
    from runner.sandbox import Faults
    from runner.sandbox.imagehost import ImageFaults

    kinds = tuple(k.strip() for k in opts["image_faults"].split(",") if k.strip())
    unknown = [k for k in kinds if k not in IMAGE_FAULTS]
    if unknown:
        raise click.BadParameter(
            f"{', '.join(unknown)}: use {', '.join(IMAGE_FAULTS)}", param_hint="--image-faults"
        )
    return Faults(
        end_status=opts["end_status"],
        image=ImageFaults(
            kinds=kinds,
            share=opts["image_fault_share"],
            times=opts["image_fault_times"],
            url_ttl=opts["url_ttl"],
            oversize_mb=opts["oversize_mb"],
            drip_seconds=opts["drip_seconds"],
        ),
        latency=opts["latency"],
        submit_latency=opts["submit_latency"],
        rate_limit=opts["rate_limit"],
        error_share=opts["error_share"],
        lost_submit_share=opts["lost_submit_share"],
        malformed_share=opts["malformed_share"],
        envelope_error_share=opts["envelope_error_share"],
        fail_share=opts["fail_share"],
        prices=dict(_pair(x, "--price", str) for x in opts["prices"]),
        price_from=[_pair(x, "--price-from", int) for x in opts["price_from"]],
        price_format=opts["price_format"],
        used_factor=opts["used_factor"],
        query_404_share=opts["query_404_share"],
        query_404_times=opts["query_404_times"],
        wrong_task_share=opts["wrong_task_share"],
        echo_headers=opts["echo_headers"],
    )


def _pair(text: str, option: str, key: Callable[[str], Any]) -> tuple[Any, int | str]:
    """`K=P` of a price option; P stays text unless it is a whole number (text prices are a fault)."""
    name, sep, value = text.partition("=")
    try:
        if not sep or not value:
            raise ValueError
        return key(name), int(value) if value.isdigit() else value
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected {option} KEY=PRICE", param_hint=option) from None


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0 picks a free port."
)
@click.option("--token", default="sandbox", show_default=True, help="The API key the sandbox accepts.")
@click.option(
    "--image-host",
    default=None,
    help="Serve images only from this second address (e.g. 127.0.0.2), like a CDN; it records "
    "the headers it receives (GET /sandbox/stats).",
)
@click.option(
    "--image-port", type=click.IntRange(0, 65535), default=0, help="Port of --image-host (0: free)."
)
@fault_options
@click.pass_context
def sandbox(
    ctx: click.Context,
    /,
    host: str,
    port: int,
    token: str,
    image_host: str | None,
    image_port: int,
    **opts: Any,
) -> None:
    """Serve a local stand-in for the aireiter API until stopped; prints its base URL."""
    from runner.commands.sandbox import sandbox as command

    faults = faults_from(opts)
    ctx.exit(
        command(
            host,
            port,
            token,
            opts["task_seconds"],
            faults,
            opts["credits"],
            opts["seed"],
            image_host,
            image_port,
        )
    )
